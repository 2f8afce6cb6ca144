"""An index belongs to the embedding model that built it: another model
rebuilds the collection, never mixes vectors of two models."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder, default_model_dir
from retrieval.ingest_events import IngestFinished
from tests.retrieval.make_files import write_good_files


def test_embedding_model_change_rebuilds(tmp_path: Path, embedder: Embedder) -> None:
    write_good_files(tmp_path / "docs")
    first = DocumentLibrary(tmp_path / "index", lambda: embedder)
    first.add_collection("docs", [tmp_path / "docs"])
    list(first.index("docs", threading.Event()))
    old = first.collection("docs")
    first.close()

    # The same weights under another name: another model id, as a user's
    # "another embedding model" setting would give.
    other_dir = tmp_path / "my-minilm"
    shutil.copytree(default_model_dir(), other_dir)
    other = Embedder(other_dir)
    assert other.model_id != embedder.model_id

    second = DocumentLibrary(tmp_path / "index", lambda: other)
    try:
        # a collection not rebuilt yet is still searched, lexically
        assert second.search("zebra2 marker", k=1)[0].citation == "report.pdf, p. 2"
        events = list(second.index("docs", threading.Event()))
        summary = next(e.summary for e in events if isinstance(e, IngestFinished))
        assert summary.indexed == 7 and summary.unchanged == 0 and summary.chunks_reused == 0
        rebuilt = second.collection("docs")
        assert rebuilt.model_id == other.model_id
        assert old.vector_name not in second._vectors.names()
        assert second._vectors.names() == [rebuilt.vector_name]
        vectors, lexical, orphans = second.consistency("docs")
        assert sorted(vectors) == sorted(lexical) and not orphans
        assert second.search("zebra2 marker", k=1)[0].citation == "report.pdf, p. 2"
    finally:
        second.close()
