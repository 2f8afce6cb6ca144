"""Do a collection's stores agree? And healing them when they do not.

A collection lives in three stores: the manifest (a row per file) and the
passages with their keyword index (FTS5), both in the documents database, and
the vectors (chroma, in its own folder). The documents database is the source
of truth; the vectors are derived data, made again from the stored passage
text whenever they are lost or damaged, without reading a file.

``check`` is cheap and reads only: the passage count against the vector
count, a random sample of passage ids that must each have a vector, and a few
stored vectors that must come back as their own nearest neighbour (a store
whose search graph is lost still counts its rows right). It also finds the
rarer disagreements inside the database: passages of a file the manifest does
not list as indexed, files listed with passages that are gone, and a keyword
index out of step with the passages.

``heal`` fixes what ``check`` found, never by degrading in silence: orphan
passages go, files whose passages are gone are marked to be read again, the
keyword index is rebuilt from the passages, and missing vectors are embedded
again from the stored text in small slices, with a ``VectorsRebuilding``
event after each, stopping within a slice once cancelled. An interrupted
rebuild keeps what it made; the next check finds the rest.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from retrieval import lexical_index
from retrieval.collections import Collection
from retrieval.document_db import DocumentDB
from retrieval.errors import IndexUnavailable
from retrieval.file_reader import EmbedderLike
from retrieval.ingest_events import VectorsRebuilding
from retrieval.manifest import FileState
from retrieval.vector_index import VectorIndex, chunk_metadata

SAMPLE_IDS = 32  # passage ids checked for a vector on every check
SELF_MATCH_PROBES = 3  # stored vectors queried against the index on every check
# Passages embedded per step of a rebuild: one step takes ~0.5-0.8 s on 2
# cores (MiniLM), so a cancel lands within a second, and 16 measured no slower
# than 32 or 256 per call on the 2-core VM (16: 25-36, 32: 14-29, 256: 26-31
# chunks/s, a shared machine).
EMBED_SLICE_TEXTS = 16
_READ_IDS_BATCH = 500  # SQLite's bound-parameter limit, with room
_MAY_HAVE_PASSAGES = (FileState.INDEXED, FileState.CHANGED, FileState.INDEXING)

VectorState = Literal["ok", "incomplete", "broken", "rebuilding", "unchecked"]


class VectorStoreDamaged(IndexUnavailable):
    """The vector store failed while being repaired: the whole store should
    be set aside and made anew."""


@dataclass(frozen=True)
class StoreHealth:
    """How much of a collection search by meaning can see, for a person."""

    state: VectorState
    passages: int  # passages in the documents database (what keyword search sees)
    vectors: int  # of them with a vector (what search by meaning sees)
    problem: str = ""  # what is wrong, in plain words; "" when nothing is
    # What the user can do when Footnote cannot heal it itself ("" when the
    # next index run rebuilds it from the stored passages).
    action: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "unchecked")

    def describe(self) -> str:
        """One line for ``index status`` and the Documents page."""
        if self.state == "ok":
            return f"search index complete ({self.vectors:,} passages)"
        if self.state == "unchecked":
            return "search index not checked yet"
        if self.state == "rebuilding":
            return (
                f"rebuilding the search index ({self.problem}): {self.vectors:,} of "
                f"{self.passages:,} passages; meanwhile the rest are found by keywords only"
            )
        if self.state == "broken" and self.action:
            return (
                f"search by meaning is unavailable: {self.problem}. Keyword search still "
                f"works and no passage is lost; {self.action}"
            )
        if self.state == "broken":
            return (
                f"search index damaged ({self.problem}): passages are found by keywords "
                "only until the next index run sets it aside and rebuilds it from the "
                "stored text (no file is read again)"
            )
        missing = max(self.passages - self.vectors, 0)
        what = f"{missing:,} of {self.passages:,} passages have no vector, " if missing else ""
        return (
            f"search index incomplete ({what}{self.problem}): those are found by keywords "
            "only until the next index run rebuilds them from the stored text "
            "(no file is read again)"
        )


@dataclass
class Findings:
    """What ``check`` saw; ``heal`` acts on it."""

    passages: int
    vectors: int = 0
    missing_in_sample: int = 0
    finds_itself: bool = True
    unreadable: str = ""  # the vector store's error, when it could not be read
    orphan_paths: list[str] = field(default_factory=list)  # passages with no indexed file
    lost_paths: list[str] = field(default_factory=list)  # indexed files without passages

    @property
    def vectors_agree(self) -> bool:
        return self.vectors_whole and self.vectors == self.passages

    @property
    def vectors_whole(self) -> bool:
        """Every passage can be found by meaning (there may be stray vectors
        of passages that are gone: search drops those; the next run too)."""
        return (
            not self.unreadable
            and self.finds_itself
            and self.vectors >= self.passages
            and not self.missing_in_sample
        )

    @property
    def agrees(self) -> bool:
        return self.vectors_agree and not self.orphan_paths and not self.lost_paths

    def problem(self) -> str:
        """The first thing wrong, in plain words ("" when nothing is)."""
        checks = (
            (bool(self.unreadable), "the vector store could not be read"),
            (not self.finds_itself, "the vector store's search structure is damaged"),
            (self.vectors == 0 and self.passages > 0, "the vector store is missing"),
            (
                self.vectors > self.passages,
                "the vector store holds passages that no longer exist",
            ),
            (
                self.vectors < self.passages or self.missing_in_sample > 0,
                "the vector store is missing some passages",
            ),
            (
                bool(self.lost_paths),
                f"the passages of {len(self.lost_paths)} indexed files are missing",
            ),
            (bool(self.orphan_paths), "passages of files no longer indexed were left behind"),
        )
        return next((text for wrong, text in checks if wrong), "")

    def health(self) -> StoreHealth:
        if self.vectors_whole:
            # stray vectors, orphan or lost passages are put right by the next
            # run; search by meaning sees every passage there is
            return StoreHealth("ok", self.passages, self.passages)
        if self.unreadable or not self.finds_itself:
            return StoreHealth("broken", self.passages, 0, self.problem())
        vectors = min(self.vectors, self.passages) - self.missing_in_sample
        return StoreHealth("incomplete", self.passages, max(vectors, 0), self.problem())


# ----------------------------------------------------------------- checking


def keyword_index_agrees(db: sqlite3.Connection) -> bool:
    """The FTS5 index has one entry per stored passage (all collections)."""
    passages = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    indexed = db.execute("SELECT COUNT(*) FROM chunks_fts_docsize").fetchone()[0]
    return bool(passages == indexed)


def rebuild_keyword_index(db: sqlite3.Connection) -> None:
    """Make the FTS5 index again from the stored passages (seconds at 100k)."""
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")


def check(db: DocumentDB, vectors: VectorIndex, collection: Collection) -> Findings:
    """What disagrees between ``collection``'s stores (reads only). The
    vectors are checked only for a collection built by an embedder
    (``model_id`` set): before its first run there are none to check."""
    with db.transaction() as conn:
        found = Findings(_passage_count(conn, collection.id))
        found.orphan_paths = _orphan_paths(conn, collection.id)
        found.lost_paths = _lost_paths(conn, collection.id)
        sample = _sample_ids(conn, collection.id, SAMPLE_IDS)
    if not collection.model_id:
        found.vectors = found.passages
        return found
    name = collection.vector_name
    try:
        found.vectors = vectors.count(name)
        present = vectors.existing(name, sample)
        found.missing_in_sample = len(sample) - len(present)
        probes = sorted(present)[:SELF_MATCH_PROBES]
        found.finds_itself = vectors.finds_itself(name, probes)
    except Exception as exc:  # noqa: BLE001 (chroma raises many kinds; all mean "unreadable")
        found.unreadable = f"{type(exc).__name__}: {exc}"
    return found


def _passage_count(conn: sqlite3.Connection, cid: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (cid,)).fetchone()
    return int(row[0])


def _orphan_paths(conn: sqlite3.Connection, cid: int) -> list[str]:
    """Paths with passages whose file row says it can have none: no row, or
    a state other than indexed, changed (its passages stay until it is read
    again, so unchanged ones keep their vectors) or indexing (the run's
    recovery purges those)."""
    keep = ", ".join(f"'{s}'" for s in _MAY_HAVE_PASSAGES)
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT c.path FROM chunks c LEFT JOIN files f ON "
            "f.collection_id = c.collection_id AND f.path = c.path "
            f"WHERE c.collection_id = ? AND (f.state IS NULL OR f.state NOT IN ({keep}))",
            (cid,),
        )
    ]


def _lost_paths(conn: sqlite3.Connection, cid: int) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT f.path FROM files f WHERE f.collection_id = ? AND f.state = 'indexed' "
            "AND f.chunks > 0 AND NOT EXISTS (SELECT 1 FROM chunks c WHERE "
            "c.collection_id = f.collection_id AND c.path = f.path)",
            (cid,),
        )
    ]


def _sample_ids(conn: sqlite3.Connection, cid: int, size: int) -> list[str]:
    """Up to ``size`` passage ids spread over the collection, by rowid (an
    ``ORDER BY random()`` would sort every passage)."""
    low, high = conn.execute(
        "SELECT MIN(rowid), MAX(rowid) FROM chunks WHERE collection_id = ?", (cid,)
    ).fetchone()
    if low is None:
        return []
    picked: set[str] = set()
    for _ in range(size):
        row = conn.execute(
            "SELECT id FROM chunks WHERE collection_id = ? AND rowid >= ? ORDER BY rowid LIMIT 1",
            (cid, random.randint(low, high)),
        ).fetchone()
        if row is not None:
            picked.add(row[0])
    return sorted(picked)


# ----------------------------------------------------------------- healing


def heal(
    db: DocumentDB,
    vectors: VectorIndex,
    collection: Collection,
    embedder: EmbedderLike,
    cancel: threading.Event,
    *,
    found: Findings,
) -> Generator[VectorsRebuilding, None, int]:
    """Fix what ``check`` found (see the module doc); returns how many
    passages got their vector again. Raises what the vector store raises
    when it cannot be written (the caller sets the store aside)."""
    try:
        return (yield from _heal(db, vectors, collection, embedder, cancel, found=found))
    except IndexUnavailable:
        raise
    except Exception as exc:  # chroma raises many kinds
        raise VectorStoreDamaged(
            "The search index could not be repaired in place; it is made anew.",
            detail=repr(exc),
        ) from exc


def _heal(
    db: DocumentDB,
    vectors: VectorIndex,
    collection: Collection,
    embedder: EmbedderLike,
    cancel: threading.Event,
    *,
    found: Findings,
) -> Generator[VectorsRebuilding, None, int]:
    name = collection.vector_name
    cid = collection.id
    if found.orphan_paths:
        vectors.delete_paths(name, found.orphan_paths)
        with db.transaction() as conn:
            lexical_index.delete_paths(conn, cid, found.orphan_paths)
    if found.lost_paths:
        # Their passages are gone from the database, so they can only come
        # back by reading the files again: this run does (stat forgotten).
        vectors.delete_paths(name, found.lost_paths)
        with db.transaction() as conn:
            conn.executemany(
                "UPDATE files SET state = 'changed', chunks = 0, mtime_ns = 0 "
                "WHERE collection_id = ? AND path = ?",
                [(cid, p) for p in found.lost_paths],
            )
    if found.vectors_agree or not collection.model_id:
        return 0
    reason = found.problem()
    if found.unreadable or not found.finds_itself:
        vectors.drop(name)  # its rows cannot be trusted: all are made again
    with db.transaction() as conn:
        wanted = lexical_index.chunk_ids(conn, cid)
    have = set(vectors.ids(name))
    wanted_set = set(wanted)
    extra = sorted(have - wanted_set)
    if extra:
        vectors.delete_ids(name, extra)
    missing = [i for i in wanted if i not in have]
    return (
        yield from _embed_again(
            db, vectors, collection, embedder, cancel, missing=missing, reason=reason
        )
    )


def _embed_again(
    db: DocumentDB,
    vectors: VectorIndex,
    collection: Collection,
    embedder: EmbedderLike,
    cancel: threading.Event,
    *,
    missing: Sequence[str],
    reason: str,
) -> Generator[VectorsRebuilding, None, int]:
    total = len(missing)
    started = time.monotonic()
    done = 0
    yield VectorsRebuilding(collection.name, reason, 0, total, None)
    for start in range(0, total, _READ_IDS_BATCH):
        with db.transaction() as conn:
            ids = missing[start : start + _READ_IDS_BATCH]
            stored = lexical_index.get_chunks(conn, [collection.id], ids)
        rows = [stored[i] for i in ids if i in stored]
        for first in range(0, len(rows), EMBED_SLICE_TEXTS):
            if cancel.is_set():
                return done
            part = rows[first : first + EMBED_SLICE_TEXTS]
            embedded = embedder.embed_documents([c.text for c in part])
            vectors.upsert(
                collection.vector_name,
                [c.id for c in part],
                embedded,
                [chunk_metadata(collection.name, c.path, c.locator) for c in part],
            )
            done += len(part)
            elapsed = time.monotonic() - started
            eta = elapsed * (total - done) / done if done < total else 0.0
            yield VectorsRebuilding(collection.name, reason, done, total, eta)
    return done
