"""The documents' work behind the window: the app's one ``DocumentLibrary``,
indexing in the background, folder watchers, and the Documents page.

Everything that touches the index runs on two :class:`SerialWorker` threads
(``documents_worker``): one writes (add, index, retry, change excludes,
remove: one after another, so collections index one at a time), one reads
(the page's collections and file table). The library itself is opened
lazily on the first of those threads; torch and chromadb are imported there
too, when the first index run needs them. Nothing here blocks the GUI thread.

While the app runs, a folder watcher per collection queues an incremental
re-index of what changed; a few seconds after start, the collections that
existed before are rescanned (incremental: it catches what changed while
Footnote was closed, and costs a stat per file when nothing did).

Collections on a Chroma server are listed with the others (their rows read
on the reader thread); adding one asks the server first, and removing one
forgets it here only (with its offline copy, if one was kept). What those
tasks do, and when a server is asked again or an offline copy refreshed, is
in ``app/controllers/server_collections.py``; they run on the writer thread.

The chat side reads ``library`` (on its engine thread), ``collection_names()``
and ``collections_changed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QLabel

from app.controllers import server_collections as servers
from app.controllers.server_collections import TokenNotKept
from app.pages.documents import CollectionActivity, DocumentsPage, progress_text
from app.pages.server_row import ServerRow
from app.widgets.banner import Banner
from app.widgets.server_collection_dialog import ServerCollectionForm
from app.wiring.chroma_tokens import save_chroma_token
from app.workers.documents import SerialWorker, Task, TaskEvent, TaskFailed
from app.workers.jobs import JobRegistry
from retrieval.discovery import ExcludeRules
from retrieval.documents import CollectionInfo, DocumentLibrary, FileHealth
from retrieval.ingest_events import (
    FileFailed,
    FileIndexed,
    IngestFinished,
    IngestProgress,
    VectorsRebuilding,
)
from retrieval.offline_copy import CopyFinished, CopyProgress
from retrieval.server_collections import PathMap
from retrieval.watcher import FolderWatcher

log = logging.getLogger(__name__)

# Long enough for the window to paint and a model to start loading first.
STARTUP_RESCAN_DELAY_MS = 4000
INDEX_WORKER = "documents-index"
READ_WORKER = "documents-read"
# While a collection indexes, the page reads its files and counts again at
# most this often (each file the indexer finishes is committed first), so
# every file does not stay "Waiting" and the counts 0 until the end.
LIVE_REFRESH_INTERVAL_S = 1.0
# The writer's tasks that read files (not "remove", nor "add-server": one
# question to a server).
INDEXING_TASKS = frozenset({"add", "index", "retry", "excludes", "server-index"})


@dataclass(frozen=True)
class Snapshot:
    """What the page shows, read on the reader thread."""

    collections: list[CollectionInfo]
    selected: str | None
    health: list[FileHealth]
    servers: list[ServerRow]
    copies_due: list[str]  # server collections whose offline copy should be refreshed


class LazyLibrary:
    """Opens the library once, on whichever thread first needs it (the
    workers, the engine thread); the GUI thread never does."""

    def __init__(self, open_library: Callable[[], DocumentLibrary]) -> None:
        self._open = open_library
        self._library: DocumentLibrary | None = None
        self._lock = threading.Lock()

    def get(self) -> DocumentLibrary:
        with self._lock:
            if self._library is None:
                self._library = self._open()
            return self._library

    @property
    def opened(self) -> DocumentLibrary | None:
        return self._library


def unique_name(wanted: str, taken: Sequence[str]) -> str:
    """``wanted``, or "wanted 2", "wanted 3"… if a collection has it already."""
    wanted = wanted.strip() or "Documents"
    lower = {t.casefold() for t in taken}
    if wanted.casefold() not in lower:
        return wanted
    n = 2
    while f"{wanted} {n}".casefold() in lower:
        n += 1
    return f"{wanted} {n}"


def name_for(paths: Sequence[Path]) -> str:
    """A collection's default name: the first folder's name (a file's stem)."""
    first = paths[0]
    return (first.name if first.is_dir() else first.stem) or str(first)


class DocumentsController(QObject):
    collections_changed = Signal()  # names or contents changed (after a snapshot)
    # From watcher threads (queued to the GUI thread): a collection's files changed.
    _files_changed = Signal(str)

    def __init__(
        self,
        *,
        open_library: Callable[[], DocumentLibrary],
        jobs: JobRegistry,
        page: DocumentsPage,
        banner: Banner,
        status_label: QLabel,
        confirm: Callable[[str, str], bool],
        save_token: Callable[[str, str], str | None] = save_chroma_token,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._library = LazyLibrary(open_library)
        # Keeps a Chroma server's access token (the keyring); says why it could not.
        self._save_token = save_token
        self.jobs = jobs
        self.page = page
        self.banner = banner
        self.status_label = status_label
        self._confirm = confirm
        self._writer = SerialWorker(
            jobs, INDEX_WORKER, what="document indexing", finishing="Stopping document indexing…"
        )
        self._reader = SerialWorker(
            jobs, READ_WORKER, what="reading of the document index", finishing="Closing…"
        )
        self._infos: list[CollectionInfo] = []
        self._servers: list[ServerRow] = []
        self._rows = servers.ServerRows()  # each server collection's row, as last asked
        self._health: list[FileHealth] = []
        # the running task's latest progress: files, or a rebuild of the search index
        self._progress: dict[str, IngestProgress | VectorsRebuilding] = {}
        self._copying: CopyProgress | None = None  # the offline copy being made, if any
        self._watchers: dict[str, tuple[tuple[object, ...], FolderWatcher]] = {}
        self._first_snapshot = True
        self._last_refresh_s = float("-inf")  # time.monotonic() of the last read submitted
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.timeout.connect(self.refresh)
        self._refresh_again = False
        self._shut_down = False
        self.selected: str | None = None

        self._writer.started.connect(self._on_write_started)
        self._writer.progressed.connect(self._on_write_event)
        self._writer.failed.connect(self._on_failed)
        self._writer.done.connect(self._on_write_done)
        self._reader.progressed.connect(self._on_read_event)
        self._reader.failed.connect(self._on_failed)
        self._reader.done.connect(self._on_read_done)
        self._files_changed.connect(self._on_files_changed)

        page.remove_requested.connect(self.remove)
        page.add_server_requested.connect(self.add_server_collection)
        page.retry_requested.connect(self.retry_failed)
        page.excludes_changed.connect(self.set_excludes)
        page.cancel_requested.connect(self.cancel_indexing)
        page.selection_changed.connect(self.select)
        page.open_file_requested.connect(self._open_file)
        page.offline_copy_requested.connect(self.set_offline_copy)
        page.path_map_changed.connect(self.set_path_map)
        page.server_folder_chosen.connect(self.index_into_server)
        self.status_label.hide()
        self.refresh()

    # ------------------------------------------------------------ for the chat side

    def _lib(self) -> DocumentLibrary:
        return self._library.get()

    @property
    def library(self) -> DocumentLibrary:
        """The app's one library, opened on first use. Call it off the GUI
        thread (the engine thread searches it)."""
        return self._library.get()

    def collection_names(self) -> list[str]:
        """The collections as of the last read, this computer's then the
        servers' (GUI thread; no I/O)."""
        return [info.name for info in self._infos] + [row.name for row in self._servers]

    @property
    def server_collections(self) -> list[ServerRow]:
        return list(self._servers)

    @property
    def collections(self) -> list[CollectionInfo]:
        return list(self._infos)

    @property
    def file_health(self) -> list[FileHealth]:
        """The file table of the selected collection, as last read."""
        return list(self._health)

    @property
    def indexing(self) -> str | None:
        """The collection being indexed now, if any."""
        task = self._writer.current
        return task.collection if task is not None and task.kind in INDEXING_TASKS else None

    @property
    def busy(self) -> bool:
        """Work is running or queued (tests and the status bar wait on this)."""
        live = [t for t in self._writer.pending if not t.cancel.is_set()]
        return self._writer.current is not None or bool(live)

    def watching(self, name: str) -> bool:
        """A watcher is set up for ``name`` (changes from now on are seen)."""
        entry = self._watchers.get(name)
        return entry is not None and entry[1].wait_ready(0)

    # ------------------------------------------------------------ user actions

    def add_paths(self, paths: Sequence[Path], name: str | None = None) -> str:
        """A new collection of these folders/files, indexed in the background;
        returns its name (``name``, or one made from the first folder's)."""
        roots = [Path(p).expanduser().absolute() for p in paths]
        pending = [t.collection or "" for t in self._writer.pending if t.kind == "add"]
        final = unique_name(name or name_for(roots), [*self.collection_names(), *pending])

        def run(cancel: threading.Event) -> Iterator[object]:
            library = self.library
            library.add_collection(final, roots)
            yield from library.index(final, cancel)

        self._write(Task("add", final, run))
        self.selected = final
        return final

    @Slot(str)
    def index(self, name: str) -> None:
        """An incremental index of ``name`` (unless one is already waiting)."""
        waiting = [
            t
            for t in self._writer.pending
            if t.collection == name and t.kind in ("index", "add") and not t.cancel.is_set()
        ]
        if waiting:
            return

        def run(cancel: threading.Event) -> Iterator[object]:
            yield from self.library.index(name, cancel)

        self._write(Task("index", name, run))

    @Slot(str)
    def retry_failed(self, name: str) -> None:
        def run(cancel: threading.Event) -> Iterator[object]:
            library = self.library
            library.retry_failed(name)
            yield from library.index(name, cancel)

        self._write(Task("retry", name, run))

    @Slot(str, list)
    def set_excludes(self, name: str, patterns: list[str]) -> None:
        """The user's own gitignore-style patterns (defaults always apply on
        top), then a re-index: newly excluded files leave the index."""
        cleaned = [p.strip() for p in patterns if p.strip()]

        def run(cancel: threading.Event) -> Iterator[object]:
            library = self.library
            library.update_collection(name, excludes=cleaned)
            yield from library.index(name, cancel)

        self._write(Task("excludes", name, run))

    @Slot(object)
    def add_server_collection(self, form: ServerCollectionForm) -> None:
        """Register a collection that lives on a Chroma server, after the
        server said it has it, built by this embedding model (a failure is
        one sentence in the banner, and nothing is added)."""
        self._write(Task("add-server", form.name, servers.add(self._lib, form, self._save_token)))
        self.selected = form.name

    @Slot(str, bool)
    def set_offline_copy(self, name: str, wanted: bool) -> None:
        """Keep an offline copy of the server collection ``name`` (made now,
        from its server) or delete it."""
        self._writer.cancel(lambda t: t.collection == name and t.kind == "copy")
        self._rows.forget(name)
        self._write(Task("copy", name, servers.offline_copy(self._lib, name, wanted)))

    def refresh_copy(self, name: str) -> None:
        """Compare the offline copy of ``name`` with its server (unless a
        refresh is already waiting or running)."""
        current = self._writer.current
        if any(
            t.collection == name and t.kind == "copy"
            for t in [*self._writer.pending, current]
            if t is not None
        ):
            return
        self._write(Task("copy", name, servers.offline_copy(self._lib, name, None)))

    @Slot(str, str)
    def index_into_server(self, name: str, folder: str) -> None:
        """Index ``folder`` into the server collection ``name`` (on its
        server, for everyone who uses it), shown as a local run is."""
        self._rows.forget(name)
        self._write(Task("server-index", name, servers.index_folder(self._lib, name, Path(folder))))

    @Slot(str, object)
    def set_path_map(self, name: str, path_map: PathMap) -> None:
        """Where this computer sees the server collection's files (citations
        from now on open them there)."""
        self._rows.forget(name)
        self._write(Task("path-map", name, servers.set_path_map(self._lib, name, path_map)))

    def recheck_servers(self) -> None:
        """Ask every server again now, and show what they say."""
        self._rows.forget()
        self.refresh()

    @Slot(str)
    def remove(self, name: str) -> None:
        """Remove the collection's index (after asking); its files stay."""
        row = next((r for r in self._servers if r.name == name), None)
        if row is not None:
            here = (
                "this computer's offline copy of it is deleted."
                if row.copy_passages is not None
                else "nothing on this computer is deleted."
            )
            if self._confirm(
                "Remove server collection",
                f"Stop searching “{name}”? It stays on its server for everyone else; {here}",
            ):
                self._writer.cancel(lambda t: t.collection == name and t.kind != "remove")
                self._write(Task("remove", name, servers.forget(self._lib, name)))
            return
        if not self._confirm(
            "Remove collection",
            f"Remove “{name}” from Footnote? Its index is deleted; your files are not touched.",
        ):
            return
        self.remove_now(name)

    def remove_now(self, name: str) -> None:
        self._writer.cancel(lambda t: t.collection == name and t.kind != "remove")
        self._stop_watcher(name)

        def run(_cancel: threading.Event) -> Iterator[object]:
            self.library.remove_collection(name)
            yield from ()

        self._write(Task("remove", name, run))

    @Slot()
    def cancel_indexing(self) -> None:
        name = self.indexing
        if name is not None:
            self._writer.cancel(lambda t: t.collection == name and t.kind != "remove")

    @Slot(str)
    def select(self, name: str) -> None:
        if name != self.selected:
            self.selected = name or None
            self.refresh()

    def rescan_all(self) -> None:
        """Incremental index of every collection (catches changes made while closed)."""
        for info in self._infos:
            self.index(info.name)

    # ------------------------------------------------------------ reading

    def refresh(self) -> None:
        """Read the collections and the selected one's file table again."""
        if self._shut_down:
            return
        waiting = any(not t.cancel.is_set() for t in self._reader.pending)
        if waiting or self._reader.current is not None:
            # Read again after it: "pending" is what the GUI thread has been
            # told, and the worker may have started that read already (its
            # TaskStarted still queued), before what this call wants to show.
            self._refresh_again = True
            return

        self._last_refresh_s = time.monotonic()

        def run(_cancel: threading.Event) -> Iterator[object]:
            library = self.library
            infos = library.collections()
            rows = self._rows.read(library)
            names = [i.name for i in infos] + [r.name for r in rows]
            selected = self.selected if self.selected in names else (names[0] if names else None)
            local = selected is not None and selected in {i.name for i in infos}
            health = library.file_health(selected) if local and selected is not None else []
            yield Snapshot(infos, selected, health, rows, servers.copies_due(library, rows))

        self._reader.submit(Task("snapshot", None, run))

    @Slot(object)
    def _on_read_event(self, item: TaskEvent) -> None:
        snapshot = item.event
        if not isinstance(snapshot, Snapshot):
            return
        before = [(i.name, i.files, i.chunks, tuple(i.states.items())) for i in self._infos]
        servers_before = [r.name for r in self._servers]
        self._infos = snapshot.collections
        self._servers = snapshot.servers
        self._health = snapshot.health
        self.selected = snapshot.selected
        self._sync_watchers()
        self._show()
        after = [(i.name, i.files, i.chunks, tuple(i.states.items())) for i in self._infos]
        if before != after or servers_before != [r.name for r in self._servers]:
            self.collections_changed.emit()
        for name in snapshot.copies_due:
            self.refresh_copy(name)
        if self._first_snapshot:
            self._first_snapshot = False
            if self._infos:
                QTimer.singleShot(STARTUP_RESCAN_DELAY_MS, self.rescan_all)

    @Slot(object)
    def _on_read_done(self, _task: Task) -> None:
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    # ------------------------------------------------------------ writing

    def _write(self, task: Task) -> None:
        if self._shut_down:
            return
        self._writer.submit(task)
        self._show()

    @Slot(object)
    def _on_write_started(self, task: Task) -> None:
        self._progress.pop(task.collection or "", None)
        self._show()

    @Slot(object)
    def _on_write_event(self, item: TaskEvent) -> None:
        event, name = item.event, item.task.collection or ""
        if isinstance(event, TokenNotKept):
            self.banner.show_message(event.text, level="info")
        elif isinstance(event, CopyProgress):
            self._copying = event
            self._show()
        elif isinstance(event, CopyFinished):
            self._copying = None
            self._rows.forget(name)
            self.refresh()
        elif isinstance(event, IngestProgress | VectorsRebuilding):
            self._progress[name] = event
            if name not in self.collection_names():
                self.refresh()  # a new collection: list it (and its files) now
            self._show()
        elif isinstance(event, FileIndexed):
            self._refresh_live()
        elif isinstance(event, FileFailed):
            log.info("not indexed: %s: %s: %s", event.path, event.state, event.reason)
            self._refresh_live()
        elif isinstance(event, IngestFinished):
            s = event.summary
            log.info(
                "indexed %s: %d files, %d unchanged, %d failed, %d removed, %d chunks in %.1f s",
                s.collection,
                s.indexed,
                s.unchanged,
                s.failed,
                s.removed,
                s.chunks_added,
                s.seconds,
            )
            self.refresh()

    def _refresh_live(self) -> None:
        """A file's state changed during a run: read the page again now, or
        when LIVE_REFRESH_INTERVAL_S has passed since the last read (a timer
        catches the last change of a burst)."""
        wait_s = self._last_refresh_s + LIVE_REFRESH_INTERVAL_S - time.monotonic()
        if wait_s <= 0:
            self.refresh()
        elif not self._live_timer.isActive():
            self._live_timer.start(max(1, int(wait_s * 1000)))

    @Slot(object)
    def _on_write_done(self, task: Task) -> None:
        self._progress.pop(task.collection or "", None)
        if task.kind in ("copy", "server-index"):
            self._copying = None
            self._rows.forget(task.collection or "")
        self.refresh()
        self._show()

    @Slot(object)
    def _on_failed(self, failure: TaskFailed) -> None:
        error = failure.error
        self.banner.show_message(error.message, details=error.detail)

    # ------------------------------------------------------------ watching

    def _sync_watchers(self) -> None:
        wanted = {i.name: (i.roots, i.excludes) for i in self._infos}
        for name in [n for n in self._watchers if n not in wanted]:
            self._stop_watcher(name)
        for name, key in wanted.items():
            current = self._watchers.get(name)
            if current is not None and current[0] == key:
                continue
            self._stop_watcher(name)
            roots, excludes = key
            watcher = FolderWatcher(
                roots, ExcludeRules.with_defaults(excludes), self._on_change_callback(name)
            )
            watcher.start()
            self._watchers[name] = (key, watcher)

    def _on_change_callback(self, name: str) -> Callable[[set[Path]], None]:
        def changed(_paths: set[Path]) -> None:
            # Runs on the watcher's thread: the signal hops to the GUI thread.
            self._files_changed.emit(name)

        return changed

    def _stop_watcher(self, name: str) -> None:
        entry = self._watchers.pop(name, None)
        if entry is not None:
            entry[1].stop()

    @Slot(str)
    def _on_files_changed(self, name: str) -> None:
        if not self._shut_down and name in self.collection_names():
            log.info("files changed in %s: re-indexing", name)
            self.index(name)

    # ------------------------------------------------------------ showing

    def _show(self) -> None:
        activity: dict[str, CollectionActivity] = {}
        for task in self._writer.pending:
            if task.collection and not task.cancel.is_set() and task.kind in INDEXING_TASKS:
                activity[task.collection] = CollectionActivity("queued")
        current = self._writer.current
        if (
            current is not None
            and current.collection
            and current.kind in {*INDEXING_TASKS, "remove"}
        ):
            kind = "removing" if current.kind == "remove" else "indexing"
            progress = self._progress.get(current.collection)
            activity[current.collection] = CollectionActivity(kind, progress)
        self.page.show_collections(
            self._infos, activity, self.selected, self._health, self._servers
        )
        progress = self._progress.get(self.indexing or "")
        copying = self._copying
        if copying is not None and self.indexing is None:
            self.status_label.setText(
                f"Copying “{copying.collection}” for offline use: "
                f"{copying.passages_done:,}/{copying.passages_total:,} passages"
            )
            self.status_label.setToolTip("")
            self.status_label.show()
        elif self.indexing is not None:
            text = "Indexing…"
            if isinstance(progress, VectorsRebuilding):
                text = "Rebuilding search index…"
            elif progress is not None and progress.files_total:
                text = f"Indexing {progress.files_done}/{progress.files_total} files"
            self.status_label.setText(text)
            self.status_label.setToolTip(
                f"{self.indexing}: {progress_text(progress)}" if progress else self.indexing
            )
            self.status_label.show()
        else:
            self.status_label.hide()

    @Slot(str)
    def _open_file(self, path: str) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
            self.banner.show_message(
                f"No program on this computer opens {Path(path).name}.", level="info"
            )

    # ------------------------------------------------------------ closing

    def shutdown(self) -> None:
        """Stop the watchers and cancel the work (the window's JobRegistry
        joins the threads right after). Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self._live_timer.stop()
        for name in list(self._watchers):
            self._stop_watcher(name)
        self._writer.stop()
        self._reader.stop()
