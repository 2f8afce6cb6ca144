"""Run a domain generator on its own QThread and re-emit what it yields.

The engine's long operations (downloads, conversions) are plain generators of
small event dataclasses; this adapter is the only Qt they ever meet. Jobs are
started and joined through :class:`app.workers.jobs.JobRegistry`, so none is left
running when the window closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import EngineError

log = logging.getLogger(__name__)


class _Runner(QObject):
    yielded = Signal(object)
    failed = Signal(object)  # EngineError
    done = Signal()

    def __init__(
        self,
        make: Callable[[threading.Event], Iterator[object]],
        cancel: threading.Event,
        what: str,
    ):
        super().__init__()
        self._make = make
        self._cancel = cancel
        self._what = what

    @Slot()
    def run(self) -> None:
        try:
            for item in self._make(self._cancel):
                self.yielded.emit(item)
        except EngineError as exc:
            self.failed.emit(exc)
        except Exception as exc:
            # Not one of the engine's own errors: a bug or an unexpected OS
            # failure. The user gets a sentence; the exception goes to the log
            # and the banner's "Copy details".
            log.exception("background job %s failed", self._what)
            self.failed.emit(
                EngineError(
                    f"Something went wrong during the {self._what}. Try again; the log "
                    "folder (Help → Open Log Folder) has the details.",
                    detail=repr(exc),
                )
            )
        finally:
            self.done.emit()


class GeneratorJob(QObject):
    """One background job. ``yielded``/``failed`` arrive on the GUI thread;
    ``finished`` fires once, after the thread has stopped. After
    :meth:`detach` nothing more is forwarded (the window is closing)."""

    yielded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(
        self,
        make: Callable[[threading.Event], Iterator[object]],
        name: str,
        parent: QObject | None = None,
        *,
        what: str = "background task",
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.what = what  # "download of Phi-3-mini", in messages a person reads
        self.cancel_event = threading.Event()
        self._detached = False
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner(make, self.cancel_event, what)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.yielded.connect(self._forward_yielded)
        self._runner.failed.connect(self._forward_failed)
        self._runner.done.connect(self._thread.quit)
        self._thread.finished.connect(self.finished)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def detach(self) -> None:
        """Stop forwarding events: their receivers are being torn down."""
        self._detached = True

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int) -> bool:
        """Block up to ``timeout_ms``; True once the thread has stopped."""
        return bool(self._thread.wait(timeout_ms))

    @Slot(object)
    def _forward_yielded(self, item: object) -> None:
        if not self._detached:
            self.yielded.emit(item)

    @Slot(object)
    def _forward_failed(self, error: object) -> None:
        if not self._detached:
            self.failed.emit(error)
