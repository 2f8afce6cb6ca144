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
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import IndexUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# chroma's own limit (client.get_max_batch_size()) is about 5k rows; stay under it.
UPSERT_BATCH_ROWS = 4000
# HNSW search breadth: chroma's default (10) misses neighbours at 100k chunks.
HNSW_SEARCH_EF = 100

Metadata = Mapping[str, str | int | float | bool]


class VectorIndex:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _chroma(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import chromadb
                    from chromadb.config import Settings

                    self._folder.mkdir(parents=True, exist_ok=True)
                    self._client = chromadb.PersistentClient(
                        path=str(self._folder),
                        settings=Settings(anonymized_telemetry=False, allow_reset=False),
                    )
                except Exception as exc:  # chroma raises many kinds
                    raise IndexUnavailable(
                        f"The vector index in {self._folder} cannot be opened; if it keeps "
                        "failing, remove that folder and index again.",
                        detail=repr(exc),
                    ) from exc
            return self._client

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
        """Nearest ``k`` (chunk id, cosine similarity)."""
        collection = self._collection(name)
        count = collection.count()
        if count == 0:
            return []
        got = collection.query(
            query_embeddings=[vector], n_results=min(k, count), include=["distances"]
        )
        # cosine distance = 1 - cosine similarity
        return [
            (chunk_id, 1.0 - float(distance))
            for chunk_id, distance in zip(got["ids"][0], got["distances"][0], strict=True)
        ]

    def ids(self, name: str) -> list[str]:
        with self._lock:
            return list(self._collection(name).get(include=[])["ids"])

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


def _name(collection: Any) -> str:
    # chroma >= 0.6 lists names (str); older versions list Collection objects.
    return collection if isinstance(collection, str) else str(collection.name)
