"""GUI fixtures: the real window, built by the real composition root, in a
sandboxed FOOTNOTE_HOME. A modal dialog raises instead of hanging the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMessageBox

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.paths import AppPaths
from app.settings import Settings, load_settings, save_settings


class ModalDialogOpened(AssertionError):
    pass


def _refuse(name: str) -> Callable[..., object]:
    def refuse(*args: object, **kwargs: object) -> object:
        raise ModalDialogOpened(f"a modal dialog ({name}) opened during a test: {args[1:3]}")

    return refuse


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("critical", "warning", "information", "question", "about"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(_refuse(f"QMessageBox.{name}")))
    monkeypatch.setattr(QMessageBox, "exec", _refuse("QMessageBox.exec"))
    monkeypatch.setattr(QDialog, "exec", _refuse("QDialog.exec"))
    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, staticmethod(_refuse(f"QFileDialog.{name}")))


@pytest.fixture
def paths(footnote_home: Path) -> AppPaths:
    return AppPaths.from_environment().ensure()


@pytest.fixture
def configure(paths: AppPaths) -> Callable[..., Settings]:
    """Write settings before the window starts (as a previous session would)."""

    def write(**changes: object) -> Settings:
        settings = load_settings(paths.settings_file).settings
        for key, value in changes.items():
            setattr(settings, key, value)
        save_settings(paths.settings_file, settings)
        return settings

    return write


@pytest.fixture
def open_window(qtbot, qapp: QApplication, paths: AppPaths) -> Iterator[Callable[[], MainWindow]]:
    """Start the app's window; every window opened is closed (engine thread
    stopped, database closed) at the end, and must have stopped cleanly."""
    configure_application(qapp)
    opened: list[MainWindow] = []

    def start() -> MainWindow:
        window = build_main_window(paths)
        qtbot.addWidget(window)
        window.show()
        opened.append(window)
        return window

    yield start
    for window in opened:
        close(window)


@pytest.fixture
def window_with(
    qtbot, configure: Callable[..., Settings], open_window: Callable[[], MainWindow]
) -> Callable[[Path], MainWindow]:
    """The window with ``model`` loaded, as when a previous session chose it."""

    def start(model: Path) -> MainWindow:
        configure(model_path=str(model))
        window = open_window()
        wait_for_model(qtbot, window)
        return window

    return start


def close(window: MainWindow) -> None:
    if window.isVisible() or window.engine.is_running():
        window.close()
    assert not window.engine.is_running(), "the engine thread outlived its window"
    window.store.close()


def wait_for_model(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.engine.model is not None, timeout=20_000)


def wait_for_answer(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.composer.generating, timeout=30_000)
