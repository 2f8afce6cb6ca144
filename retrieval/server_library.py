"""The document library's collections on Chroma servers: registering them,
checking them, searching them and indexing into them.

``DocumentLibrary`` holds one ``ServerLibrary`` and merges what its searches
find with the local collections' candidates before the one fusion. A server
that fails is recorded per collection (``problem``) and logged, and left
alone for ``RETRY_AFTER_S`` (``check`` asks at once); a search of several
collections goes on without it, and a search of that collection
alone raises its typed error (one sentence: down, refused, timed out,
access denied, collection missing, another embedding model).

Privacy: a search sends the question's embedding and its words (for the
full-text filters) to the server; ``before_query(url, question)`` is called
before anything is sent, so the app can write it to the privacy ledger.

Offline copies (``set_offline_copy``, ``sync_copy``; see
``retrieval/offline_copy.py``): when the user asks, a collection's passages
and vectors are kept here too; a search whose server cannot be reached (or
fails) is answered from the copy (``copies_for``) and ``answered_from_copy``
says from which time. Not when the server refuses access or no longer has
the collection: that is the team's decision, not an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval import collections as collection_store
from retrieval import offline_copy
from retrieval import server_collections as refs_store
from retrieval.chroma_server import ChromaServer, normalized_url
from retrieval.collections import Collection
from retrieval.document_db import DocumentDB
from retrieval.errors import (
    ChromaServerError,
    CollectionNotFound,
    ServerCollectionMissing,
    ServerDenied,
)
from retrieval.file_reader import EmbedderLike
from retrieval.ingest_events import IngestEvent
from retrieval.offline_copy import CopyEvent, CopyInfo
from retrieval.server_collections import PathMap, ServerCollectionRef
from retrieval.server_index import check_binding, index_into_server
from retrieval.server_search import ServerCandidates, TermMatches, search_candidates
from retrieval.vector_index import VectorIndex

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

# After a server failed, searches leave it alone this long (and report the
# failure again): a host that is off the network would otherwise cost every
# question the whole connect timeout.
RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ServerCollectionStatus:
    """What the server says of a collection now (``ServerLibrary.check``)."""

    name: str
    url: str
    remote_name: str
    chunks: int
    model_id: str


class ServerLibrary:
    def __init__(
        self,
        db: DocumentDB,
        embedder: Callable[[], EmbedderLike],
        *,
        vectors: VectorIndex,
        write_lock: threading.Lock,
        token_for: Callable[[str], str | None] | None = None,
        before_query: Callable[[str, str], None] | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._vectors = vectors  # the local store: offline copies' vectors
        self._write_lock = write_lock  # the library's index lock (vector store writes)
        self._token_for = token_for
        self.before_query = before_query
        self._servers: dict[str, ChromaServer] = {}
        self._tokens: dict[str, str] = {}  # url -> token given this session (use_token)
        self._lock = threading.Lock()
        self._problems: dict[str, tuple[ChromaServerError, float]] = {}  # name -> (error, when)
        # name -> the copy's time, for collections the last search answered from their copy
        self._from_copy: dict[str, int | None] = {}
        self._terms = TermMatches()

    def close(self) -> None:
        with self._lock:
            for server in self._servers.values():
                server.close()
            self._servers.clear()

    def server(self, url: str) -> ChromaServer:
        url = normalized_url(url)
        with self._lock:
            found = self._servers.get(url)
            if found is None:
                token = self._tokens.get(url)
                if token is None and self._token_for is not None:
                    token = self._token_for(url)
                found = ChromaServer(url, token=token)
                self._servers[url] = found
            return found

    def use_token(self, url: str, token: str) -> None:
        """Send ``token`` to the server at ``url`` from now on, in this
        process (where it is kept between runs is the app's business: the
        keyring); an empty one goes back to ``token_for``'s."""
        url = normalized_url(url)
        with self._lock:
            if token:
                self._tokens[url] = token
            else:
                self._tokens.pop(url, None)
            found = self._servers.pop(url, None)  # connect again, with it
        if found is not None:
            found.close()

    # ------------------------------------------------------------ the registry

    def add(
        self,
        name: str,
        url: str,
        remote_name: str | None = None,
        path_map: PathMap = (),
        *,
        check: bool = True,
    ) -> ServerCollectionRef:
        """Register the server's collection ``remote_name`` (default: ``name``)
        as ``name``. With ``check`` (the default) the server is asked first:
        it must answer, hold that collection, and have built it with this
        machine's embedding model; else its typed error is raised and nothing
        is registered."""
        url = normalized_url(url)
        remote = (remote_name or name).strip()
        if check:
            collection = self.server(url).collection(remote)
            check_binding(collection, self._embedder().model_id)
        with self._db.transaction() as db:
            return refs_store.create_server_collection(db, name, url, remote, path_map)

    def remove(self, name: str) -> None:
        """Forget it on this machine (its offline copy too); the server keeps
        the collection."""
        with self._write_lock:
            ref = self.find(name)
            if ref is None:
                raise CollectionNotFound(f"There is no server collection called “{name}”.")
            offline_copy.delete_copy(self._db, self._vectors, ref)
            with self._db.transaction() as db:
                refs_store.delete_server_collection(db, ref)
        with self._lock:
            self._problems.pop(name, None)
            self._from_copy.pop(name, None)

    def set_path_map(self, name: str, path_map: PathMap) -> ServerCollectionRef:
        with self._db.transaction() as db:
            ref = refs_store.get_server_collection(db, name)
            return refs_store.update_path_map(db, ref, path_map)

    def refs(self) -> list[ServerCollectionRef]:
        with self._db.transaction() as db:
            return refs_store.all_server_collections(db)

    def find(self, name: str) -> ServerCollectionRef | None:
        with self._db.transaction() as db:
            return refs_store.find_server_collection(db, name)

    def problem(self, name: str) -> ChromaServerError | None:
        """The last failure of this collection's server (None once it answered again)."""
        with self._lock:
            found = self._problems.get(name)
        return found[0] if found is not None else None

    def check(self, name: str) -> ServerCollectionStatus:
        """Ask the server now (network: not on the GUI thread)."""
        ref = self.find(name)
        if ref is None:
            raise CollectionNotFound(f"There is no server collection called “{name}”.")
        try:
            collection = self.server(ref.url).collection(ref.remote_name)
            model_id = self._embedder().model_id
            check_binding(collection, model_id)
            status = ServerCollectionStatus(
                ref.name, ref.url, ref.remote_name, collection.count(), model_id
            )
        except ChromaServerError as exc:
            self._note(ref.name, exc)
            raise
        self._note(ref.name, None)
        return status

    # ------------------------------------------------------------ search

    def candidates(
        self,
        targets: Sequence[ServerCollectionRef],
        query: str,
        vector: npt.NDArray[np.float32],
        candidates: int,
    ) -> tuple[list[ServerCandidates], list[tuple[ServerCollectionRef, ChromaServerError]]]:
        """Each reachable collection's candidates (their paths mapped to
        this machine's), and the others with their failures."""
        found: list[ServerCandidates] = []
        failures: list[tuple[ServerCollectionRef, ChromaServerError]] = []
        model_id = self._embedder().model_id
        for ref in targets:
            with self._lock:
                self._from_copy.pop(ref.name, None)
            recent = self._recent_problem(ref.name)
            if recent is not None:
                failures.append((ref, recent))  # not asked again yet (RETRY_AFTER_S)
                continue
            try:
                if self.before_query is not None:
                    self.before_query(ref.url, query)
                collection = self.server(ref.url).collection(ref.remote_name)
                check_binding(collection, model_id)
                hits = search_candidates(collection, query, vector, candidates, self._terms)
            except ChromaServerError as exc:
                log.warning("server collection %s not searched: %s", ref.name, exc.message)
                self._note(ref.name, exc)
                failures.append((ref, exc))
                continue
            self._note(ref.name, None)
            hits.locators = {
                i: replace(loc, path=ref.local_path(loc.path) if loc.path else None, server=ref.url)
                for i, loc in hits.locators.items()
            }
            found.append(hits)
        return found, failures

    def copies_for(
        self, failed: Sequence[tuple[ServerCollectionRef, ChromaServerError]]
    ) -> list[tuple[ServerCollectionRef, Collection]]:
        """The offline copies that answer for these failed collections (the
        server could not be reached or failed; not when it refused access or
        no longer has the collection), each noted for ``answered_from_copy``."""
        answering = []
        with self._db.transaction() as db:
            for ref, problem in failed:
                if not ref.offline_copy or isinstance(
                    problem, ServerDenied | ServerCollectionMissing
                ):
                    continue
                copy = collection_store.copy_for(db, ref.id)
                if copy is not None:
                    answering.append((ref, copy))
        with self._lock:
            for ref, _copy in answering:
                self._from_copy[ref.name] = ref.copy_synced_ns
        return answering

    def answered_from_copy(self, name: str) -> tuple[bool, int | None]:
        """(whether the last search of ``name`` answered from its offline copy,
        the copy's time as ``time.time_ns()``, None if never completed)."""
        with self._lock:
            if name not in self._from_copy:
                return False, None
            return True, self._from_copy[name]

    # ------------------------------------------------------------ offline copies

    def set_offline_copy(self, name: str, wanted: bool) -> ServerCollectionRef:
        """Record the choice; off deletes the copy at once (on: ``sync_copy``
        makes it)."""
        with self._write_lock:
            ref = self.find(name)
            if ref is None:
                raise CollectionNotFound(f"There is no server collection called “{name}”.")
            if not wanted:
                offline_copy.delete_copy(self._db, self._vectors, ref)
                with self._lock:
                    self._from_copy.pop(name, None)
            else:
                with self._db.transaction() as db:
                    refs_store.set_offline_copy(db, ref, wanted=True)
        found = self.find(name)
        assert found is not None
        return found

    def sync_copy(self, name: str, cancel: threading.Event) -> Iterator[CopyEvent]:
        """Bring ``name``'s offline copy in line with its server (network:
        not on the GUI thread); the server's failure is raised, the copy
        stays as it was."""
        with self._write_lock:
            ref = self.find(name)
            if ref is None:
                raise CollectionNotFound(f"There is no server collection called “{name}”.")
            if not ref.offline_copy:
                return
            try:
                collection = self.server(ref.url).collection(ref.remote_name)
                model_id = self._embedder().model_id
                check_binding(collection, model_id)
                yield from offline_copy.sync_copy(
                    self._db, self._vectors, ref, collection, model_id, cancel
                )
            except ChromaServerError as exc:
                self._note(ref.name, exc)
                raise
            self._note(ref.name, None)

    def copy_info(self, name: str) -> CopyInfo | None:
        """The offline copy's size and age (None: no copy)."""
        ref = self.find(name)
        return None if ref is None else offline_copy.copy_info(self._db, ref)

    def _note(self, name: str, problem: ChromaServerError | None) -> None:
        with self._lock:
            if problem is None:
                self._problems.pop(name, None)
            else:
                self._problems[name] = (problem, time.monotonic())

    def _recent_problem(self, name: str) -> ChromaServerError | None:
        with self._lock:
            found = self._problems.get(name)
        if found is None or time.monotonic() - found[1] > RETRY_AFTER_S:
            return None
        return found[0]

    # ------------------------------------------------------------ indexing

    def index(
        self,
        url: str,
        remote_name: str,
        roots: Sequence[Path],
        cancel: threading.Event,
        *,
        excludes: Sequence[str] = (),
    ) -> Iterator[IngestEvent]:
        """Index ``roots`` into the server's collection ``remote_name``
        (made, recording this machine's embedding model, if it is new)."""
        try:
            yield from index_into_server(
                self.server(url), remote_name, roots, self._embedder(), cancel, excludes=excludes
            )
        finally:
            self.forget_terms()  # this run changed which chunks hold which words

    def forget_terms(self) -> None:
        """Ask the servers again for every term (see ``server_search.TermMatches``)."""
        self._terms.clear()
