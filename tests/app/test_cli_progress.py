"""The command line's one progress loop: a line rewritten in place, results
and messages on lines of their own, Ctrl+C as exit 130 with the work closed."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest

from app.cli.progress import EXIT_INTERRUPTED, ProgressLine, run_with_progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_line_is_rewritten_throttled_and_ended_before_a_message() -> None:
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, interval_s=0.5, clock=clock)
    line.show("1/3 files")
    clock.now = 0.1
    line.show("2/3 files")  # too soon: skipped
    line.show("3/3 files", final=True)  # the last one is never skipped
    line.message("a.pdf: failed: damaged")
    line.end()  # nothing open: no blank line
    assert stream.getvalue() == "\r1/3 files   \r3/3 files   \na.pdf: failed: damaged\n"


def test_ctrl_c_sets_cancel_closes_the_work_and_says_what_was_kept() -> None:
    stream = io.StringIO()
    cancel = threading.Event()
    closed = []

    def work() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    def handle(event: int, line: ProgressLine) -> None:
        line.show(f"step {event}")
        if event == 2:
            raise KeyboardInterrupt

    status = run_with_progress(
        work(), cancel, handle, stopped_text="stopped.", line=ProgressLine(stream)
    )
    assert status == EXIT_INTERRUPTED
    assert cancel.is_set() and closed == [True]
    assert stream.getvalue() == "\rstep 1   \rstep 2   \nfootnote: stopped.\n"


def test_an_error_ends_the_line_first_and_a_finished_run_returns_zero() -> None:
    stream = io.StringIO()

    def handle(event: int, line: ProgressLine) -> None:
        line.show(f"step {event}")
        if event == 2:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_with_progress(
            iter([1, 2]), threading.Event(), handle, stopped_text="", line=ProgressLine(stream)
        )
    assert stream.getvalue() == "\rstep 1   \rstep 2   \n"
    ok = run_with_progress(iter([]), threading.Event(), handle, stopped_text="")
    assert ok == 0
