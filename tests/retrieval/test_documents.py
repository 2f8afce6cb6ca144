"""The DocumentLibrary facade as the app uses it: indexing on one thread
while another searches, and the rescan at start after the app was closed."""

from __future__ import annotations

import threading
from pathlib import Path

from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import FileIndexed, IngestFinished
from tests.retrieval.make_files import page_text, write_text_pdf


def test_search_on_another_thread_while_indexing(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(8):
        write_text_pdf(docs / f"r{n}.pdf", [page_text(10 * n + p) for p in range(1, 3)])
    library = DocumentLibrary(tmp_path / "index", lambda: embedder, flush_chunks=2)
    library.add_collection("docs", [docs])
    first_file = threading.Event()
    errors: list[BaseException] = []
    summaries = []

    def index() -> None:  # the app's indexing worker
        try:
            for event in library.index("docs", threading.Event()):
                if isinstance(event, FileIndexed):
                    first_file.set()
                if isinstance(event, IngestFinished):
                    summaries.append(event.summary)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_file.set()

    worker = threading.Thread(target=index)
    worker.start()
    try:
        assert first_file.wait(300)
        searched = 0
        while worker.is_alive() or searched == 0:  # the engine thread searching meanwhile
            for passage in library.search("zebra1 marker", k=3):
                assert passage.citation.startswith("r")
            searched += 1
    finally:
        worker.join()
    assert not errors, errors
    assert summaries[0].indexed == 8
    assert library.search("zebra71", k=1)[0].citation == "r7.pdf, p. 1"
    library.close()


def test_rescan_at_start_catches_changes_made_while_closed(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_text_pdf(docs / "a.pdf", [page_text(1)])
    write_text_pdf(docs / "b.pdf", [page_text(2)])
    library = DocumentLibrary(tmp_path / "index", lambda: embedder)
    library.add_collection("docs", [docs])
    list(library.index(None, threading.Event()))
    library.close()

    (docs / "b.pdf").unlink()
    write_text_pdf(docs / "c.pdf", [page_text(3)])

    reopened = DocumentLibrary(tmp_path / "index", lambda: embedder)
    events = list(reopened.index(None, threading.Event()))
    summary = next(e.summary for e in events if isinstance(e, IngestFinished))
    assert (summary.indexed, summary.removed, summary.unchanged) == (1, 1, 1)
    names = {Path(h.path).name for h in reopened.file_health("docs")}
    assert names == {"a.pdf", "c.pdf"}
    assert reopened.search("zebra3", k=1)[0].citation == "c.pdf, p. 1"
    reopened.close()
