"""kill -9 in the middle of indexing, then run again: indexing resumes, and
neither index holds a duplicate or an orphan chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import IngestFinished
from tests.retrieval.make_files import page_text, write_text_pdf

FILES = 16
KILL_AFTER_FILES = 3

# Small batches (4 chunks), so the kill lands between the manifest's
# "indexing" mark and the writes of a batch more often than not.
INDEX_SCRIPT = """
import sys, threading
from pathlib import Path
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import FileIndexed

if __name__ == "__main__":
    library = DocumentLibrary(Path(sys.argv[1]), Embedder, flush_chunks=4)
    if library.find_collection("docs") is None:
        library.add_collection("docs", [Path(sys.argv[2])])
    for event in library.index("docs", threading.Event()):
        if isinstance(event, FileIndexed):
            print("indexed", flush=True)
"""


def test_kill_9_during_indexing_then_resume(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(FILES):
        write_text_pdf(docs / f"r{n:02d}.pdf", [page_text(100 * n + p) for p in range(1, 4)])
    script = tmp_path / "index_docs.py"
    script.write_text(INDEX_SCRIPT)
    index_dir = tmp_path / "index"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(index_dir), str(docs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=root,
    )
    assert child.stdout is not None
    seen = 0
    for line in child.stdout:  # blocks until the child has indexed another file
        seen += line.startswith("indexed")
        if seen >= KILL_AFTER_FILES:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert seen == KILL_AFTER_FILES, "the child finished or died before the kill"

    library = DocumentLibrary(index_dir, lambda: embedder)
    try:
        before = {h.state for h in library.file_health("docs")}
        assert "indexed" in before and before != {"indexed"}  # it really was mid-run
        events = list(library.index("docs", threading.Event()))
        summary = next(e.summary for e in events if isinstance(e, IngestFinished))
        assert summary.indexed + summary.unchanged == FILES
        assert {h.state for h in library.file_health("docs")} == {"indexed"}
        vectors, lexical, orphans = library.consistency("docs")
        assert len(vectors) == len(set(vectors)) == FILES * 3
        assert sorted(vectors) == sorted(lexical)
        assert orphans == []
        for n in (0, FILES - 1):
            hit = library.search(f"zebra{100 * n + 2}", k=1)[0]
            assert hit.citation == f"r{n:02d}.pdf, p. 2"
    finally:
        library.close()
