"""A real llama.cpp server on 127.0.0.1 serving the tiny test model (built
once from the vendored llama.cpp: tests/llama_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.llama_server import RunningServer, llama_server_binary, running_llama_server

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build llama-server (once: minutes on 2 cores, then cached) after
    collection and before the first test, so no test's timeout includes it."""
    if not any(item.path.is_relative_to(HERE) for item in items):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # say so in the log when it builds
        llama_server_binary()


@pytest.fixture(scope="module")
def llama_server(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with running_llama_server(tiny_model, tmp_path_factory.mktemp("llama-server")) as server:
        yield server


@pytest.fixture
def looping_server(looping_model: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose model never ends its answer: for Stop and a kill mid-answer."""
    with running_llama_server(looping_model, tmp_path) as server:
        yield server
