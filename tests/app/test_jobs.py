"""The background-job registry: shutdown joins every job, waiting visibly for
one that cannot stop at once; an unexpected exception in a job reaches the
user as a sentence, its text kept for the details."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from app.workers import jobs as jobs_module
from app.workers.jobs import JobRegistry


def test_shutdown_waits_visibly_for_a_job_that_ignores_its_cancel(qapp, monkeypatch) -> None:
    monkeypatch.setattr(jobs_module, "QUIET_WAIT_MS", 10)
    registry = JobRegistry()
    started = threading.Event()
    may_finish = threading.Event()

    def uninterruptible(_cancel: threading.Event) -> Iterator[object]:
        # Like llama.cpp's quantizer: one call that never looks at the flag.
        started.set()
        may_finish.wait(30)
        yield "done"

    job = registry.add(
        "convert", uninterruptible, what="conversion", finishing="Finishing the conversion…"
    )
    job.start()
    assert started.wait(10)
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        may_finish.set()  # the quantizer finishes while the window waits

    registry.shutdown(say)
    assert said == ["Finishing the conversion…"]
    assert not job.is_running()
    assert registry.keys() == []


def test_an_unexpected_exception_in_a_job_is_explained(qtbot) -> None:
    registry = JobRegistry()

    def broken(_cancel: threading.Event) -> Iterator[object]:
        raise ValueError("struct.error: unpack requires a buffer of 8 bytes")
        yield

    job = registry.add("download:x", broken, what="download of Phi-3", finishing="")
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    error = failed.args[0]
    assert str(error).startswith("Something went wrong during the download of Phi-3.")
    assert "unpack requires" not in str(error)  # raw text only behind "Copy details"
    assert "unpack requires" in error.detail
    registry.shutdown(lambda _text: None)
