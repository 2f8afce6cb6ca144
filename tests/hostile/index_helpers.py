"""Shared parts of the hostile index tests: the real MiniLM (loaded once per
session), a library in a temp folder, small Markdown collections, and a run
of ``index`` with a deadline so a hang fails the test instead of the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.ingest_events import IngestEvent, IngestFinished, IngestSummary

if TYPE_CHECKING:
    from retrieval.documents import DocumentLibrary
    from retrieval.embedding import Embedder

# Longer than any run here takes on a loaded 2-core machine (a few seconds),
# far shorter than "forever".
RUN_DEADLINE_S = 120.0


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture
def open_library(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[[], DocumentLibrary]]:
    """Opens a library on the same data folder (as a restart would); all are closed after."""
    from retrieval.documents import DocumentLibrary

    opened: list[DocumentLibrary] = []

    def open_one() -> DocumentLibrary:
        library = DocumentLibrary(tmp_path / "data", lambda: embedder)
        opened.append(library)
        return library

    yield open_one
    for library in opened:
        library.close()


def write_notes(folder: Path, count: int = 3) -> list[Path]:
    """``count`` Markdown files with two sections each and unique marker words."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        path = folder / f"note{n}.md"
        path.write_text(
            f"# Heron {n}\n\nThe grey heron number {n} waded across the cold lake at dawn.\n\n"
            f"## Ledger {n}\n\nMarker kestrel{n}: the ledger balanced after the audit.\n"
        )
        paths.append(path)
    return paths


def run_index(
    library: DocumentLibrary, name: str, cancel: threading.Event | None = None
) -> tuple[list[IngestEvent], IngestSummary]:
    """All events of one ``index`` run and its summary; fails (instead of
    hanging the test run) if it is not over within ``RUN_DEADLINE_S``."""
    events: list[IngestEvent] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            events.extend(library.index(name, cancel or threading.Event()))
        except BaseException as exc:  # re-raised on the test's thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="test-index-run", daemon=True)
    thread.start()
    assert done.wait(RUN_DEADLINE_S), f"index run still going after {RUN_DEADLINE_S:g} s"
    thread.join()
    if errors:
        raise errors[0]
    summaries = [e.summary for e in events if isinstance(e, IngestFinished)]
    assert len(summaries) == 1
    return events, summaries[0]
