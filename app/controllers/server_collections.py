"""The Documents page's work on collections that live on a Chroma server,
apart from ``DocumentsController`` (which queues it on its threads and shows
it): what each task does on the writer thread, and how each server
collection's row is read on the reader thread.

Rows: each server is asked again at most every ``SERVER_CHECK_INTERVAL_S``
(a search that failed since shows its failure without asking). Offline
copies: refreshed when their server answered and the copy is older than
``COPY_REFRESH_INTERVAL_S`` (a refresh that finds the server unchanged costs
one request). No Qt here: these run on the documents threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.pages.server_row import ServerRow
from app.widgets.server_collection_dialog import ServerCollectionForm
from retrieval.documents import DocumentLibrary
from retrieval.errors import ChromaServerError
from retrieval.offline_copy import copy_time_text
from retrieval.server_collections import PathMap

# A server collection's row (its passages, whether the server answers) is
# asked of the server at most this often; a failed search shows at once.
SERVER_CHECK_INTERVAL_S = 60.0
# An offline copy is compared with its server at most this often while the
# app runs (and at start): cheap when nothing changed (the server's marker).
COPY_REFRESH_INTERVAL_S = 600.0

TaskRun = Callable[[threading.Event], Iterator[object]]
Library = Callable[[], DocumentLibrary]  # opened on first use, off the GUI thread


@dataclass(frozen=True)
class TokenNotKept:
    """From the writer thread: a server's access token is used this session
    only (no keyring); the sentence says so."""

    text: str


def add(
    library: Library, form: ServerCollectionForm, save_token: Callable[[str, str], str | None]
) -> TaskRun:
    """Register the collection after its server said it has it, built by this
    embedding model; its token first (kept by ``save_token``), its offline
    copy after, if asked."""

    def run(cancel: threading.Event) -> Iterator[object]:
        servers = library().servers
        if form.token:
            servers.use_token(form.url, form.token)  # this session, whatever the keyring says
            not_kept = save_token(form.url, form.token)
            if not_kept is not None:
                yield TokenNotKept(not_kept)
        servers.add(form.name, form.url, form.remote_name, form.path_map)
        if form.offline_copy:
            servers.set_offline_copy(form.name, True)
            yield from servers.sync_copy(form.name, cancel)

    return run


def offline_copy(library: Library, name: str, wanted: bool | None) -> TaskRun:
    """Keep (made now) or delete ``name``'s offline copy; None: refresh it."""

    def run(cancel: threading.Event) -> Iterator[object]:
        servers = library().servers
        if wanted is not None:
            servers.set_offline_copy(name, wanted)
        if wanted is not False:
            yield from servers.sync_copy(name, cancel)

    return run


def index_folder(library: Library, name: str, folder: Path) -> TaskRun:
    """Index ``folder`` into the collection on its server; its offline copy,
    if kept, follows."""

    def run(cancel: threading.Event) -> Iterator[object]:
        servers = library().servers
        ref = servers.find(name)
        if ref is None:
            return
        yield from servers.index(ref.url, ref.remote_name, [folder], cancel)
        if ref.offline_copy and not cancel.is_set():
            yield from servers.sync_copy(name, cancel)

    return run


def set_path_map(library: Library, name: str, path_map: PathMap) -> TaskRun:
    def run(_cancel: threading.Event) -> Iterator[object]:
        library().servers.set_path_map(name, path_map)
        yield from ()

    return run


def forget(library: Library, name: str) -> TaskRun:
    """Forget it here (its offline copy too); the server keeps it."""

    def run(_cancel: threading.Event) -> Iterator[object]:
        library().servers.remove(name)
        yield from ()

    return run


class ServerRows:
    """Each server collection's row, as last asked of its server. Read on
    the reader thread; ``forget`` may be called from the GUI thread (a dict
    key popped: atomic)."""

    def __init__(self) -> None:
        self._checks: dict[str, tuple[ServerRow, float]] = {}  # name -> (row, monotonic)

    def forget(self, name: str | None = None) -> None:
        """Ask the server of ``name`` (all: None) again on the next read."""
        if name is None:
            self._checks.clear()
        else:
            self._checks.pop(name, None)

    def read(self, library: DocumentLibrary) -> list[ServerRow]:
        rows = []
        now = time.monotonic()
        for ref in library.servers.refs():
            known = self._checks.get(ref.name)
            if known is None or now - known[1] > SERVER_CHECK_INTERVAL_S:
                try:
                    status = library.servers.check(ref.name)
                    row = ServerRow(ref.name, ref.url, ref.remote_name, status.chunks)
                except ChromaServerError as exc:
                    row = ServerRow(ref.name, ref.url, ref.remote_name, None, exc.message)
                known = (row, now)
                self._checks[ref.name] = known
            row = known[0]
            problem = library.servers.problem(ref.name)
            if problem is not None and row.problem is None:
                row = replace(row, chunks=None, problem=problem.message)
            copy = library.servers.copy_info(ref.name) if ref.offline_copy else None
            rows.append(
                replace(
                    row,
                    path_map=ref.path_map,
                    offline_copy=ref.offline_copy,
                    copy_passages=copy.passages if copy is not None else None,
                    copy_time=copy_time_text(copy.synced_ns) if copy is not None else None,
                )
            )
        for name in set(self._checks) - {r.name for r in rows}:
            del self._checks[name]
        return rows


def copies_due(library: DocumentLibrary, rows: Sequence[ServerRow]) -> list[str]:
    """Reachable server collections whose offline copy is older than
    ``COPY_REFRESH_INTERVAL_S`` (or was never finished)."""
    reachable = {r.name for r in rows if r.problem is None and r.chunks is not None}
    due = []
    now_ns = time.time_ns()
    for ref in library.servers.refs():
        if not ref.offline_copy or ref.name not in reachable:
            continue
        synced = ref.copy_synced_ns
        if synced is None or now_ns - synced > COPY_REFRESH_INTERVAL_S * 1e9:
            due.append(ref.name)
    return due
