"""The document library: what the app and the CLI use of local documents.

``DocumentLibrary(data_dir, embedder_factory)`` adds and removes collections,
reports each file's health, indexes (a generator of ``IngestEvent``) and
searches (hybrid, with locators). Everything lives under ``data_dir``: the
documents database (collections, manifest, chunks, BM25) and ``chroma/``.

Threads: the app indexes on a worker thread while the engine thread searches.
Each thread gets its own SQLite connection (``DocumentDB``), chroma writes
are serialized (``VectorIndex``), and the embedder is created once under a
lock. Two ``index()`` runs at once are serialized too: they would race on the
same manifest rows.

Self-healing. Every ``index()`` run first makes sure the stores agree: a
vector store that cannot be opened is moved aside and made anew, a keyword
index out of step is rebuilt, and each collection's run re-embeds lost
vectors from the stored passages (``store_health``). ``check_stores()``
reports, per collection, what search by meaning can see; ``index status``
and the Documents page show it, so a degraded search is never silent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval import collections as collection_store
from retrieval import lexical_index, manifest, store_health
from retrieval import server_collections as server_store
from retrieval.collections import Collection
from retrieval.discovery import display_path
from retrieval.document_db import DocumentDB
from retrieval.errors import IndexUnavailable, SearchBackendUnavailable
from retrieval.file_reader import EmbedderLike, FileChunker, parse_and_chunk
from retrieval.hybrid import DEFAULT_FUSION, Fuser
from retrieval.indexer import FLUSH_CHUNKS, index_collection
from retrieval.ingest_events import IngestEvent, VectorsRebuilding
from retrieval.passage import RetrievedPassage
from retrieval.server_collections import ServerCollectionRef
from retrieval.server_library import ServerLibrary
from retrieval.server_search import ServerCandidates
from retrieval.store_health import StoreHealth, VectorStoreDamaged
from retrieval.vector_index import VectorIndex

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

VECTOR_DIR = "chroma"
DEFAULT_RESULTS = 8
# Candidates each retriever hands to the fusion; more than k so a passage
# ranked modestly by both can still win.
CANDIDATES_PER_RETRIEVER = 50


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    roots: tuple[Path, ...]
    excludes: tuple[str, ...]
    model_id: str | None
    files: int  # every path with a manifest row (indexed, failed, excluded…)
    states: dict[str, int]  # state -> number of files
    chunks: int
    # What search by meaning sees of it, as last checked in this process
    # (None: not checked yet; ``DocumentLibrary.check_stores`` checks now).
    vectors: StoreHealth | None = None
    follow_links_outside: bool = False


@dataclass(frozen=True)
class FileHealth:
    path: str  # printable (undecodable bytes shown as U+FFFD)
    state: str
    reason: str
    chunks: int


class DocumentLibrary:
    def __init__(
        self,
        data_dir: Path,
        embedder_factory: Callable[[], EmbedderLike],
        *,
        fusion: Fuser = DEFAULT_FUSION,
        chunker: FileChunker = parse_and_chunk,
        flush_chunks: int = FLUSH_CHUNKS,
        server_token: Callable[[str], str | None] | None = None,
        before_server_query: Callable[[str, str], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self._db = DocumentDB(data_dir)
        self._vectors = VectorIndex(data_dir / VECTOR_DIR)
        self._embedder_factory = embedder_factory
        self._embedder: EmbedderLike | None = None
        self._embedder_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._fusion = fusion
        self._chunker = chunker
        self._flush_chunks = flush_chunks
        self._health: dict[str, StoreHealth] = {}  # collection name -> last seen
        self._health_lock = threading.Lock()
        # Collections on Chroma servers: registered here, searched with the rest.
        self.servers = ServerLibrary(
            self._db,
            lambda: self.embedder,
            vectors=self._vectors,
            write_lock=self._index_lock,
            token_for=server_token,
            before_query=before_server_query,
        )

    def close(self) -> None:
        self.servers.close()
        self._db.close()
        self._vectors.close()

    @property
    def embedder(self) -> EmbedderLike:
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    # ------------------------------------------------------------ collections

    def add_collection(
        self,
        name: str,
        roots: Sequence[Path],
        excludes: Sequence[str] = (),
        *,
        follow_links_outside: bool = False,
    ) -> Collection:
        """A new collection (nothing is read until :meth:`index`). Links to
        files and folders outside ``roots`` are skipped unless
        ``follow_links_outside``."""
        with self._db.transaction() as db:
            return collection_store.create_collection(
                db, name, roots, excludes, follow_links_outside=follow_links_outside
            )

    def update_collection(
        self,
        name: str,
        *,
        roots: Sequence[Path] | None = None,
        excludes: Sequence[str] | None = None,
        follow_links_outside: bool | None = None,
    ) -> Collection:
        with self._db.transaction() as db:
            found = collection_store.get_collection(db, name)
            return collection_store.update_collection(
                db,
                found,
                roots=roots,
                excludes=excludes,
                follow_links_outside=follow_links_outside,
            )

    def collection(self, name: str) -> Collection:
        with self._db.transaction() as db:
            return collection_store.get_collection(db, name)

    def find_collection(self, name: str) -> Collection | None:
        with self._db.transaction() as db:
            return collection_store.find_collection(db, name)

    def remove_collection(self, name: str) -> None:
        """Its index goes (manifest, chunks, vectors); the files stay untouched."""
        with self._index_lock:
            with self._db.transaction() as db:
                found = collection_store.get_collection(db, name)
                collection_store.delete_collection(db, found)
            with self._health_lock:
                self._health.pop(name, None)
            # After the rows: a crash here leaves only vectors named after an id
            # that no longer exists, which _drop_orphan_vectors removes (so
            # does the next index run, if the vector store cannot be opened
            # now: a damaged store must not keep a collection from going).
            try:
                self._drop_orphan_vectors()
            except IndexUnavailable as exc:
                log.warning("removed %s; its vectors go on the next run: %s", name, exc.detail)

    def collections(self) -> list[CollectionInfo]:
        with self._db.transaction() as db:
            found = collection_store.all_collections(db)
            infos = []
            for c in found:
                states = manifest.state_counts(db, c.id)
                chunks = db.execute(
                    "SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (c.id,)
                ).fetchone()[0]
                infos.append(
                    CollectionInfo(
                        c.name,
                        c.roots,
                        c.excludes,
                        c.model_id,
                        sum(states.values()),
                        states,
                        chunks,
                        self._health.get(c.name),
                        c.follow_links_outside,
                    )
                )
        return infos

    def file_health(self, name: str) -> list[FileHealth]:
        """Every file the collection knows, with its state and reason."""
        with self._db.transaction() as db:
            found = collection_store.get_collection(db, name)
            rows = manifest.records(db, found.id)
        return [
            FileHealth(display_path(r.path), r.state, r.reason, r.chunks)
            for r in sorted(rows.values(), key=lambda r: r.path)
        ]

    def retry_failed(self, name: str) -> int:
        """Failed files are parsed again by the next :meth:`index`; returns how many."""
        with self._db.transaction() as db:
            found = collection_store.get_collection(db, name)
            return manifest.reset_failures(db, found.id)

    # ------------------------------------------------------------ indexing

    def index(
        self, name: str | None, cancel: threading.Event
    ) -> Generator[IngestEvent, None, None]:
        """Index one collection, or all (``None``), incrementally; also the
        rescan at start that catches changes made while the app was closed."""
        with self._index_lock:
            with self._db.transaction() as db:
                targets = (
                    collection_store.all_collections(db)
                    if name is None
                    else [collection_store.get_collection(db, name)]
                )
                if not store_health.keyword_index_agrees(db):
                    log.warning("the keyword index is out of step: rebuilding it")
                    store_health.rebuild_keyword_index(db)
            self._open_vector_store(targets)
            self._drop_orphan_vectors()
            for target in targets:
                if cancel.is_set():
                    return
                yield from self._index_one(target, cancel)

    def _index_one(self, target: Collection, cancel: threading.Event) -> Iterator[IngestEvent]:
        """One collection's run; a vector store that fails while the run
        heals it is set aside and the run starts again on a new one."""
        for attempt in range(2):
            try:
                for event in index_collection(
                    self._db,
                    self._vectors,
                    target,
                    self.embedder,
                    cancel,
                    chunker=self._chunker,
                    flush_chunks=self._flush_chunks,
                ):
                    if isinstance(event, VectorsRebuilding):
                        self._note_rebuilding(target.name, event)
                    yield event
            except VectorStoreDamaged as exc:
                if attempt:
                    raise
                self._set_vector_store_aside(exc)
                self._open_vector_store([target])
            else:
                self._recheck(target.name)
                return

    def _note_unreadable(self, targets: Sequence[Collection]) -> None:
        with self._health_lock:
            for c in targets:
                known = self._health.get(c.name)
                passages = known.passages if known is not None else 0
                self._health[c.name] = StoreHealth(
                    "broken", passages, 0, "the vector store could not be read"
                )

    def _note_rebuilding(self, name: str, event: VectorsRebuilding) -> None:
        health = StoreHealth("rebuilding", event.passages_total, event.passages_done, event.reason)
        with self._health_lock:
            self._health[name] = health

    def _recheck(self, name: str) -> None:
        try:
            self.check_stores(name)
        except IndexUnavailable:
            log.warning("could not check the index of %s after its run", name, exc_info=True)

    def _open_vector_store(self, targets: Sequence[Collection]) -> None:
        """Open the vector store, making a new one in place of one that cannot
        be opened (or that was deleted while open). Raises ``IndexUnavailable``
        with what is lost when not even a new one can be made."""
        if self._vectors.opened and not self._vectors.store_exists():
            log.warning("the vector store %s was deleted: making a new one", self._vectors.folder)
            self._vectors.close()
        try:
            self._vectors.names()
            return
        except IndexUnavailable as exc:
            first = exc
        try:
            self._set_vector_store_aside(first)
            self._vectors.names()
        except (IndexUnavailable, OSError) as exc:
            detail = exc.detail if isinstance(exc, IndexUnavailable) else repr(exc)
            problem = f"the vector store in {self._vectors.folder} cannot be created"
            action = "free some disk space or make that folder writable, then index again"
            with self._health_lock:
                for c in targets:
                    self._health[c.name] = StoreHealth("broken", 0, 0, problem, action)
            raise IndexUnavailable(
                f"Search by meaning is unavailable: {problem}. Keyword search still works "
                f"and no passage is lost; {action}.",
                detail=f"{first.detail}; then: {detail}",
            ) from exc

    def _set_vector_store_aside(self, exc: IndexUnavailable) -> None:
        moved = self._vectors.set_aside()
        log.warning(
            "the vector store could not be used (%s); kept it as %s, making a new one "
            "to rebuild from the stored passages",
            exc.detail or exc.message,
            moved,
        )

    def _drop_orphan_vectors(self) -> None:
        with self._db.transaction() as db:
            ids = collection_store.all_collection_ids(db)  # offline copies' too
        for vector_name in self._vectors.names():
            owner = vector_name.split("-", 1)[0].removeprefix("c")
            if owner.isdigit() and int(owner) not in ids:
                self._vectors.drop(vector_name)

    # ------------------------------------------------------------ search

    def search(
        self, query: str, collections: Sequence[str] | None = None, k: int = DEFAULT_RESULTS
    ) -> list[RetrievedPassage]:
        """The ``k`` best passages for ``query`` in these collections (all by
        default), with locators, in fused order (best first: keep it).

        Each passage's ``score`` is its MiniLM cosine similarity to the query,
        not the fused score: fused scores only rank within one call, while the
        chat turn compares document scores with web passages' (the same
        model's cosine) and the Auto web-search rule asks whether the best
        document is relevant at all. Every candidate carries its real cosine
        (``rankings`` re-scores the union), except chunks of a collection
        built by another model, which get the lowest dense candidate's. The
        passage also carries its dense and lexical ranks and the question's
        identifiers and content words it holds (see ``RetrievedPassage``),
        what a relevance gate needs beside the cosine."""
        query = query.strip()
        if not query or k <= 0:
            return []
        targets, remote = self._targets(collections)
        if not targets and not remote:
            return []
        vector = self.embedder.embed_documents([query])[0] if remote else None
        server_hits: list[ServerCandidates] = []
        copies: list[tuple[ServerCollectionRef, Collection]] = []
        if remote and vector is not None:
            server_hits, failures = self.servers.candidates(
                remote, query, vector, CANDIDATES_PER_RETRIEVER
            )
            # A server that cannot be reached answers from its offline copy, if kept.
            copies = self.servers.copies_for(failures)
            answered = {ref.name for ref, _ in copies}
            unanswered = [exc for ref, exc in failures if ref.name not in answered]
            if unanswered and not targets and not server_hits and not copies:
                raise unanswered[0]  # nothing else answered: say why, in its one sentence
        local = [*targets, *(copy for _, copy in copies)]
        dense, lexical = (
            self.rankings(query, local, CANDIDATES_PER_RETRIEVER, vector=vector)
            if local
            else ([], [])
        )
        exact = self.exact_matches(query, local, [i for i, _ in dense]) if local else {}
        if server_hits:
            dense, lexical, exact = _merged(dense, lexical, exact, server_hits)
        fused = self._fusion.fuse(dense, lexical, exact)[:k]
        cosine = dict(dense)
        floor = min(cosine.values(), default=0.0)
        dense_rank = {chunk_id: n for n, (chunk_id, _) in enumerate(dense, start=1)}
        lexical_rank = {
            chunk_id: n for n, (chunk_id, score) in enumerate(lexical, start=1) if score > 0
        }
        ranked = [(i, cosine.get(i, floor)) for i, _ in fused]
        passages = self.passages(targets, ranked) if targets else []
        for ref, copy in copies:
            passages += self._copy_passages(ref, copy, ranked)
        if server_hits:
            passages = _with_server_passages(passages, ranked, server_hits)
        elif copies:
            passages = _in_order(passages, ranked)
        found = []
        for p in passages:
            identifiers, coverage = lexical_index.evidence(query, p.text)
            found.append(
                replace(
                    p,
                    dense_rank=dense_rank.get(p.id),
                    lexical_rank=lexical_rank.get(p.id),
                    matched_identifiers=identifiers,
                    term_coverage=round(coverage, 3),
                )
            )
        return found

    def _targets(
        self, names: Sequence[str] | None
    ) -> tuple[list[Collection], list[ServerCollectionRef]]:
        """The local and server collections called ``names`` (all by default)."""
        with self._db.transaction() as db:
            if names is None:
                return collection_store.all_collections(db), server_store.all_server_collections(db)
            local, remote = [], []
            for name in names:
                ref = server_store.find_server_collection(db, name)
                if ref is not None:
                    remote.append(ref)
                else:
                    local.append(collection_store.get_collection(db, name))
            return local, remote

    def rankings(
        self,
        query: str,
        targets: Sequence[Collection],
        candidates: int,
        *,
        vector: npt.NDArray[np.float32] | None = None,
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """Dense and lexical scores (chunk id, score), each best first, over
        the union of both retrievers' top ``candidates``: a chunk one of them
        found is scored by the other too (its cosine from its stored vector,
        its BM25 from FTS5, 0 when it matches no term), so the fusion
        compares both scores of every candidate. Dense scores are cosine
        similarities of one model, so they merge across collections; a
        collection built by another model (not rebuilt yet) is searched
        lexically only, its chunks given the lowest dense candidate's cosine."""
        # Run one after the other: overlapping them on a thread measured no
        # faster on 2 busy cores (10k chunks, p50 25-32 ms either way).
        cids = [c.id for c in targets]
        db = self._db.connection()
        lexical = dict(lexical_index.search(db, cids, query, candidates))
        dense, vector, bound = self._dense(query, targets, candidates, vector)
        lexical.update(
            lexical_index.score_ids(db, cids, query, [i for i in dense if i not in lexical])
        )
        floor = min(dense.values(), default=0.0)
        missing = [i for i in lexical if i not in dense]
        if missing and vector is not None:
            for c in bound:
                for chunk_id, stored in self._vectors.embeddings(c.vector_name, missing).items():
                    cosine = _cosine(stored, vector)
                    dense[chunk_id] = max(cosine, dense.get(chunk_id, cosine))
        for chunk_id in missing:
            dense.setdefault(chunk_id, floor)
        for chunk_id in dense:
            lexical.setdefault(chunk_id, 0.0)
        return _best_first(dense), _best_first(lexical)

    def exact_matches(
        self, query: str, targets: Sequence[Collection], ids: Sequence[str]
    ) -> dict[str, float]:
        """chunk id -> share of the question's identifiers (``--cid``,
        ``E1101``...) the chunk holds exactly; empty when it names none."""
        cids = [c.id for c in targets]
        return lexical_index.identifier_share(self._db.connection(), cids, query, ids)

    def _dense(
        self,
        query: str,
        targets: Sequence[Collection],
        candidates: int,
        vector: npt.NDArray[np.float32] | None = None,
    ) -> tuple[dict[str, float], npt.NDArray[np.float32] | None, list[Collection]]:
        """(top ``candidates`` chunk id -> cosine, the query's vector, the
        collections built by this embedder); ``vector``: the query's, if
        already embedded."""
        embedder = self.embedder
        bound = [c for c in targets if c.model_id == embedder.model_id]
        dense: dict[str, float] = {}
        if not bound:
            return dense, None, bound
        if vector is None:
            vector = embedder.embed_documents([query])[0]
        try:
            for c in bound:
                for chunk_id, score in self._vectors.query(c.vector_name, vector, candidates):
                    dense[chunk_id] = max(score, dense.get(chunk_id, score))
        except SearchBackendUnavailable as exc:
            # chromadb did not load: nothing is wrong with the index, and
            # nothing is recorded against it; keywords still answer.
            log.warning("search by meaning could not start, keywords only: %s", exc.detail)
            return {}, None, []
        except IndexUnavailable as exc:
            # Keywords still answer; the damage is recorded for the status
            # and the Documents page, and the next index run repairs it.
            log.warning("search by meaning failed, keywords only: %s", exc.detail or exc)
            self._note_unreadable(bound)
            return {}, None, []
        return dict(_best_first(dense)[:candidates]), vector, bound

    def _copy_passages(
        self, ref: ServerCollectionRef, copy: Collection, ranked: Sequence[tuple[str, float]]
    ) -> list[RetrievedPassage]:
        """Passages of a server collection's offline copy, their locators as
        the server's would be here (the path mapped, the server named)."""
        return [
            replace(
                p,
                locator=replace(
                    p.locator,
                    path=ref.local_path(p.locator.path) if p.locator.path else None,
                    server=ref.url,
                ),
            )
            for p in self.passages([copy], ranked)
        ]

    def passages(
        self, targets: Sequence[Collection], ranked: Sequence[tuple[str, float]]
    ) -> list[RetrievedPassage]:
        stored = lexical_index.get_chunks(
            self._db.connection(), [c.id for c in targets], [i for i, _ in ranked]
        )
        return [
            RetrievedPassage(stored[i].text, stored[i].locator, i, score)
            for i, score in ranked
            if i in stored
        ]

    # ------------------------------------------------------------ checks

    def check_stores(self, name: str | None = None) -> dict[str, StoreHealth]:
        """Check now that each collection's stores agree (counts, a sample of
        ids, a few self-queries; reads only) and what search by meaning sees.
        Opens the vector store (imports chromadb)."""
        with self._db.transaction() as db:
            targets = (
                collection_store.all_collections(db)
                if name is None
                else [collection_store.get_collection(db, name)]
            )
        found: dict[str, StoreHealth] = {}
        for target in targets:
            found[target.name] = store_health.check(self._db, self._vectors, target).health()
        with self._health_lock:
            self._health.update(found)
        return found

    def vector_health(self, name: str) -> StoreHealth:
        """``name``'s health as last seen, checked now if it was not yet."""
        with self._health_lock:
            known = self._health.get(name)
        return known if known is not None else self.check_stores(name)[name]

    def consistency(self, name: str) -> tuple[list[str], list[str], list[str]]:
        """(vector ids, lexical ids, paths with chunks but no ``indexed`` row):
        what tests and ``index status`` use to prove there is no orphan."""
        with self._db.transaction() as db:
            found = collection_store.get_collection(db, name)
            lexical = lexical_index.chunk_ids(db, found.id)
            orphans = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT c.path FROM chunks c LEFT JOIN files f ON "
                    "f.collection_id = c.collection_id AND f.path = c.path "
                    "WHERE c.collection_id = ? AND (f.state IS NULL OR f.state != 'indexed')",
                    (found.id,),
                )
            ]
        vectors = self._vectors.ids(found.vector_name) if found.model_id else []
        return vectors, lexical, orphans


def _merged(
    dense: list[tuple[str, float]],
    lexical: list[tuple[str, float]],
    exact: dict[str, float],
    hits: Sequence[ServerCandidates],
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], dict[str, float]]:
    """The local candidates and the servers', as one pool for the fusion
    (cosines are one model's everywhere; BM25 is on one scale)."""
    dense_by_id, lexical_by_id, exact = dict(dense), dict(lexical), dict(exact)
    for found in hits:
        for chunk_id, score in found.dense.items():
            dense_by_id[chunk_id] = max(score, dense_by_id.get(chunk_id, score))
        for chunk_id, score in found.lexical.items():
            lexical_by_id[chunk_id] = max(score, lexical_by_id.get(chunk_id, score))
        exact.update({i: s for i, s in found.exact.items() if s > exact.get(i, 0.0)})
    return _best_first(dense_by_id), _best_first(lexical_by_id), exact


def _with_server_passages(
    local: list[RetrievedPassage],
    ranked: Sequence[tuple[str, float]],
    hits: Sequence[ServerCandidates],
) -> list[RetrievedPassage]:
    """``ranked`` as passages, in its order: local ones as read from the
    documents database, the others from the servers' candidates."""
    by_id = {p.id: p for p in local}
    for found in hits:
        for chunk_id, text in found.texts.items():
            if chunk_id not in by_id:
                by_id[chunk_id] = RetrievedPassage(text, found.locators[chunk_id], chunk_id, 0.0)
    return [replace(by_id[i], score=score) for i, score in ranked if i in by_id]


def _in_order(
    passages: Sequence[RetrievedPassage], ranked: Sequence[tuple[str, float]]
) -> list[RetrievedPassage]:
    """``passages`` in ``ranked``'s order (they were read per collection)."""
    by_id = {p.id: p for p in passages}
    return [by_id[i] for i, _ in ranked if i in by_id]


def _best_first(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


def _cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    norms = float((a @ a) ** 0.5 * (b @ b) ** 0.5)
    return float(a @ b) / norms if norms else 0.0
