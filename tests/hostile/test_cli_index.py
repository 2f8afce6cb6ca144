"""The same hostile cases through ``python -m app index ...`` (#21 items 3-5):
a deleted vector store is rebuilt and the status says so, links out of the
folder are listed and only followed on request, a swapped file does not hang
the command, and Ctrl+C stops it within about a second.

In-process runs share one real MiniLM (as tests/app/test_cli_documents.py
does); the Ctrl+C and hang checks run the real CLI in a child process."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import commands as cli
from app.cli import documents as cli_documents
from app.wiring import libraries
from retrieval.embedding import Embedder
from tests.hostile.index_helpers import embedder, write_notes

__all__ = ["embedder"]  # a fixture used below

REPO = Path(__file__).resolve().parents[2]
STOP_BOUND_S = 3.0  # Ctrl+C to exit; about a second, with room for a loaded machine
CHILD_TIMEOUT_S = 180.0


@pytest.fixture(autouse=True)
def one_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    monkeypatch.setattr(libraries, "Embedder", lambda model=None: embedder)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_a_deleted_vector_store_is_rebuilt_and_the_status_says_so(
    tmp_path: Path, footnote_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Notes"
    write_notes(folder)
    assert run("index", "add", str(folder))[0] == 0
    code, out = run("index", "status")
    assert "search index complete (6 passages)" in out
    shutil.rmtree(footnote_home / "data" / "documents" / "chroma")
    capsys.readouterr()

    code, out = run("index", "status")
    assert code == 0
    assert (
        "search index incomplete (6 of 6 passages have no vector, the vector store is "
        "missing): those are found by keywords only until the next index run rebuilds "
        "them from the stored text (no file is read again)"
    ) in out
    code, out = run("search", "heron lake", "-k", "1")
    assert code == 0 and out.startswith("[1] note")
    assert "footnote: note: Notes: search index incomplete" in capsys.readouterr().err

    code, out = run("index", "add", str(folder))  # what the user ran
    assert code == 0
    assert "0 files indexed, 3 unchanged" in out
    assert "the search index was repaired: 6 passages embedded again from the stored text" in out
    progress = capsys.readouterr().err
    assert "rebuilding the search index of Notes (the vector store is missing): 6/6 passages" in (
        progress
    )
    code, out = run("index", "status")
    assert "search index complete (6 passages)" in out
    code, out = run("search", "heron lake", "-k", "1")
    assert "(score 0.000)" not in out
    assert capsys.readouterr().err == ""
    code, out = run("index", "update")  # every collection, nothing left to repair
    assert code == 0 and out.startswith("Notes: 0 files indexed, 3 unchanged")
    assert "repaired" not in out


def test_links_outside_are_listed_and_followed_only_on_request(tmp_path: Path) -> None:
    folder = tmp_path / "Notes"
    write_notes(folder, 1)
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is otter-marigold.\n")
    (folder / "vault.txt").symlink_to(secret)

    assert run("index", "add", str(folder))[0] == 0
    code, out = run("index", "status")
    assert (
        f"  link skipped: {folder / 'vault.txt'}: link to {secret}, outside this "
        "collection's folders"
    ) in out
    assert "--follow-links-outside" in out
    assert "vault code" not in run("search", "vault code", "-k", "3")[1]

    code, out = run("index", "add", str(folder), "--follow-links-outside")
    assert code == 0 and "1 files indexed" in out
    assert "vault code" in run("search", "vault code", "-k", "1")[1]
    assert "link skipped" not in run("index", "status")[1]


# ----------------------------------------------------------------- the real CLI

# Runs the CLI after one change to the parser, made in the child itself:
# what ``hang`` and ``swap`` stand for in the real world is a PDF that hangs
# pdfium, and a file replaced by a pipe while the scan's list is worked through.
CHILD = """
import os, sys
from pathlib import Path
import retrieval.parsing.worker as worker
original = worker.parse_file
mode = os.environ["TEST_PARSER_MODE"]
def patched(path, **options):
    if mode == "hang":
        options["parser"] = "tests.retrieval.hostile_parsers:hang"
    elif Path(path).name == "note1.md":
        victim = Path(path).with_name("note2.md")
        victim.unlink()
        os.mkfifo(victim)
    return original(path, **options)
worker.parse_file = patched
from app.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


def start_cli(home: Path, mode: str, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FOOTNOTE_HOME": str(home), "TEST_PARSER_MODE": mode}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_stops_the_cli_within_a_second_even_in_a_stuck_parser(
    tmp_path: Path, footnote_home: Path
) -> None:
    folder = tmp_path / "Notes"
    write_notes(folder, 1)
    child = start_cli(footnote_home, "hang", "index", "add", str(folder))
    try:
        pid_file = folder / "note1.pid"  # the hung parser writes it first
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while not pid_file.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_file.exists(), child.communicate(timeout=5)
        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            _, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        finally:
            took = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()

    assert child.returncode == 130
    assert err.rstrip().endswith(f"footnote: {cli_documents.STOPPED_TEXT}")
    assert "Traceback" not in err
    assert took < STOP_BOUND_S, f"Ctrl+C took {took:.1f} s to end the command"


def test_a_file_swapped_for_a_pipe_does_not_hang_the_cli(
    tmp_path: Path, footnote_home: Path
) -> None:
    folder = tmp_path / "Notes"
    write_notes(folder)
    child = start_cli(footnote_home, "swap", "index", "add", str(folder))
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("index add hung on a file swapped for a named pipe")
    assert child.returncode == 0, err
    assert out.startswith("Notes: 2 files indexed, 0 unchanged, 1 failed")
    assert (
        f"{folder / 'note2.md'}: unreadable: replaced by a named pipe after the scan; not read"
    ) in err
