"""One long-lived background thread that runs document tasks in order.

The Documents page needs two of these: one for the work that writes the index
(add, index, retry, remove — one after another, because the library
serializes them anyway and two index runs would race on the manifest), and
one for reads (the collections and a file table for the page), so a long
index run never holds up what the page shows.

Why long-lived instead of one job per task: ``DocumentDB`` gives every thread
its own SQLite connection and keeps it until the library is closed, so a
thread per task would leave a connection behind for every task. A worker is
a :class:`~app.workers.generator.GeneratorJob` in the window's
:class:`~app.workers.jobs.JobRegistry` like every other job, so closing the window
cancels and joins it.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.generator import GeneratorJob
from app.workers.jobs import JobRegistry
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

# How often an idle worker looks at its cancel flag (the wake-up at shutdown
# is immediate: ``stop`` queues a sentinel; this is the backstop).
IDLE_POLL_S = 0.25


class LinkedCancel(threading.Event):
    """A task's own cancel flag that also reads as set once its worker is
    cancelled (the window closes): the indexer checks one ``Event``."""

    def __init__(self) -> None:
        super().__init__()
        self._parent: threading.Event | None = None

    def link(self, parent: threading.Event) -> None:
        self._parent = parent

    def is_set(self) -> bool:
        return super().is_set() or (self._parent is not None and self._parent.is_set())


_ids = itertools.count(1)


@dataclass(eq=False)
class Task:
    """One unit of work. ``run(cancel)`` runs on the worker thread and yields
    events for the GUI thread; ``kind`` and ``collection`` let the controller
    coalesce and cancel queued work."""

    kind: str  # "add", "index", "retry", "excludes", "remove", "snapshot"
    collection: str | None
    run: Callable[[threading.Event], Iterator[object]]
    cancel: LinkedCancel = field(default_factory=LinkedCancel)
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(frozen=True)
class TaskStarted:
    task: Task


@dataclass(frozen=True)
class TaskEvent:
    task: Task
    event: object


@dataclass(frozen=True)
class TaskFailed:
    task: Task
    error: RetrievalError


@dataclass(frozen=True)
class TaskDone:
    task: Task


class SerialWorker(QObject):
    """Tasks submitted here run one after another on one thread.

    ``pending`` (queued, not started) and ``current`` are kept on the GUI
    thread, from what the worker reports, so the controller can ask "is an
    index of this collection already waiting?" without touching the thread.
    """

    started = Signal(object)  # Task
    progressed = Signal(object)  # TaskEvent: something the task yielded
    failed = Signal(object)  # TaskFailed
    done = Signal(object)  # Task

    def __init__(self, jobs: JobRegistry, key: str, *, what: str, finishing: str) -> None:
        super().__init__(jobs)
        self._jobs = jobs
        self._key = key
        self._what = what
        self._finishing = finishing
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._job: GeneratorJob | None = None
        self.pending: list[Task] = []
        self.current: Task | None = None

    def submit(self, task: Task) -> Task:
        if self._jobs.closing:
            return task
        self.pending.append(task)
        self._queue.put(task)
        if self._job is None:
            job = self._jobs.add(self._key, self._serve, what=self._what, finishing=self._finishing)
            job.yielded.connect(self._on_yielded)
            job.finished.connect(self._on_finished)
            self._job = job
            job.start()
        return task

    def cancel(self, predicate: Callable[[Task], bool]) -> None:
        """Cancel the running task and drop queued ones that match."""
        for task in [*self.pending, *([self.current] if self.current else [])]:
            if predicate(task):
                task.cancel.set()

    def stop(self) -> None:
        """Cancel everything and let the thread end (the registry joins it)."""
        self.cancel(lambda _task: True)
        if self._job is not None:
            self._job.cancel()
        self._queue.put(None)

    # ---------------------------------------------------------------- thread side

    def _serve(self, stop: threading.Event) -> Iterator[object]:
        while not stop.is_set():
            try:
                task = self._queue.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                continue
            if task is None:
                return
            task.cancel.link(stop)
            yield TaskStarted(task)
            if not task.cancel.is_set():
                yield from self._run(task)
            yield TaskDone(task)

    def _run(self, task: Task) -> Iterator[object]:
        try:
            for item in task.run(task.cancel):
                yield TaskEvent(task, item)
        except RetrievalError as exc:
            log.warning("document task %s failed: %s (%s)", task.kind, exc, exc.detail)
            yield TaskFailed(task, exc)
        except Exception as exc:
            # A bug or an unexpected OS error: this task is lost, the worker
            # keeps serving the next one.
            log.exception("document task %s failed", task.kind)
            yield TaskFailed(
                task,
                RetrievalError(
                    f"Something went wrong while working on your documents ({task.kind}). "
                    "Try again; the log folder (Help → Open Log Folder) has the details.",
                    detail=repr(exc),
                ),
            )

    # ---------------------------------------------------------------- GUI side

    @Slot(object)
    def _on_yielded(self, item: object) -> None:
        if isinstance(item, TaskStarted):
            self.pending = [t for t in self.pending if t is not item.task]
            self.current = item.task
            self.started.emit(item.task)
        elif isinstance(item, TaskEvent):
            self.progressed.emit(item)
        elif isinstance(item, TaskFailed):
            self.failed.emit(item)
        elif isinstance(item, TaskDone):
            if self.current is item.task:
                self.current = None
            self.done.emit(item.task)

    @Slot()
    def _on_finished(self) -> None:
        self._job = None
        self.current = None
        self.pending = []
