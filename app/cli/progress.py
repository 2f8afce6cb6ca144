"""The command line's long-running commands (``models convert``, ``models
download``, ``index add``/``index update``) share one loop: progress on one
stderr line rewritten in place, results on stdout, and Ctrl+C stopping the
work cleanly with exit status 130 and a sentence saying what was kept.

Qt-free, like the rest of ``app.cli``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

EXIT_INTERRUPTED = 130  # the shell's code for "stopped by SIGINT"

Event = TypeVar("Event")


class ProgressLine:
    """One line on stderr, rewritten with ``\\r``; anything else printed
    first ends it, so a message never lands in the middle of it."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._shown_at: float | None = None
        self._open = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # read late: tests swap sys.stderr

    def show(self, text: str, *, final: bool = False) -> None:
        """Rewrite the line with ``text``, at most once per ``interval_s``
        unless ``final`` (the 100% a reader waits for is never skipped)."""
        now = self._clock()
        if not final and self._shown_at is not None and now - self._shown_at < self._interval_s:
            return
        self._shown_at = now
        # Trailing spaces wipe what a longer earlier text left on the line.
        print(f"\r{text}   ", end="", file=self.stream, flush=True)
        self._open = True

    def end(self) -> None:
        """Finish the line (if one is shown) so the next text starts afresh."""
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False

    def message(self, text: str) -> None:
        """``text`` on a line of its own, below the progress."""
        self.end()
        print(text, file=self.stream, flush=True)


def run_with_progress(
    events: Iterable[Event],
    cancel: threading.Event,
    handle: Callable[[Event, ProgressLine], None],
    *,
    stopped_text: str,
    line: ProgressLine | None = None,
) -> int:
    """Feed each of ``events`` to ``handle`` (which shows progress on the
    line and writes results); returns 0, or :data:`EXIT_INTERRUPTED` after
    Ctrl+C: ``cancel`` is set, the work's generator closed (its cleanup runs
    now, not at some later garbage collection) and ``footnote: <stopped_text>``
    printed. Other errors propagate after the progress line is ended."""
    line = line or ProgressLine()
    try:
        for event in events:
            handle(event, line)
    except KeyboardInterrupt:
        with _second_ctrl_c_ignored():
            cancel.set()
            close = getattr(events, "close", None)
            if close is not None:  # a generator: run its cleanup now
                close()
        line.message(f"footnote: {stopped_text}")
        return EXIT_INTERRUPTED
    finally:
        line.end()  # an error's sentence gets a line of its own
    return 0


@contextlib.contextmanager
def _second_ctrl_c_ignored() -> Iterator[None]:
    """A second Ctrl+C would only cut short the stop under way (about a
    second: an index run closes its reader and its parser workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
