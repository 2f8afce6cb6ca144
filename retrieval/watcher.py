"""Watching a collection's folders while the app runs.

``FolderWatcher`` runs ``watchfiles`` (Rust ``notify``: inotify, FSEvents,
ReadDirectoryChangesW) on its own thread and calls ``on_change`` with the set
of changed paths once the changes settle (debounced: saving a document or
unpacking a folder is many events, one callback). Paths the collection's
exclude rules drop (``.git/``, ``node_modules/``, editor temp files…) never
reach the callback. The callback runs on the watcher thread; the app hands
it to its indexing worker, which runs the (incremental) ``index`` again.

Changes made while the app was closed are caught by the rescan at start:
``DocumentLibrary.index(None, cancel)`` is incremental and cheap when little
changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from retrieval.discovery import ExcludeRules

log = logging.getLogger(__name__)

DEBOUNCE_MS = 1600  # quiet time before a batch of changes is reported
_STEP_MS = 50  # how often watchfiles checks for new events and the stop flag


class FolderWatcher:
    def __init__(
        self,
        roots: Sequence[Path],
        rules: ExcludeRules,
        on_change: Callable[[set[Path]], None],
        *,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        # A single-file root is watched through its folder, filtered to itself.
        self._roots = [Path(r).absolute() for r in roots]
        self._rules = rules
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="footnote-watcher", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the watch is set up (events before that are not seen)."""
        return self._ready.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wanted(self, path: Path) -> bool:
        """Is ``path`` under a root and not excluded?"""
        for root in self._roots:
            if path == root:
                return True
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            return not self._rules.matches(rel.as_posix(), path.is_dir())
        return False

    def _watched_folders(self) -> list[Path]:
        folders = []
        for root in self._roots:
            folder = root if root.is_dir() else root.parent
            if folder.exists() and folder not in folders:
                folders.append(folder)
        return folders

    def _run(self) -> None:
        import watchfiles

        folders = self._watched_folders()
        if not folders:
            self._ready.set()
            return
        try:
            # watchfiles sets the watch up before it first waits for events;
            # the first wake-up (a timeout) tells us it is in place.
            for changes in watchfiles.watch(
                *folders,
                watch_filter=lambda _change, path: self.wanted(Path(path)),
                debounce=self._debounce_ms,
                step=_STEP_MS,
                stop_event=self._stop,
                yield_on_timeout=True,
                rust_timeout=_STEP_MS,
                raise_interrupt=False,
            ):
                self._ready.set()
                if changes:
                    self._on_change({Path(path) for _change, path in changes})
        except (OSError, RuntimeError) as exc:  # a root removed, too many watches…
            log.warning("folder watcher stopped: %s", exc)
        finally:
            self._ready.set()
