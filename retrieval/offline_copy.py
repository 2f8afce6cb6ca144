"""An offline copy of a server collection, kept on this computer only when
the user asks (the issue's rule: no second private copy of the team's text
on each laptop unless the user wants offline use).

The copy is a hidden collection in the local document store
(``collections.copy_of``): its passages in ``chunks`` (so BM25 and the
identifier index cover them) and its vectors in the local vector store,
both pulled from the server as they are: the server's text, locator and
embedding of each chunk, nothing parsed or embedded again. The same hybrid
search (``DocumentLibrary.rankings``) runs on it when the server cannot be
reached; the caller says so ("the copy is from <time>").

Refresh (``sync_copy``): the server collection's change marker
(``server_index.CHANGED_KEY``, written by every index run) is compared with
the one the copy read last; unchanged (and the copy's vectors all there),
nothing is listed. Otherwise the server's ids are listed (ids only), the
copy drops the ids the server no longer has and pulls the ones it lacks
(ids are content hash + locator, so an id is never edited in place), page
by page, each page committed: a stopped refresh keeps what it pulled and
the next one goes on from there. Once a day the ids are compared even when
the marker did not move (a run killed between two markers).

Threads: called under the library's index lock (the vector store's writes
and its self-healing are serialized with index runs); searches read the
copy from other threads meanwhile (SQLite WAL, chroma's own locking).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from retrieval import collections as collection_store
from retrieval import lexical_index
from retrieval import server_collections as refs_store
from retrieval.chroma_server import ServerCollection
from retrieval.collections import Collection
from retrieval.document_db import DocumentDB
from retrieval.lexical_index import StoredChunk
from retrieval.server_collections import ServerCollectionRef
from retrieval.server_index import CHANGED_KEY
from retrieval.server_search import locator_of
from retrieval.vector_index import VectorIndex, chunk_metadata

log = logging.getLogger(__name__)

ID_PAGE_ROWS = 5000  # ids per listing request (ids only: ~200 KB of JSON)
# Rows pulled per request: each brings its text and its 384 floats as JSON
# (~5 KB a row with MiniLM), so ~1 MB a request.
PULL_PAGE_ROWS = 200
FULL_COMPARE_INTERVAL_S = 24 * 3600.0


@dataclass(frozen=True)
class CopyProgress:
    collection: str  # the server collection's name here
    passages_done: int
    passages_total: int


@dataclass(frozen=True)
class CopyFinished:
    collection: str
    passages: int  # what the copy holds now
    added: int
    removed: int
    synced_ns: int  # time.time_ns(): the copy is the server's as of then
    seconds: float
    cancelled: bool
    unchanged: bool  # the server's marker had not moved: nothing was listed


CopyEvent = CopyProgress | CopyFinished


@dataclass(frozen=True)
class CopyInfo:
    """What a server collection's row says of its copy."""

    passages: int
    synced_ns: int | None  # None: the copy was never completed


def copy_time_text(synced_ns: int | None) -> str:
    """When the copy last agreed with its server, for people (local time)."""
    if synced_ns is None:
        return "an unfinished refresh"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(synced_ns / 1e9))


def copy_info(db: DocumentDB, ref: ServerCollectionRef) -> CopyInfo | None:
    """The copy's size and age; None when there is none."""
    with db.transaction() as conn:
        copy = collection_store.copy_for(conn, ref.id)
        if copy is None:
            return None
        passages = conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (copy.id,)
        ).fetchone()[0]
    return CopyInfo(int(passages), ref.copy_synced_ns)


def delete_copy(db: DocumentDB, vectors: VectorIndex, ref: ServerCollectionRef) -> None:
    """The copy's passages and vectors go; the choice is recorded as off."""
    with db.transaction() as conn:
        copy = collection_store.copy_for(conn, ref.id)
        if copy is not None:
            conn.execute("DELETE FROM collections WHERE id = ?", (copy.id,))  # chunks cascade
        refs_store.set_offline_copy(conn, ref, wanted=False)
    if copy is not None:
        vectors.drop(copy.vector_name)


def sync_copy(  # noqa: PLR0917 (the copy's parts, each needed)
    db: DocumentDB,
    vectors: VectorIndex,
    ref: ServerCollectionRef,
    collection: ServerCollection,
    model_id: str,
    cancel: threading.Event,
) -> Iterator[CopyEvent]:
    """Bring the copy of ``ref`` in line with ``collection`` (already checked
    to be built by ``model_id``), making it if there is none."""
    started = time.monotonic()
    synced_ns = time.time_ns()  # before the marker is read: the copy is at least this fresh
    marker = collection.metadata.get(CHANGED_KEY)
    marker = str(marker) if marker is not None else None
    copy = _copy(db, vectors, ref, model_id)
    held = _count(db, copy)
    due = ref.copy_listed_ns is None or (
        synced_ns - ref.copy_listed_ns > FULL_COMPARE_INTERVAL_S * 1e9
    )
    if (
        marker is not None
        and marker == ref.copy_marker
        and not due
        and vectors.count(copy.vector_name) == held
    ):
        with db.transaction() as conn:
            refs_store.record_copy_sync(conn, ref, marker, synced_ns, None)
        yield CopyFinished(ref.name, held, 0, 0, synced_ns, time.monotonic() - started, False, True)
        return
    theirs = _server_ids(collection, cancel)
    if theirs is None:  # stopped while listing: nothing decided
        yield CopyFinished(ref.name, held, 0, 0, synced_ns, time.monotonic() - started, True, False)
        return
    with db.transaction() as conn:
        ours = set(lexical_index.chunk_ids(conn, copy.id))
    with_vectors = set(vectors.ids(copy.vector_name))
    wanted = set(theirs)
    gone = sorted((ours | with_vectors) - wanted)
    if gone:
        with db.transaction() as conn:
            lexical_index.delete_ids(conn, copy.id, gone)
        vectors.delete_ids(copy.vector_name, gone)
    missing = [i for i in theirs if i not in ours or i not in with_vectors]
    added = 0
    yield CopyProgress(ref.name, 0, len(missing))
    for start in range(0, len(missing), PULL_PAGE_ROWS):
        if cancel.is_set():
            break
        added += _pull(db, vectors, copy, collection, missing[start : start + PULL_PAGE_ROWS])
        yield CopyProgress(ref.name, min(start + PULL_PAGE_ROWS, len(missing)), len(missing))
    cancelled = cancel.is_set()
    if not cancelled:
        with db.transaction() as conn:
            refs_store.record_copy_sync(conn, ref, marker, synced_ns, synced_ns)
    log.info(
        "offline copy of %s: %d passages pulled, %d dropped%s",
        ref.name,
        added,
        len(gone),
        " (stopped)" if cancelled else "",
    )
    yield CopyFinished(
        ref.name,
        _count(db, copy),
        added,
        len(gone),
        synced_ns,
        time.monotonic() - started,
        cancelled,
        False,
    )


def _copy(
    db: DocumentDB, vectors: VectorIndex, ref: ServerCollectionRef, model_id: str
) -> Collection:
    """The copy, made now if there is none; one made by another embedding
    model (this computer's changed) is made again."""
    with db.transaction() as conn:
        copy = collection_store.copy_for(conn, ref.id)
        if copy is not None and copy.model_id == model_id:
            return copy
        if copy is not None:
            conn.execute("DELETE FROM collections WHERE id = ?", (copy.id,))
        made = collection_store.create_copy(conn, ref.id, model_id)
    if copy is not None:
        vectors.drop(copy.vector_name)
    return made


def _count(db: DocumentDB, copy: Collection) -> int:
    row = (
        db.connection()
        .execute("SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (copy.id,))
        .fetchone()
    )
    return int(row[0])


def _server_ids(collection: ServerCollection, cancel: threading.Event) -> list[str] | None:
    """Every id the server's collection holds, in its order (None if stopped)."""
    ids: list[str] = []
    offset = 0
    while True:
        if cancel.is_set():
            return None
        page = collection.get(include=(), limit=ID_PAGE_ROWS, offset=offset)
        ids.extend(page.ids)
        if len(page.ids) < ID_PAGE_ROWS:
            return list(dict.fromkeys(ids))
        offset += ID_PAGE_ROWS


def _pull(
    db: DocumentDB,
    vectors: VectorIndex,
    copy: Collection,
    collection: ServerCollection,
    ids: Sequence[str],
) -> int:
    """Copy these rows (text, locator, vector) from the server; returns how
    many arrived (one deleted on the server meanwhile does not)."""
    import numpy as np

    got = collection.get(ids=ids, include=("documents", "metadatas", "embeddings"))
    chunks: list[StoredChunk] = []
    keep: list[int] = []
    for n, (chunk_id, text, meta) in enumerate(
        zip(got.ids, got.documents, got.metadatas, strict=True)
    ):
        if text is None:
            log.warning("offline copy: %s has no text on the server, skipped", chunk_id)
            continue
        locator = locator_of(meta)
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        chunks.append(StoredChunk(chunk_id, str(meta.get("path", "")), digest, locator, text))
        keep.append(n)
    if not chunks:
        return 0
    embeddings = np.asarray([got.embeddings[n] for n in keep], dtype=np.float32)
    # Vectors first: a crash in between leaves a vector without its passage,
    # which the next refresh drops (a passage without its vector is found by
    # keywords only until then, which is worse).
    vectors.upsert(
        copy.vector_name,
        [c.id for c in chunks],
        embeddings,
        [chunk_metadata(copy.name, c.path, c.locator) for c in chunks],
    )
    with db.transaction() as conn:
        lexical_index.insert_chunks(conn, copy.id, chunks)
    return len(chunks)
