"""Run a domain generator on its own QThread and re-emit what it yields.

The engine's long operations (downloads, conversions) are plain generators of
small event dataclasses; this adapter is the only Qt they ever meet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import EngineError

log = logging.getLogger(__name__)

JOIN_TIMEOUT_MS = 10_000


class _Runner(QObject):
    yielded = Signal(object)
    failed = Signal(object)  # EngineError
    done = Signal()

    def __init__(
        self, make: Callable[[threading.Event], Iterator[object]], cancel: threading.Event
    ):
        super().__init__()
        self._make = make
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        try:
            for item in self._make(self._cancel):
                self.yielded.emit(item)
        except EngineError as exc:
            self.failed.emit(exc)
        except Exception as exc:
            log.exception("background job failed")
            self.failed.emit(EngineError(f"Something went wrong: {exc}", detail=repr(exc)))
        finally:
            self.done.emit()


class GeneratorJob(QObject):
    """One background job. ``yielded``/``failed`` arrive on the GUI thread;
    ``finished`` fires once, after the thread has stopped."""

    yielded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(
        self,
        make: Callable[[threading.Event], Iterator[object]],
        name: str,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner(make, self.cancel_event)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.yielded.connect(self.yielded)
        self._runner.failed.connect(self.failed)
        self._runner.done.connect(self._thread.quit)
        self._thread.finished.connect(self.finished)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def stop_and_wait(self) -> None:
        self.cancel()
        self._thread.quit()
        self._thread.wait(JOIN_TIMEOUT_MS)
