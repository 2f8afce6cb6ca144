"""The dense index: chromadb ``PersistentClient`` in the data dir.

* Telemetry off (``anonymized_telemetry=False``).
* Embeddings are always passed in: every collection is opened with
  ``embedding_function=None``, so chroma's default embedding function (which
  downloads a model) can never run.
* One chroma collection per (Footnote collection, embedder model id), cosine
  space; ids are the chunk ids (content hash + locator), so an upsert of the
  same chunk never duplicates it. Metadata (path, page, heading, lines,
  collection) lets the indexer delete a file's chunks by path.
* Writes are serialized by a lock: the app indexes on a worker thread while
  searches run on the engine thread.
* The store is derived data: every vector can be made again from the chunk
  texts in the documents database. A store that cannot be opened is moved
  aside (``set_aside``: kept as ``chroma.damaged`` for a bug report, the
  previous such copy replaced) and a new one is made; ``retrieval.store_health``
  then re-embeds what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import IndexUnavailable, SearchBackendUnavailable
from retrieval.locator import Locator
from retrieval.quiet_import import quiet_imports

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

# Tries of the chromadb import before it is reported (see import_backend).
IMPORT_ATTEMPTS = 2
# chroma's own limit (client.get_max_batch_size()) is about 5k rows; stay under it.
UPSERT_BATCH_ROWS = 4000
# HNSW search breadth: chroma's default (10) misses neighbours at 100k chunks.
HNSW_SEARCH_EF = 100

Metadata = Mapping[str, str | int | float | bool]


# A new store: chroma's Rust side creates the SQLite database and applies its
# migrations inside one call that holds the GIL: 80-90 ms on the quiet 2-core
# VM, 320 ms in bench.ui under disk load (20 fsyncs), the window frozen the
# while. So a child process creates it (once per install; ~1 s, waited for
# with the GIL free) and this process opens an existing one (20-30 ms).
STORE_FILE = "chroma.sqlite3"
CREATE_STORE_TIMEOUT_S = 120
# Where a store that could not be opened is kept (one copy, the newest).
DAMAGED_SUFFIX = ".damaged"
# A stored vector queried against its own index must come back (its id, or
# a twin at this cosine distance or closer: float32 rounding) among its
# nearest neighbours: otherwise the HNSW graph behind the queries is lost or
# damaged although ids and counts still agree.
SELF_MATCH_MAX_DISTANCE = 1e-3
SELF_MATCH_NEIGHBOURS = 10  # how far down a probe may find itself (HNSW is approximate)


def _open_store(folder: str) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(
        path=folder, settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )


def _forget_failed_store(folder: str) -> None:
    """chroma keeps one started "system" per folder per process, and keeps it
    even when starting it failed (a damaged store: every later client of that
    folder then fails with an AttributeError) or when the folder was deleted
    (it answers from the deleted files). Forget it, so that a new store made
    in its place can be opened. (Private API, checked against chromadb 1.5:
    ``SharedSystemClient`` is keyed by the folder.)"""
    with contextlib.suppress(Exception):
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(folder, None)
        SharedSystemClient._identifier_to_refcount.pop(folder, None)
        if system is not None:
            with contextlib.suppress(Exception):
                system.stop()


def _create_store_in_child(folder: Path) -> None:
    """Best effort: if the child fails, the caller's own open creates the
    store (and raises chroma's error if the folder cannot hold one)."""
    child = multiprocessing.get_context("spawn").Process(
        target=_open_store, args=(str(folder),), name="footnote-new-vector-store", daemon=True
    )
    child.start()
    child.join(CREATE_STORE_TIMEOUT_S)
    if child.is_alive():
        child.kill()
        child.join()


def import_backend() -> None:
    """Import chromadb now (the app warms it up after start-up); the first
    open of an index would otherwise do it, on whichever thread needs it.

    An import that fails is tried once more: a thread importing a shared
    dependency outside ``quiet_imports`` can still hand this one a
    half-initialized module, and by the second try that import has settled.
    Raises :class:`SearchBackendUnavailable` (never ``IndexUnavailable``: the
    store itself was not even looked at) when both fail."""
    for attempt in range(IMPORT_ATTEMPTS):
        try:
            with quiet_imports():
                import chromadb  # noqa: F401
            return
        except Exception as exc:  # ImportError, AttributeError from a half-made module
            if attempt + 1 < IMPORT_ATTEMPTS:
                log.warning("importing chromadb failed (%r); trying again", exc)
                continue
            raise SearchBackendUnavailable(
                "Search by meaning could not start: its library (chromadb) failed to load. "
                "Your index is untouched and keyword search still works; restart Footnote, "
                "and reinstall it if this happens again.",
                detail=repr(exc),
            ) from exc


class VectorIndex:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _chroma(self) -> Any:
        with self._lock:
            if self._client is None:
                import_backend()  # its failure is not the store's
                try:
                    self._folder.mkdir(parents=True, exist_ok=True)
                    if not (self._folder / STORE_FILE).exists():
                        # a store deleted while this process had it open:
                        # chroma's cached one would still answer from it
                        _forget_failed_store(str(self._folder))
                        _create_store_in_child(self._folder)
                    # chroma imports its components as it starts them: in turn
                    # with the other threads' backend imports (see quiet_import).
                    with quiet_imports():
                        self._client = _open_store(str(self._folder))
                except ImportError as exc:  # the library, not the store
                    _forget_failed_store(str(self._folder))
                    raise SearchBackendUnavailable(
                        "Search by meaning could not start: part of its library (chromadb) "
                        "failed to load. Your index is untouched and keyword search still "
                        "works; restart Footnote, and reinstall it if this happens again.",
                        detail=repr(exc),
                    ) from exc
                except Exception as exc:  # chroma raises many kinds
                    _forget_failed_store(str(self._folder))
                    raise IndexUnavailable(
                        f"The search index in {self._folder} cannot be opened. Search by "
                        "meaning is unavailable until it is rebuilt, which Footnote does "
                        "on the next index run from the passages it keeps (your files and "
                        "keyword search are not affected).",
                        detail=repr(exc),
                    ) from exc
            return self._client

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def opened(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """Let go of the store (chroma keeps one client per folder per process)."""
        with self._lock:
            self._collections.clear()
            client, self._client = self._client, None
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    def store_exists(self) -> bool:
        return (self._folder / STORE_FILE).exists()

    def set_aside(self) -> Path:
        """Move a store that cannot be used out of the way (to ``chroma.damaged``,
        replacing an older one) so the next use makes a new, empty one;
        returns where it went."""
        with self._lock:
            self.close()
            damaged = self._folder.with_name(self._folder.name + DAMAGED_SUFFIX)
            if damaged.is_dir() and not damaged.is_symlink():
                shutil.rmtree(damaged, ignore_errors=True)
            elif damaged.exists() or damaged.is_symlink():
                damaged.unlink()
            if self._folder.exists():
                self._folder.rename(damaged)
            return damaged

    def _collection(self, name: str) -> Any:
        with self._lock:
            found = self._collections.get(name)
            if found is None:
                found = self._chroma().get_or_create_collection(
                    name,
                    embedding_function=None,
                    metadata={"hnsw:space": "cosine", "hnsw:search_ef": HNSW_SEARCH_EF},
                )
                self._collections[name] = found
            return found

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        embeddings: npt.NDArray[np.float32],
        metadatas: Sequence[Metadata],
    ) -> None:
        with self._lock:
            collection = self._collection(name)
            for start in range(0, len(ids), UPSERT_BATCH_ROWS):
                stop = start + UPSERT_BATCH_ROWS
                collection.upsert(
                    ids=list(ids[start:stop]),
                    embeddings=embeddings[start:stop],
                    metadatas=[dict(m) for m in metadatas[start:stop]],
                )

    def delete_paths(self, name: str, paths: Sequence[str]) -> None:
        if not paths:
            return
        with self._lock:
            collection = self._collection(name)
            for start in range(0, len(paths), 500):
                part = list(paths[start : start + 500])
                where = {"path": part[0]} if len(part) == 1 else {"path": {"$in": part}}
                collection.delete(where=where)

    def embeddings(self, name: str, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """Stored vectors of these ids (those that exist)."""
        import numpy as np

        if not ids:
            return {}
        with self._lock:
            got = self._collection(name).get(ids=list(ids), include=["embeddings"])
        return {
            chunk_id: np.asarray(vector, dtype=np.float32)
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True)
        }

    def query(self, name: str, vector: npt.NDArray[np.float32], k: int) -> list[tuple[str, float]]:
        """Nearest ``k`` (chunk id, cosine similarity). Raises ``IndexUnavailable``
        when the store cannot be read (the search falls back to keywords)."""
        collection = self._collection(name)
        try:
            count = collection.count()
            if count == 0:
                return []
            got = collection.query(
                query_embeddings=[vector], n_results=min(k, count), include=["distances"]
            )
        except Exception as exc:  # chroma raises many kinds
            raise IndexUnavailable(
                "The search index cannot be read; search uses keywords only until the "
                "next index run rebuilds it from the stored passages.",
                detail=repr(exc),
            ) from exc
        # cosine distance = 1 - cosine similarity
        return [
            (chunk_id, 1.0 - float(distance))
            for chunk_id, distance in zip(got["ids"][0], got["distances"][0], strict=True)
        ]

    def ids(self, name: str) -> list[str]:
        with self._lock:
            return list(self._collection(name).get(include=[])["ids"])

    def existing(self, name: str, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` that have a vector."""
        if not ids:
            return set()
        with self._lock:
            return set(self._collection(name).get(ids=list(ids), include=[])["ids"])

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        with self._lock:
            collection = self._collection(name)
            for start in range(0, len(ids), UPSERT_BATCH_ROWS):
                collection.delete(ids=list(ids[start : start + UPSERT_BATCH_ROWS]))

    def finds_itself(self, name: str, ids: Sequence[str]) -> bool:
        """Some of these stored vectors, queried, come back among their own
        nearest neighbours: the search structure is there, not only the rows.
        One miss is HNSW's approximate recall, not damage; a lost or broken
        graph misses them all."""
        stored = self.embeddings(name, ids)
        if not stored:
            return True
        collection = self._collection(name)
        neighbours = max(1, min(SELF_MATCH_NEIGHBOURS, collection.count()))
        for chunk_id, vector in stored.items():
            got = collection.query(
                query_embeddings=[vector], n_results=neighbours, include=["distances"]
            )
            found = got["ids"][0] if got["ids"] else []
            distances = got["distances"][0] if got["distances"] else []
            if chunk_id in found or any(float(d) <= SELF_MATCH_MAX_DISTANCE for d in distances):
                return True
        return False

    def count(self, name: str) -> int:
        return int(self._collection(name).count())

    def drop(self, name: str) -> None:
        with self._lock:
            self._collections.pop(name, None)
            client = self._chroma()
            if name in {_name(c) for c in client.list_collections()}:
                client.delete_collection(name)

    def names(self) -> list[str]:
        return [_name(c) for c in self._chroma().list_collections()]


def chunk_metadata(collection: str, path: str, locator: Locator) -> dict[str, str | int]:
    """What a vector carries besides its id: its file (to delete a file's
    vectors by path) and its place in it."""
    meta: dict[str, str | int] = {"path": path, "collection": collection}
    if locator.page is not None:
        meta["page"] = locator.page
    if locator.heading_path:
        meta["heading"] = " › ".join(locator.heading_path)
    if locator.line_start is not None:
        meta["lines"] = f"{locator.line_start}-{locator.line_end or locator.line_start}"
    return meta


def _name(collection: Any) -> str:
    # chroma >= 0.6 lists names (str); older versions list Collection objects.
    return collection if isinstance(collection, str) else str(collection.name)
