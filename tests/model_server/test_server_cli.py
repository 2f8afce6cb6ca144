"""``python -m app ask --server URL --model NAME`` against the real llama.cpp
server: the answer, where it was computed, the ledger, the key from an
environment variable, and an answer cut off by a dying server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.synthetic_model import SCRIPTED_ANSWER
from tests.app.test_cli import run_cli
from tests.llama_server import RunningServer, running_llama_server

EXIT_ERROR = 1


def test_ask_on_a_server(llama_server: RunningServer, footnote_home: Path) -> None:
    url, name = llama_server.url, llama_server.alias
    result = run_cli(
        "ask", "--server", url, "--model", name, "What is Footnote?", home=footnote_home
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCRIPTED_ANSWER + "\n"
    assert f"footnote: answers computed on {url} ({name})" in result.stderr.splitlines()
    ledger = run_cli("ledger", home=footnote_home)
    lines = ledger.stdout.splitlines()
    # Read before the answer, then the answer: two sends, each recorded first.
    assert len(lines) == 2 and all(f"model  {url}" in line for line in lines), lines
    assert f"{name}: the conversation and the question" in lines[0]


def test_server_without_a_model_name_says_what_is_missing(footnote_home: Path) -> None:
    result = run_cli("ask", "--server", "http://127.0.0.1:9", "hi", home=footnote_home)
    assert result.returncode == EXIT_ERROR
    assert "--server needs --model NAME" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def keyed_server(tiny_model: Path, tmp_path: Path) -> Iterator[RunningServer]:
    with running_llama_server(tiny_model, tmp_path, api_key="team-secret") as server:
        yield server


def test_the_key_comes_from_the_variable_named(
    keyed_server: RunningServer, footnote_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, name = keyed_server.url, keyed_server.alias
    ask = ("ask", "--server", url, "--model", name, "--api-key-env", "TEAM_KEY", "hi")
    unset = run_cli(*ask, home=footnote_home)
    assert unset.returncode == EXIT_ERROR
    assert "The environment variable TEAM_KEY (from --api-key-env) is not set" in unset.stderr
    monkeypatch.setenv("TEAM_KEY", "team-secret")
    keyed = run_cli(*ask, home=footnote_home)
    assert keyed.returncode == 0, keyed.stderr
    assert keyed.stdout == SCRIPTED_ANSWER + "\n"
    no_key = run_cli("ask", "--server", url, "--model", name, "hi", home=footnote_home)
    assert no_key.returncode == EXIT_ERROR
    assert "wants an API key" in no_key.stderr


def test_an_answer_cut_off_by_the_server_is_printed_with_the_reason(
    looping_server: RunningServer, footnote_home: Path
) -> None:
    command = [sys.executable, "-m", "app", "ask", "--server", looping_server.url]
    command += ["--model", looping_server.alias, "Go on"]
    env = {**os.environ, "FOOTNOTE_HOME": str(footnote_home)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as cli:
        assert cli.stdout is not None and cli.stderr is not None
        started = cli.stdout.read(20)  # the answer is streaming
        looping_server.kill()
        rest, errors = cli.stdout.read(), cli.stderr.read()
    assert cli.returncode == EXIT_ERROR
    assert len(started + rest) > 20
    assert "what it wrote is kept" in errors
    assert "Traceback" not in errors
