"""Crash-safe, incremental indexing of one collection.

``index_collection`` is a generator: it yields ``IngestProgress``,
``FileIndexed``, ``FileFailed`` and finally ``IngestFinished``, and stops
between files and batches once ``cancel`` is set.

Incremental. A file whose size and mtime match its manifest row is not
opened. A changed stat is followed by a SHA-256 of the content, which tells a
touch (row updated, nothing re-parsed) from a change. Re-embedding is avoided
further by content hash: a chunk whose text is already in the collection (a
renamed file, the unchanged paragraphs of an edited one) reuses its stored
vector. Deleted and newly excluded files have their chunks removed, at the
end of a run so a rename can reuse them first.

Crash-safe (kill -9 anywhere, then run again). The manifest is the source of
truth and every write that touches chunks follows one order:

1. the file's row is set ``indexing`` (committed);
2. its old vectors are deleted and the new ones upserted (chromadb);
3. in ONE SQLite transaction: its old lexical rows are deleted, the new ones
   inserted and the row set ``indexed`` (or ``failed``, or deleted).

A run first purges, by path, both indexes of every file left ``indexing``
and redoes those files, so a crash between 1 and 3 leaves neither duplicates
(ids are content hash + locator, upserts are idempotent) nor orphans.

Throughput. Embedding dominates (MiniLM, ~20 chunks/s on 2 cores), so
parsing runs ahead on a producer thread (the parser itself runs in worker
processes) while this thread embeds chunks of several files in one batch.

Healing. Before it scans, a run checks that the collection's stores agree
(``store_health``) and rebuilds what is lost (vectors from the stored passage
text, with ``VectorsRebuilding`` events), so a deleted or damaged vector
store never leaves search silently on keywords alone.

Stopping. ``cancel`` is seen within about a second in every phase: the scan
checks it per entry (and a cancelled scan decides nothing: no file is dropped
from the index because half a scan did not reach it), hashing and parsing
stop through ``stopped()`` (``safe_open``, ``parse_guard``), embedding goes in
slices of ``EMBED_SLICE_TEXTS`` and a batch is embedded before anything of it
is written, and the parser thread is waited for at most
``PRODUCER_STOP_WAIT_S`` (a read stuck in the kernel is left to end alone).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from retrieval import lexical_index, manifest, store_health
from retrieval.collections import Collection, update_collection
from retrieval.discovery import ExcludeRules, SkippedFile, discover, display_path
from retrieval.document_db import DocumentDB
from retrieval.eta import ThroughputEta
from retrieval.file_reader import (
    ChunkLike,
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
from retrieval.lexical_index import StoredChunk
from retrieval.manifest import FileRecord, FileState
from retrieval.store_health import EMBED_SLICE_TEXTS
from retrieval.vector_index import VectorIndex, chunk_metadata

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Chunks embedded and written together. Larger batches amortize chroma's and
# SQLite's per-call cost; smaller ones report progress (and lose less to a
# crash) more often. At ~20 chunks/s, 128 chunks is a write every ~6 s.
FLUSH_CHUNKS = 128
QUEUE_PARTS = 4  # parsed parts waiting for the embedder (bounds memory)
PROGRESS_INTERVAL_S = 0.25
_QUEUE_POLL_S = 0.1
NO_TEXT_REASON = "no text found in the file (empty, or only whitespace)"
# After a cancel, how long the consumer waits for the parser thread to stop.
# It stops within ~0.1 s unless it is stuck where no stop reaches: a read in
# the kernel (a dead network drive), or the embedder's first load (its
# tokenizer, seconds of imports); then it is left to end on its own rather
# than hold the run.
PRODUCER_STOP_WAIT_S = 0.5

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Cancelled in the middle of a batch: nothing of it is written."""


# ----------------------------------------------------------------- the run

_END = object()
# States in which a file's chunks may be in the indexes.
_MAY_HAVE_CHUNKS = frozenset({FileState.INDEXED, FileState.CHANGED, FileState.INDEXING})


def index_collection(
    db: DocumentDB,
    vectors: VectorIndex,
    collection: Collection,
    embedder: EmbedderLike,
    cancel: threading.Event,
    *,
    chunker: FileChunker = parse_and_chunk,
    flush_chunks: int = FLUSH_CHUNKS,
) -> Iterator[IngestEvent]:
    run = _Run(db, vectors, collection, embedder, cancel, chunker)
    run.flush_chunks = flush_chunks
    yield from run.events()


class _Run:
    def __init__(  # noqa: PLR0917 (index_collection's arguments, passed on)
        self,
        db: DocumentDB,
        vectors: VectorIndex,
        collection: Collection,
        embedder: EmbedderLike,
        cancel: threading.Event,
        chunker: FileChunker,
    ) -> None:
        self.db, self.vectors, self.embedder = db, vectors, embedder
        self.collection = collection
        self.cancel = cancel
        self.chunker = chunker
        self.flush_chunks = FLUSH_CHUNKS
        self.started = time.monotonic()
        self.files_total = self.files_done = 0
        self.bytes_total = self.bytes_done = 0
        # bytes' worth of text embedded so far from files not finished yet,
        # so a large file in progress counts toward the ETA (retrieval.eta)
        self.partial_bytes: dict[str, int] = {}
        self.eta = ThroughputEta()
        self.chunks_done = self.chunks_reused = 0
        self.indexed = self.failed = self.skipped = self.removed = self.unchanged = 0
        self.vectors_rebuilt = 0
        self.last_progress = 0.0
        self.current = ""
        # the embedder's batch: (work, chunk) pairs, and which files start/end in it
        self.batch: list[tuple[Work, ChunkLike]] = []
        self.batch_first: set[str] = set()
        self.batch_done: dict[str, ReadItem] = {}
        self.file_chunks: dict[str, int] = {}

    # --------------------------------------------------------- orchestration

    def events(self) -> Iterator[IngestEvent]:
        self._bind_model()
        self._recover()
        yield from self._heal()
        self._bind_chunker()  # after healing: its 'changed' files keep their chunks
        plan = None if self.cancel.is_set() else self._plan()
        if plan is None:
            yield self._finished()
            return
        work, skipped, deleted = plan
        yield from self._settle_skipped(skipped)
        self.files_total = len(work)
        self.bytes_total = sum(w.found.size for w in work)
        yield self._progress()
        yield from self._process(work)
        if deleted and not self.cancel.is_set():
            self._purge(deleted, forget=True)
            self.removed += len(deleted)
        yield self._progress()
        yield self._finished()

    def _count_not_indexed(self, state: str) -> None:
        if manifest.is_failure(state):
            self.failed += 1
        else:
            self.skipped += 1  # a type it does not read, or no text in it

    def _finished(self) -> IngestFinished:
        return IngestFinished(
            IngestSummary(
                collection=self.collection.name,
                indexed=self.indexed,
                unchanged=self.unchanged,
                failed=self.failed,
                removed=self.removed,
                chunks_added=self.chunks_done,
                chunks_reused=self.chunks_reused,
                seconds=time.monotonic() - self.started,
                cancelled=self.cancel.is_set(),
                vectors_rebuilt=self.vectors_rebuilt,
                skipped=self.skipped,
            )
        )

    @property
    def cid(self) -> int:
        return self.collection.id

    def _bind_model(self) -> None:
        """An index belongs to one embedder: another model id rebuilds it."""
        model_id = self.embedder.model_id
        if self.collection.model_id != model_id:
            with self.db.transaction() as db:
                lexical_index.delete_collection_chunks(db, self.cid)
                db.execute(
                    "UPDATE files SET state = 'pending', chunks = 0, mtime_ns = 0 "
                    "WHERE collection_id = ?",
                    (self.cid,),
                )
                self.collection = update_collection(db, self.collection, model_id=model_id)
        # Vector collections of this collection under another model (a rebuild,
        # possibly interrupted before it dropped them) are dropped.
        prefix = f"c{self.cid}-"
        for name in self.vectors.names():
            if name.startswith(prefix) and name != self.collection.vector_name:
                self.vectors.drop(name)

    def _bind_chunker(self) -> None:
        """An index is also tied to the rules that cut its files: a new
        ``chunking.CHUNKER_VERSION`` re-chunks every file on this run
        (``chunker_binding``); unchanged chunk texts keep their vectors."""
        from retrieval import chunking
        from retrieval.chunker_binding import bind_chunker

        with self.db.transaction() as db:
            bind_chunker(db, self.cid, chunking.CHUNKER_VERSION)

    def _recover(self) -> None:
        """Purge both indexes of files a crash left mid-write; they are redone."""
        with self.db.transaction() as db:
            stuck = manifest.paths_in_state(db, self.cid, FileState.INDEXING)
        if stuck:
            self.vectors.delete_paths(self.collection.vector_name, stuck)
            with self.db.transaction() as db:
                lexical_index.delete_paths(db, self.cid, stuck)
                db.executemany(
                    "UPDATE files SET state = 'pending', chunks = 0, mtime_ns = 0 "
                    "WHERE collection_id = ? AND path = ?",
                    [(self.cid, p) for p in stuck],
                )

    def _heal(self) -> Iterator[IngestEvent]:
        """Make the collection's stores agree again (see ``store_health``)."""
        found = store_health.check(self.db, self.vectors, self.collection)
        if found.agrees:
            return
        log.warning(
            "the index of %s needs repair: %s (%d passages, %d vectors)",
            self.collection.name,
            found.problem(),
            found.passages,
            found.vectors,
        )
        self.vectors_rebuilt = yield from store_health.heal(
            self.db, self.vectors, self.collection, self.embedder, self.cancel, found=found
        )

    def _plan(self) -> tuple[list[Work], list[SkippedFile], list[str]] | None:
        """What to read, skip and drop; None when cancelled during the scan."""
        with self.db.transaction() as db:
            known = manifest.records(db, self.cid)
        rules = ExcludeRules.with_defaults(self.collection.excludes)
        work: list[Work] = []
        skipped: list[SkippedFile] = []
        seen: set[str] = set()
        found = discover(
            self.collection.roots,
            rules,
            follow_links_outside=self.collection.follow_links_outside,
        )
        for entry in found:
            if self.cancel.is_set():
                return None
            key = path_key(entry.path)
            seen.add(key)
            if isinstance(entry, SkippedFile):
                skipped.append(entry)
                continue
            old = known.get(key)
            if (
                old is not None
                and old.size == entry.size
                and old.mtime_ns == entry.mtime_ns
                and old.state not in manifest.WORK_STATES
            ):
                self.unchanged += 1
                continue
            work.append(Work(entry, old))
        with self.db.transaction() as db:
            manifest.set_state(
                db,
                self.cid,
                [path_key(w.found.path) for w in work if w.old is None],
                FileState.PENDING,
            )
            manifest.set_state(
                db,
                self.cid,
                [
                    path_key(w.found.path)
                    for w in work
                    if w.old is not None and w.old.state == "indexed"
                ],
                FileState.CHANGED,
            )
        deleted = [p for p in known if p not in seen]
        return work, skipped, deleted

    def _settle_skipped(self, skipped: list[SkippedFile]) -> Iterator[IngestEvent]:
        """Excluded, unreadable and duplicate paths get a row with their reason;
        a file indexed before and excluded now loses its chunks."""
        with self.db.transaction() as db:
            known = manifest.records(db, self.cid)
        had_chunks = [
            path_key(s.path)
            for s in skipped
            if path_key(s.path) in known
            and (
                known[path_key(s.path)].chunks or known[path_key(s.path)].state in _MAY_HAVE_CHUNKS
            )
        ]
        if had_chunks:
            self._purge(had_chunks, forget=False)
            self.removed += len(had_chunks)
        with self.db.transaction() as db:
            for entry in skipped:
                manifest.record_result(
                    db,
                    self.cid,
                    FileRecord(path_key(entry.path), 0, 0, None, entry.state, entry.reason, 0),
                )
        for entry in skipped:
            if entry.state != "excluded":
                yield FileFailed(display_path(entry.path), entry.state, entry.reason)

    # --------------------------------------------------------- the pipeline

    def _process(self, work: list[Work]) -> Iterator[IngestEvent]:
        parts: queue.Queue[ReadItem | object] = queue.Queue(maxsize=QUEUE_PARTS)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(work, parts, stop), name="footnote-index-parse", daemon=True
        )
        producer.start()
        try:
            while True:
                if self.cancel.is_set():
                    break
                try:
                    item = parts.get(timeout=_QUEUE_POLL_S)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, ReadItem)
                yield from self._receive(item)
                if len(self.batch) >= self.flush_chunks:
                    yield from self._flush()
            if not self.cancel.is_set():
                yield from self._flush()
        finally:
            stop.set()
            deadline = time.monotonic() + PRODUCER_STOP_WAIT_S
            while producer.is_alive() and time.monotonic() < deadline:
                # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    parts.get(timeout=_QUEUE_POLL_S)
            if producer.is_alive():
                log.warning(
                    "the file reader is stuck on %s; it stops once the read returns",
                    self.current or "a file",
                )

    def _produce(
        self, work: list[Work], parts: queue.Queue[ReadItem | object], stop: threading.Event
    ) -> None:
        def put(message: object) -> bool:
            while not stop.is_set():
                try:
                    parts.put(message, timeout=_QUEUE_POLL_S)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for unit in work:
                if stop.is_set() or self.cancel.is_set():
                    return
                for item in self._read(unit, stop):
                    if not put(item):
                        return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 (a bug: the consumer re-raises it)
            put(exc)

    def _read(self, unit: Work, stop: threading.Event) -> Iterator[ReadItem]:
        yield from read_file(
            unit, self.chunker, self.embedder, lambda: stop.is_set() or self.cancel.is_set()
        )

    # --------------------------------------------------------- consumer side

    def _receive(self, item: ReadItem) -> Iterator[IngestEvent]:
        key = path_key(item.work.found.path)
        self.current = display_path(key)
        if item.touched or item.vanished or item.failure is not None:
            # the file's chunks of earlier parts may be in the batch still
            self.batch = [(w, c) for w, c in self.batch if path_key(w.found.path) != key]
            self.batch_first.discard(key)
            self.file_chunks.pop(key, None)
        if item.touched:
            with self.db.transaction() as db:
                manifest.touch(db, self.cid, key, item.work.found.size, item.work.found.mtime_ns)
                db.execute(
                    "UPDATE files SET state = 'indexed' WHERE collection_id = ? AND path = ? "
                    "AND state = 'changed'",
                    (self.cid, key),
                )
            self.unchanged += 1
            self._file_done(item.work)
        elif item.vanished:
            self._purge([key], forget=True)
            self.removed += 1
            self._file_done(item.work)
        elif item.failure is not None:
            self._purge([key], forget=False)
            found = item.work.found
            with self.db.transaction() as db:
                manifest.record_result(
                    db,
                    self.cid,
                    FileRecord(
                        key,
                        found.size,
                        found.mtime_ns,
                        item.sha256,
                        item.failure.state,
                        item.failure.reason,
                        0,
                    ),
                )
            self._count_not_indexed(item.failure.state)
            self._file_done(item.work)
            yield FileFailed(self.current, item.failure.state, item.failure.reason)
        else:
            if item.first:
                self.batch_first.add(key)
                self.file_chunks[key] = 0
            self.file_chunks[key] = self.file_chunks.get(key, 0) + len(item.chunks)
            self.batch.extend((item.work, c) for c in item.chunks)
            if item.last:
                self.batch_done[key] = item
        if time.monotonic() - self.last_progress >= PROGRESS_INTERVAL_S:
            yield self._progress()

    def _flush(self) -> Iterator[IngestEvent]:
        if not self.batch and not self.batch_done:
            return
        batch, first, done = self.batch, self.batch_first, self.batch_done
        self.batch, self.batch_first, self.batch_done = [], set(), {}
        name = self.collection.vector_name
        # Unique ids: the same text at the same locator twice is one chunk.
        unique: dict[str, tuple[Work, ChunkLike]] = {}
        for work, chunk in batch:
            unique.setdefault(chunk.id, (work, chunk))
        rows = list(unique.values())
        # Embedded before anything is written: a cancel while embedding
        # leaves these files as they were (pending or changed), for next time.
        try:
            vectors = self._vectors_for([c for _, c in rows])
        except _Stopped:
            return
        # 1. rows -> indexing, so a crash from here on purges and redoes them
        with self.db.transaction() as db:
            manifest.set_state(db, self.cid, sorted(first | set(done)), FileState.INDEXING)
        # 2. vectors: old ones of files starting here go, new ones come
        self.vectors.delete_paths(name, sorted(first))
        if rows:
            self.vectors.upsert(
                name,
                [c.id for _, c in rows],
                vectors,
                [
                    chunk_metadata(self.collection.name, path_key(w.found.path), c.locator)
                    for w, c in rows
                ],
            )
        # 3. lexical rows and the manifest, together
        with self.db.transaction() as db:
            lexical_index.delete_paths(db, self.cid, sorted(first))
            lexical_index.insert_chunks(
                db,
                self.cid,
                (
                    StoredChunk(
                        c.id, path_key(w.found.path), c.content_hash, c.locator, storable(c.text)
                    )
                    for w, c in rows
                ),
            )
            counts: dict[str, int] = {}
            for key, item in done.items():
                found = item.work.found
                count = counts[key] = self.file_chunks.pop(key, 0)
                state = FileState.INDEXED if count else FileState.NO_TEXT
                reason = "" if count else NO_TEXT_REASON
                manifest.record_result(
                    db,
                    self.cid,
                    FileRecord(key, found.size, found.mtime_ns, item.sha256, state, reason, count),
                )
        self.chunks_done += len(rows)
        for w, c in rows:
            key = path_key(w.found.path)
            self.partial_bytes[key] = min(
                w.found.size, self.partial_bytes.get(key, 0) + len(c.text.encode())
            )
        for key, item in done.items():
            self._file_done(item.work)
            if counts[key]:
                self.indexed += 1
                yield FileIndexed(display_path(key), counts[key])
            else:
                self._count_not_indexed(FileState.NO_TEXT)
                yield FileFailed(display_path(key), FileState.NO_TEXT, NO_TEXT_REASON)
        yield self._progress()

    def _vectors_for(self, chunks: list[ChunkLike]) -> npt.NDArray[np.float32]:
        """Stored vectors for texts already embedded in this collection; the
        embedder for the rest."""
        import numpy as np

        with self.db.transaction() as db:
            known = lexical_index.ids_by_content_hash(
                db, self.cid, sorted({c.content_hash for c in chunks})
            )
        stored = self.vectors.embeddings(self.collection.vector_name, sorted(set(known.values())))
        reuse = {h: stored[i] for h, i in known.items() if i in stored}
        fresh_texts: dict[str, str] = {}
        for c in chunks:
            if c.content_hash not in reuse:
                fresh_texts.setdefault(c.content_hash, c.text)
        fresh: dict[str, npt.NDArray[np.float32]] = {}
        hashes = list(fresh_texts)
        for start in range(0, len(hashes), EMBED_SLICE_TEXTS):
            if self.cancel.is_set():
                raise _Stopped
            part = hashes[start : start + EMBED_SLICE_TEXTS]
            embedded = self.embedder.embed_documents([fresh_texts[h] for h in part])
            fresh.update(zip(part, embedded, strict=True))
        self.chunks_reused += sum(1 for c in chunks if c.content_hash in reuse)
        if not chunks:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack(
            [
                reuse[c.content_hash] if c.content_hash in reuse else fresh[c.content_hash]
                for c in chunks
            ]
        )

    def _purge(self, paths: list[str], *, forget: bool) -> None:
        """Remove these files' chunks from both indexes (crash-safe order)."""
        with self.db.transaction() as db:
            manifest.set_state(db, self.cid, paths, FileState.INDEXING)
        self.vectors.delete_paths(self.collection.vector_name, paths)
        with self.db.transaction() as db:
            lexical_index.delete_paths(db, self.cid, paths)
            if forget:
                manifest.forget(db, self.cid, paths)
            else:
                db.executemany(
                    "UPDATE files SET state = 'pending', chunks = 0 WHERE collection_id = ? "
                    "AND path = ?",
                    [(self.cid, p) for p in paths],
                )

    def _file_done(self, work: Work) -> None:
        self.files_done += 1
        self.bytes_done += work.found.size
        self.partial_bytes.pop(path_key(work.found.path), None)

    def _progress(self) -> IngestProgress:
        now = time.monotonic()
        done = self.bytes_done + sum(self.partial_bytes.values())
        eta = self.eta.update(now, done, self.bytes_total)
        self.last_progress = now
        return IngestProgress(
            self.files_done, self.files_total, self.chunks_done, self.current, eta
        )
