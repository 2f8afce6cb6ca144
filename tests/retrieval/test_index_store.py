"""The stores under the indexer: the documents database (manifest, chunks,
FTS5) and the chroma vector index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from retrieval import lexical_index
from retrieval.collections import create_collection, get_collection
from retrieval.document_db import DB_FILE, DocumentDB
from retrieval.errors import IndexUnavailable
from retrieval.lexical_index import StoredChunk
from retrieval.locator import Locator
from retrieval.vector_index import VectorIndex


def _chunk(n: int, text: str, path: str = "/docs/a.md") -> StoredChunk:
    return StoredChunk(f"id{n}", path, f"hash{n}", Locator("document", path=path, page=n), text)


def test_bm25_with_stemming_and_no_query_syntax(tmp_path: Path) -> None:
    store = DocumentDB(tmp_path)
    with store.transaction() as db:
        cid = create_collection(db, "docs", [tmp_path], []).id
        lexical_index.insert_chunks(
            db,
            cid,
            [
                _chunk(1, "Annual reports of the company, with revenue tables."),
                _chunk(2, "A recipe for apple pie."),
                _chunk(3, 'C++ templates and AND operators in "quotes".'),
            ],
        )
    db = store.connection()
    assert [i for i, _ in lexical_index.search(db, [cid], "report", 5)] == ["id1"]
    assert lexical_index.search(db, [cid], 'C++ AND "templates', 5)[0][0] == "id3"
    assert lexical_index.search(db, [cid], "the", 5) != []  # stopwords only: still answered
    assert lexical_index.search(db, [cid], "?!", 5) == []
    assert lexical_index.search(db, [cid + 1], "report", 5) == []  # other collection
    got = lexical_index.get_chunks(db, [cid], ["id1"])["id1"]
    assert got.locator.page == 1 and got.locator.citation() == "a.md, p. 1"
    with store.transaction() as db:
        lexical_index.delete_paths(db, cid, ["/docs/a.md"])
    assert lexical_index.search(store.connection(), [cid], "report", 5) == []  # FTS in step
    store.close()


def test_database_survives_reopen_and_cascades(tmp_path: Path) -> None:
    first = DocumentDB(tmp_path)
    with first.transaction() as db:
        c = create_collection(db, "docs", [tmp_path / "x"], ["*.log"])
        lexical_index.insert_chunks(db, c.id, [_chunk(1, "kept text")])
    first.close()
    again = DocumentDB(tmp_path)
    with again.transaction() as db:
        c = get_collection(db, "docs")
        assert c.excludes == ("*.log",) and c.roots == (tmp_path / "x",)
        db.execute("DELETE FROM collections WHERE id = ?", (c.id,))
        assert db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0
        assert lexical_index.search(db, [c.id], "kept", 5) == []
    again.close()


def test_vector_index_upsert_is_idempotent_and_deletes_by_path(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "chroma")
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    meta = [{"path": "/a"}, {"path": "/a"}, {"path": "/b"}]
    index.upsert("c1-test", ["x", "y", "z"], vectors, meta)
    index.upsert("c1-test", ["x", "y", "z"], vectors, meta)
    assert index.count("c1-test") == 3
    nearest = index.query("c1-test", vectors[2], 2)
    assert nearest[0][0] == "z" and abs(nearest[0][1] - 1.0) < 1e-4
    assert np.allclose(index.embeddings("c1-test", ["y"])["y"], vectors[1], atol=1e-6)
    index.delete_paths("c1-test", ["/a"])
    assert index.ids("c1-test") == ["z"]
    index.drop("c1-test")
    assert index.names() == []


def test_an_index_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(IndexUnavailable, match="written by a newer Footnote"):
        DocumentDB(tmp_path)
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 999
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
