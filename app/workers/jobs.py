"""Every background job of the window, in one place, so closing the window
cancels and joins all of them.

A cancelled job usually stops within a moment, but not always: quantizing is
one llama.cpp call that cannot be interrupted, and a download can sit in a
socket read until its timeout. Destroying a QThread that is still running
aborts the process, so shutdown never gives up on a job: after a short quiet
wait it says what it is waiting for ("Finishing the conversion…") and keeps
the window painting until the job has stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject

from app.workers.generator import GeneratorJob

log = logging.getLogger(__name__)

# How long a cancelled job may take before the window says it is waiting.
QUIET_WAIT_MS = 1500
# How often the window repaints while it waits for a job that cannot stop yet.
VISIBLE_WAIT_POLL_MS = 50


def wait_visibly(wait: Callable[[int], bool], say: Callable[[str], None], text: str) -> None:
    """Call ``wait(ms)`` until it returns True. After QUIET_WAIT_MS, show
    ``text`` and keep painting (user input is held back meanwhile)."""
    if wait(QUIET_WAIT_MS):
        return
    log.info("shutdown is waiting: %s", text)
    say(text)
    while not wait(VISIBLE_WAIT_POLL_MS):
        QCoreApplication.processEvents(
            QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, VISIBLE_WAIT_POLL_MS
        )


class JobRegistry(QObject):
    """The running jobs by key ("download:phi-3-mini…", "convert", "scan")."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[str, GeneratorJob] = {}
        self._finishing: dict[str, str] = {}
        self.closing = False

    def add(
        self,
        key: str,
        make: Callable[[threading.Event], Iterator[object]],
        *,
        what: str,
        finishing: str,
    ) -> GeneratorJob:
        """A new job under ``key`` (connect to it, then ``start()`` it).
        ``finishing`` is shown if closing the window has to wait for it."""
        if key in self._jobs:
            raise RuntimeError(f"job {key!r} is already running")
        job = GeneratorJob(make, key, self, what=what)
        self._jobs[key] = job
        self._finishing[key] = finishing
        job.finished.connect(lambda: self._forget(key, job))
        return job

    def get(self, key: str) -> GeneratorJob | None:
        return self._jobs.get(key)

    def keys(self) -> list[str]:
        return list(self._jobs)

    def cancel(self, key: str) -> None:
        job = self._jobs.get(key)
        if job is not None:
            job.cancel()

    def shutdown(self, say: Callable[[str], None]) -> None:
        """Cancel every job and join each one (idempotent)."""
        self.closing = True
        jobs = list(self._jobs.items())
        for _key, job in jobs:
            job.detach()  # their results have nowhere to go now
            job.cancel()
        for key, job in jobs:
            wait_visibly(job.wait, say, self._finishing.get(key, "Finishing a background task…"))
            self._forget(key, job)

    def _forget(self, key: str, job: GeneratorJob) -> None:
        if self._jobs.get(key) is job:
            del self._jobs[key]
            self._finishing.pop(key, None)
