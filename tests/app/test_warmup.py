"""The window imports the document backends in the background after it shows,
only for a user who will need them, and never on the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication

from app.controllers.warmup import EMBEDDER, STEPS, VECTOR_INDEX, WARM_UP_JOB, WarmUp
from app.main_window import MainWindow
from app.settings import Settings
from app.workers.jobs import JobRegistry
from retrieval.web.need_search import WebMode


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Fake steps: (step, ran on the GUI thread)."""
    calls: list[tuple[str, bool]] = []
    gui = threading.get_ident()
    for step in STEPS:
        monkeypatch.setitem(
            STEPS, step, lambda step=step: calls.append((step, threading.get_ident() == gui))
        )
    return calls


def test_steps_wait_for_arm_then_run_once_in_order_off_the_gui_thread(
    qtbot, qapp: QApplication, ran: list[tuple[str, bool]]
) -> None:
    jobs = JobRegistry()
    warm = WarmUp(jobs)
    warm.request(EMBEDDER, VECTOR_INDEX)
    assert jobs.keys() == []  # not before the window has shown
    warm.arm()
    qtbot.waitUntil(lambda: warm.idle and len(warm.done) == 2, timeout=10_000)
    warm.request(EMBEDDER, VECTOR_INDEX)  # already done: nothing runs again
    qtbot.waitUntil(lambda: warm.idle, timeout=10_000)
    assert ran == [(EMBEDDER, False), (VECTOR_INDEX, False)]
    jobs.shutdown(lambda _text: None)


def test_a_failed_step_is_logged_and_the_next_one_runs(
    qtbot, qapp: QApplication, monkeypatch: pytest.MonkeyPatch, ran: list[tuple[str, bool]]
) -> None:
    def broken() -> None:
        raise ImportError("no torch here")

    monkeypatch.setitem(STEPS, EMBEDDER, broken)
    jobs = JobRegistry()
    warm = WarmUp(jobs)
    warm.arm()
    warm.request(EMBEDDER, VECTOR_INDEX)
    qtbot.waitUntil(lambda: warm.idle, timeout=10_000)
    assert [step for step, _ in ran] == [VECTOR_INDEX]
    jobs.shutdown(lambda _text: None)


def test_first_run_warms_nothing_up(
    qtbot, open_window: Callable[[], MainWindow], ran: list[tuple[str, bool]]
) -> None:
    window = open_window()
    qtbot.waitUntil(lambda: window.warm_up.armed, timeout=10_000)
    assert window.jobs.get(WARM_UP_JOB) is None
    assert ran == [] and window.warm_up.idle


def test_web_search_on_warms_the_embedder_up_after_show(
    qtbot,
    configure: Callable[..., Settings],
    open_window: Callable[[], MainWindow],
    ran: list[tuple[str, bool]],
) -> None:
    configure(default_web_mode="auto")
    window = open_window()
    qtbot.waitUntil(lambda: EMBEDDER in window.warm_up.done, timeout=10_000)
    assert ran == [(EMBEDDER, False)]


class FakeDocuments(QObject):
    collections_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def collection_names(self) -> list[str]:
        return self.names


class FakeToggle(QObject):
    mode_chosen = Signal(object)


def test_a_collection_warms_up_the_embedder_then_the_vector_index(
    qtbot, qapp: QApplication, ran: list[tuple[str, bool]]
) -> None:
    jobs = JobRegistry()
    warm = WarmUp(jobs)
    documents, toggle = FakeDocuments(), FakeToggle()
    warm.follow(Settings(), documents, toggle)  # type: ignore[arg-type]
    warm.arm()
    documents.collections_changed.emit()  # the first read: no collections
    toggle.mode_chosen.emit(WebMode.OFF)
    qtbot.waitUntil(lambda: warm.idle, timeout=10_000)
    assert ran == []
    documents.names = ["Reports"]
    documents.collections_changed.emit()
    qtbot.waitUntil(lambda: warm.idle and len(warm.done) == 2, timeout=10_000)
    assert [step for step, _ in ran] == [EMBEDDER, VECTOR_INDEX]
    jobs.shutdown(lambda _text: None)


def test_turning_web_search_on_warms_up_the_embedder(
    qtbot, qapp: QApplication, ran: list[tuple[str, bool]]
) -> None:
    jobs = JobRegistry()
    warm = WarmUp(jobs)
    toggle = FakeToggle()
    warm.follow(Settings(), FakeDocuments(), toggle)  # type: ignore[arg-type]
    warm.arm()
    toggle.mode_chosen.emit(WebMode.AUTO)
    qtbot.waitUntil(lambda: EMBEDDER in warm.done, timeout=10_000)
    assert ran == [(EMBEDDER, False)]
    jobs.shutdown(lambda _text: None)


def test_a_step_that_fails_once_is_tried_again(
    qtbot, qapp: QApplication, monkeypatch: pytest.MonkeyPatch, ran: list[tuple[str, bool]]
) -> None:
    """The import race: the first try meets another thread's import, the second works."""
    tries: list[int] = []

    def racing() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ImportError("cannot import name 'BaseModel' from partially initialized module")

    monkeypatch.setitem(STEPS, VECTOR_INDEX, racing)
    jobs = JobRegistry()
    warm = WarmUp(jobs)
    warm.arm()
    warm.request(VECTOR_INDEX)
    qtbot.waitUntil(lambda: warm.idle, timeout=10_000)
    assert len(tries) == 2 and VECTOR_INDEX in warm.done
    jobs.shutdown(lambda _text: None)
