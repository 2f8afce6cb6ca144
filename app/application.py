"""The composition root: builds the concrete parts and wires them together.

Nothing else in the app constructs the store, the engine thread or the window,
so tests can build the same graph with a sandboxed ``FOOTNOTE_HOME``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.crash import CrashReporter
from app.logs import configure_logging
from app.main_window import MainWindow
from app.paths import APP_NAME, AppPaths
from app.settings import load_settings
from app.style.colors import ThemeChoice
from app.style.theme import app_icon, apply_theme
from app.workers.engine import EngineController
from engine.catalog import load_catalog
from engine.errors import HistoryError
from engine.history import ConversationStore
from retrieval.documents import DocumentLibrary

log = logging.getLogger(__name__)


CATALOG_ENV = "FOOTNOTE_CATALOG"  # path of a catalog JSON (a mirror) replacing the built-in one


def build_main_window(
    paths: AppPaths, *, open_documents: Callable[[], DocumentLibrary] | None = None
) -> MainWindow:
    """Everything the window needs, wired. Raises HistoryError if the
    conversation database cannot be opened. ``open_documents`` builds the
    document library (default: ``app.wiring.libraries.open_library``, as the CLI's;
    tests pass one whose embedder is already loaded)."""
    loaded = load_settings(paths.settings_file)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, loaded.settings.theme)
    store = ConversationStore(paths.history_db)
    engine = EngineController()
    mirror = os.environ.get(CATALOG_ENV)
    catalog = load_catalog(Path(mirror) if mirror else None)
    window = MainWindow(
        paths, loaded.settings, store, engine, catalog, open_documents=open_documents
    )
    if loaded.problem:
        window.banner.show_message(loaded.problem, level="info")
    return window


def configure_application(app: QApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("footnote")
    app.setWindowIcon(app_icon())
    app.setStyle("Fusion")  # the same look on every OS; the stylesheet builds on it
    apply_theme(app, ThemeChoice.SYSTEM)  # until the settings are read


def run_gui(open_path: Path | None = None) -> int:
    paths = AppPaths.from_environment().ensure()
    configure_logging(paths.log_file)
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    configure_application(app)
    reporter = CrashReporter(str(paths.logs))
    reporter.install()
    try:
        window = build_main_window(paths)
    except HistoryError as exc:
        log.error("cannot start: %s", exc)
        QMessageBox.critical(None, "Footnote cannot start", str(exc))
        return 1
    window.show()
    if open_path is not None:
        window.open_path(open_path)
    _quit_cleanly_on_signals(app, window)
    code = app.exec()
    reporter.uninstall()
    window.shutdown()
    window.store.close()
    return code


def _quit_cleanly_on_signals(app: QApplication, window: MainWindow) -> None:
    """SIGTERM (logout, ``kill``) and Ctrl+C close the window normally, so
    settings are saved and the engine thread is stopped before exit."""

    def request_close(_signum: int, _frame: object) -> None:
        window.close()
        app.quit()

    signal.signal(signal.SIGTERM, request_close)
    signal.signal(signal.SIGINT, request_close)
    # Python runs signal handlers only when it gets control; Qt's event loop
    # is C++, so wake the interpreter a few times a second.
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)
