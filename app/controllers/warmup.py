"""Import the document backends on a background thread once the window shows.

torch, transformers, sentence-transformers and chromadb take 3-6 s to import
on a 2-core machine. Left to first use, that happens when the user indexes a
folder or asks a grounded question, and it is then seconds of waiting; here
it happens a moment after the window's first frame, while the user reads it,
and only for a user who will need them: someone with document collections
(the embedder, then chromadb, in the order indexing and search use them) or
with web search on (the embedder ranks pages). ``retrieval.quiet_import``
keeps these imports from stalling the GUI thread (the GIL), wherever they run.

llama_cpp is not here: the engine thread imports it first thing at start-up
(``EngineWorker.probe_devices``), before any model load, and it holds the GIL
for ~15 ms only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.workers.jobs import JobRegistry
from retrieval import embedding, vector_index
from retrieval.web.need_search import WebMode

if TYPE_CHECKING:
    from app.controllers.documents import DocumentsController
    from app.settings import Settings
    from app.widgets.web_toggle import WebToggle

log = logging.getLogger(__name__)

WARM_UP_JOB = "warm-up"
# From show() to the start: the first frame is painted by then, and start-up
# (reading the collections, the engine's first steps) is under way.
AFTER_SHOW_MS = 300

# A failed step is tried once more (see _run) before first use is left to say why.
STEP_ATTEMPTS = 2

EMBEDDER = "embedder"
VECTOR_INDEX = "vector index"
STEPS: dict[str, Callable[[], None]] = {
    EMBEDDER: embedding.import_backend,
    VECTOR_INDEX: vector_index.import_backend,
}


@dataclass(frozen=True)
class WarmedUp:
    step: str
    seconds: float


class WarmUp(QObject):
    """Runs requested STEPS once each, in order, on one background job.

    Requests made before :meth:`arm` wait for it (the window arms it a moment
    after it is shown). A failed step is tried once more, then only logged:
    the first real use raises the library's own error and shows it (never as
    a damaged index: ``retrieval.vector_index.import_backend``)."""

    step_done = Signal(str)

    def __init__(self, jobs: JobRegistry, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._requested: list[str] = []
        self._armed = False
        self._running = False
        self.done: dict[str, float] = {}  # step -> seconds it took

    @property
    def armed(self) -> bool:
        return self._armed

    @property
    def idle(self) -> bool:
        """Nothing requested is waiting or running."""
        return not self._running and all(step in self.done for step in self._requested)

    def request(self, *steps: str) -> None:
        for step in steps:
            if step not in STEPS:
                raise ValueError(f"unknown warm-up step {step!r}")
            if step not in self._requested:
                self._requested.append(step)
                self._queue.put(step)
        self._start()

    def follow(
        self, settings: Settings, documents: DocumentsController, web_toggle: WebToggle
    ) -> None:
        """Request what this user will need: the embedder once web search is
        on, the embedder and the vector index once there is a collection (the
        documents' first read says so, a moment after start)."""
        if settings.default_web_mode != WebMode.OFF.value:
            self.request(EMBEDDER)

        def collections_changed() -> None:
            if documents.collection_names():
                self.request(EMBEDDER, VECTOR_INDEX)

        def web_mode_chosen(mode: object) -> None:
            if mode != WebMode.OFF:
                self.request(EMBEDDER)

        documents.collections_changed.connect(collections_changed)
        web_toggle.mode_chosen.connect(web_mode_chosen)

    def arm_after_show(self) -> None:
        QTimer.singleShot(AFTER_SHOW_MS, self.arm)

    @Slot()
    def arm(self) -> None:
        self._armed = True
        self._start()

    def _start(self) -> None:
        if not self._armed or self._running or self._queue.empty() or self._jobs.closing:
            return
        job = self._jobs.add(
            WARM_UP_JOB, self._run, what="start-up", finishing="Finishing start-up…"
        )
        job.yielded.connect(self._on_warmed)
        job.finished.connect(self._on_finished)
        self._running = True
        job.start()

    def _run(self, cancel: threading.Event) -> Iterator[object]:
        while not cancel.is_set():
            try:
                step = self._queue.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            for attempt in range(STEP_ATTEMPTS):
                try:
                    STEPS[step]()
                    break
                except Exception:
                    # An import that met another thread's import of a shared
                    # dependency (pydantic) fails once and works once that one
                    # has settled: try again before leaving it to first use,
                    # which says why, as the library's own error.
                    log.warning(
                        "warm-up of the %s failed (try %d of %d)",
                        step,
                        attempt + 1,
                        STEP_ATTEMPTS,
                        exc_info=True,
                    )
            yield WarmedUp(step, time.perf_counter() - started)

    @Slot(object)
    def _on_warmed(self, event: object) -> None:
        if isinstance(event, WarmedUp):
            log.info("warmed up the %s in %.1f s", event.step, event.seconds)
            self.done[event.step] = event.seconds
            self.step_done.emit(event.step)

    @Slot()
    def _on_finished(self) -> None:
        self._running = False
        self._start()  # a step requested while the job was ending
