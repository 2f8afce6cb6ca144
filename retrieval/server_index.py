"""Indexing folders into a collection on a Chroma server, from any machine.

``index_into_server`` is a generator of the same events as the local indexer
(``IngestProgress``, ``FileIndexed``, ``FileFailed``, ``IngestFinished``),
so the CLI prints it the same way. It reads files with the product's parser
and chunker (``file_reader.read_file``: hashing, worker processes, the same
guards) and embeds with this machine's embedder; the server keeps the text,
the vectors and, in each chunk's metadata, its file's size, mtime and
SHA-256.

The server is the manifest: a run lists what the collection holds (path ->
size, mtime, SHA-256, chunk ids), so a second machine indexing the same
share does no work for unchanged files, and a file deleted from the share
loses its chunks whoever runs next. Only files under this run's folders are
ever deleted: other machines may index other folders into the same
collection. Nothing is written locally.

Order of writes per file: upsert its new chunks, then delete its chunks
that are no longer among them (ids are content hash + locator, so an
unchanged paragraph keeps its id). A run killed in between leaves a file
with chunks of two versions, whose metadata disagree: the next run sees the
disagreement and redoes that file.

The collection records the embedding model that built it
(``bind_collection``); a run with another model is refused before anything
is read.

Change marker: Chroma records no version a client can read (a ``chroma
run`` collection's ``version`` and ``log_position`` stay 0 through writes),
so a run writes its own, ``footnote:changed`` in the collection's metadata,
before its first write and again when it ends (also when stopped or
failed). An offline copy (``offline_copy``) compares it with the one it
read last and lists the collection only when it moved; a run killed
between the two is caught by the copy's daily full comparison.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.chroma_server import ChromaServer, ServerCollection
from retrieval.discovery import ExcludeRules, SkippedFile, discover, display_path
from retrieval.errors import ChromaServerError, ServerCollectionMismatch
from retrieval.file_reader import (
    EmbedderLike,
    FileChunker,
    ReadItem,
    Work,
    parse_and_chunk,
    path_key,
    read_file,
    storable,
)
from retrieval.ingest_events import (
    FileFailed,
    FileIndexed,
    IngestEvent,
    IngestFinished,
    IngestProgress,
    IngestSummary,
)
from retrieval.manifest import FileRecord
from retrieval.server_search import LOCATOR_KEY

log = logging.getLogger(__name__)

FORMAT_KEY = "footnote:format"
FORMAT_VERSION = 1  # how chunks are stored (metadata keys); bump on a change
EMBEDDER_KEY = "footnote:embedder"
DIMENSIONS_KEY = "footnote:dimensions"
SPACE_KEY = "hnsw:space"
CHANGED_KEY = "footnote:changed"  # a new value whenever a run writes (see above)
LIST_PAGE_ROWS = 2000  # metadata rows per request when listing the collection
EMBED_SLICE_TEXTS = 64  # texts per embedder call: a cancel waits at most one slice
PROGRESS_INTERVAL_S = 0.25


def collection_metadata(embedder: EmbedderLike, dimensions: int) -> dict[str, str | int]:
    return {
        SPACE_KEY: "cosine",
        FORMAT_KEY: FORMAT_VERSION,
        EMBEDDER_KEY: embedder.model_id,
        DIMENSIONS_KEY: dimensions,
    }


def new_change_marker() -> str:
    """Unique across machines and runs: the time and a random part."""
    import secrets

    return f"{time.time_ns()}-{secrets.token_hex(4)}"


def mark_changed(collection: ServerCollection) -> None:
    """Write a new change marker into the collection's metadata."""
    collection.modify_metadata({**collection.metadata, CHANGED_KEY: new_change_marker()})


def check_binding(collection: ServerCollection, model_id: str) -> None:
    """Raises :class:`ServerCollectionMismatch` unless ``collection`` was
    built by Footnote with the embedding model ``model_id``."""
    meta = collection.metadata
    where = f"The collection “{collection.name}” on {collection.server.url}"
    theirs = meta.get(EMBEDDER_KEY)
    if not isinstance(theirs, str):
        raise ServerCollectionMismatch(
            f"{where} was not made by Footnote (it records no embedding model), so its "
            "vectors cannot be searched; index documents into a new collection instead.",
            detail=repr(meta),
        )
    if theirs != model_id:
        raise ServerCollectionMismatch(
            f"{where} was built with the embedding model {theirs}, and Footnote here uses "
            f"{model_id}; their vectors do not compare, so use the same model or another "
            "collection.",
            detail=repr(meta),
        )
    if meta.get(SPACE_KEY, "l2") != "cosine" or int(meta.get(FORMAT_KEY, 0)) > FORMAT_VERSION:
        raise ServerCollectionMismatch(
            f"{where} was written by a newer or different Footnote; update Footnote "
            "on this machine.",
            detail=repr(meta),
        )


def bind_collection(
    server: ChromaServer, name: str, embedder: EmbedderLike, dimensions: int
) -> ServerCollection:
    """The collection ``name``, made now (recording the embedder) if the
    server has none; refused if it was built by another embedder."""
    found = server.create_collection(name, collection_metadata(embedder, dimensions))
    check_binding(found, embedder.model_id)
    return found


@dataclass
class _ServerFile:
    """What the server holds of one file."""

    ids: list[str] = field(default_factory=list)
    versions: set[tuple[int, int, str]] = field(default_factory=set)  # (size, mtime, sha)

    def record(self, path: str) -> FileRecord | None:
        if len(self.versions) != 1:
            return None  # two versions' chunks: a run stopped mid-file; redo it
        size, mtime_ns, sha = next(iter(self.versions))
        return FileRecord(path, size, mtime_ns, sha or None, "indexed", "", len(self.ids))


def server_files(collection: ServerCollection) -> dict[str, _ServerFile]:
    """path -> what the collection holds of it, read page by page."""
    files: dict[str, _ServerFile] = {}
    offset = 0
    while True:
        page = collection.get(include=("metadatas",), limit=LIST_PAGE_ROWS, offset=offset)
        for chunk_id, meta in zip(page.ids, page.metadatas, strict=True):
            held = files.setdefault(str(meta.get("path", "")), _ServerFile())
            held.ids.append(chunk_id)
            held.versions.add(
                (int(meta.get("size", -1)), int(meta.get("mtime_ns", -1)), str(meta.get("sha256")))
            )
        if len(page.ids) < LIST_PAGE_ROWS:
            return files
        offset += LIST_PAGE_ROWS


def index_into_server(
    server: ChromaServer,
    name: str,
    roots: Sequence[Path],
    embedder: EmbedderLike,
    cancel: threading.Event,
    *,
    excludes: Sequence[str] = (),
    dimensions: int | None = None,
    chunker: FileChunker = parse_and_chunk,
) -> Iterator[IngestEvent]:
    """Index ``roots`` into the server's collection ``name`` (made if needed)."""
    run = _ServerRun(server, name, roots, embedder, cancel, excludes, chunker)
    yield from run.events(dimensions)


class _ServerRun:
    def __init__(  # noqa: PLR0917 (index_into_server's arguments, passed on)
        self,
        server: ChromaServer,
        name: str,
        roots: Sequence[Path],
        embedder: EmbedderLike,
        cancel: threading.Event,
        excludes: Sequence[str],
        chunker: FileChunker,
    ) -> None:
        self.server, self.name, self.embedder, self.cancel = server, name, embedder, cancel
        self.roots = [Path(r).expanduser().absolute() for r in roots]
        self.rules = ExcludeRules.with_defaults(excludes)
        self.chunker = chunker
        self.started = time.monotonic()
        self.indexed = self.failed = self.skipped = self.removed = self.unchanged = 0
        self.chunks_done = 0
        self.files_total = self.files_done = 0
        self.last_progress = 0.0
        self.marked = False  # a change marker was written before this run's first write

    def events(self, dimensions: int | None) -> Iterator[IngestEvent]:
        dims = dimensions if dimensions is not None else _dimensions(self.embedder)
        collection = bind_collection(self.server, self.name, self.embedder, dims)
        try:
            yield from self._events(collection)
        finally:
            if self.marked:  # after the last write, whatever ended the run
                try:
                    mark_changed(collection)
                except ChromaServerError as exc:
                    # the run's own failure (likely the same) is what the user reads
                    log.warning("could not mark %s as changed: %s", self.name, exc.message)

    def _before_writing(self, collection: ServerCollection) -> None:
        if not self.marked:
            mark_changed(collection)
            self.marked = True

    def _events(self, collection: ServerCollection) -> Iterator[IngestEvent]:
        held = server_files(collection)
        work, skipped, seen = self._plan(held)
        if work is None:
            yield self._finished()
            return
        for entry in skipped:
            if entry.state != "excluded":
                self.skipped += 1
                yield FileFailed(display_path(entry.path), entry.state, entry.reason)
        self.files_total = len(work)
        yield self._progress("")
        for unit in work:
            if self.cancel.is_set():
                break
            yield from self._index_file(collection, unit, held.get(path_key(unit.found.path)))
            self.files_done += 1
            yield self._progress(display_path(unit.found.path))
        if not self.cancel.is_set():
            gone = [p for p in held if p not in seen and self._under_roots(p)]
            if gone:
                self._before_writing(collection)
            for start in range(0, len(gone), 200):
                part = gone[start : start + 200]
                where = {"path": {"$in": part}} if len(part) > 1 else {"path": part[0]}
                collection.delete(where=where)
            self.removed += len(gone)
        yield self._finished()

    def _plan(
        self, held: Mapping[str, _ServerFile]
    ) -> tuple[list[Work] | None, list[SkippedFile], set[str]]:
        work: list[Work] = []
        skipped: list[SkippedFile] = []
        seen: set[str] = set()
        for entry in discover(self.roots, self.rules):
            if self.cancel.is_set():
                return None, skipped, seen  # a partial scan decides nothing
            key = path_key(entry.path)
            if isinstance(entry, SkippedFile):
                skipped.append(entry)  # not "seen": an excluded file's chunks go
                continue
            seen.add(key)
            known = held.get(key)
            old = known.record(key) if known is not None else None
            if old is not None and old.size == entry.size and old.mtime_ns == entry.mtime_ns:
                self.unchanged += 1
                continue
            work.append(Work(entry, old))
        return work, skipped, seen

    def _under_roots(self, path: str) -> bool:
        for root in self.roots:
            text = path_key(root)
            if path == text or path.startswith(text.rstrip(os.sep) + os.sep):
                return True
        return False

    def _index_file(
        self, collection: ServerCollection, unit: Work, known: _ServerFile | None
    ) -> Iterator[IngestEvent]:
        path = path_key(unit.found.path)
        chunks = []
        sha: str | None = None
        for item in read_file(unit, self.chunker, self.embedder, self.cancel.is_set):
            if self.cancel.is_set():
                return
            failure = _failure(item)
            if failure is not None:
                if known is not None:
                    self._before_writing(collection)
                    collection.delete(ids=known.ids)  # stale chunks of a file now unreadable
                yield FileFailed(display_path(unit.found.path), *failure)
                self.failed += 1
                return
            if item.touched and known is not None:
                self._before_writing(collection)
                meta = self._file_meta(unit, item.sha256 or "")
                stored = collection.get(ids=known.ids, include=("metadatas",))
                collection.update_metadatas(stored.ids, [{**m, **meta} for m in stored.metadatas])
                self.unchanged += 1
                return
            sha = item.sha256
            chunks.extend(item.chunks)
        if not chunks:
            if known is not None:
                self._before_writing(collection)
                collection.delete(ids=known.ids)
            self.skipped += 1
            yield FileFailed(display_path(unit.found.path), "no_text", "no text found in the file")
            return
        texts = [storable(c.text) for c in chunks]
        vectors = []
        for start in range(0, len(texts), EMBED_SLICE_TEXTS):
            if self.cancel.is_set():
                return  # nothing of this file was written
            vectors.append(self.embedder.embed_documents(texts[start : start + EMBED_SLICE_TEXTS]))
        import numpy as np

        meta = self._file_meta(unit, sha or "")
        ids = [c.id for c in chunks]
        # one id once (a file repeating a paragraph at the same locator cannot,
        # but a chunker bug must not make the server refuse the batch)
        unique = dict(zip(ids, range(len(ids)), strict=True))
        rows = list(unique.values())
        self._before_writing(collection)
        collection.upsert(
            [ids[n] for n in rows],
            np.concatenate(vectors)[rows],
            [texts[n] for n in rows],
            [{**meta, "path": path, LOCATOR_KEY: _locator_json(chunks[n].locator)} for n in rows],
        )
        if known is not None:
            stale = [i for i in known.ids if i not in unique]
            if stale:
                collection.delete(ids=stale)
        self.indexed += 1
        self.chunks_done += len(rows)
        yield FileIndexed(display_path(unit.found.path), len(rows))

    @staticmethod
    def _file_meta(unit: Work, sha: str) -> dict[str, str | int]:
        return {"size": unit.found.size, "mtime_ns": unit.found.mtime_ns, "sha256": sha}

    def _progress(self, current: str) -> IngestProgress:
        return IngestProgress(self.files_done, self.files_total, self.chunks_done, current, None)

    def _finished(self) -> IngestFinished:
        return IngestFinished(
            IngestSummary(
                collection=self.name,
                indexed=self.indexed,
                unchanged=self.unchanged,
                failed=self.failed,
                removed=self.removed,
                chunks_added=self.chunks_done,
                chunks_reused=0,
                seconds=time.monotonic() - self.started,
                cancelled=self.cancel.is_set(),
                skipped=self.skipped,
            )
        )


def _failure(item: ReadItem) -> tuple[str, str] | None:
    if item.failure is not None:
        return item.failure.state, item.failure.reason
    if item.vanished:
        return "unreadable", "the file was deleted or replaced while it was being read"
    return None


def _locator_json(locator: Any) -> str:
    import json

    return json.dumps(locator.to_dict(), ensure_ascii=False)


def _dimensions(embedder: EmbedderLike) -> int:
    dims = getattr(embedder, "dimensions", None)
    if isinstance(dims, int):
        return dims
    return int(embedder.embed_documents(["dimensions"]).shape[1])
