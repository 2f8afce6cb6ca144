"""The composition root: builds the concrete parts and wires them together:
the conversation store, the engine thread, the window, and the controllers
behind the window's pages.

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

from app.controllers.chat import ChatController
from app.controllers.conversation_files import ConversationFiles
from app.controllers.conversations import ConversationsController
from app.controllers.documents import DocumentsController
from app.controllers.grounding import GroundingController
from app.controllers.models import ModelsController
from app.controllers.read_ahead import ReadAhead
from app.controllers.warmup import WarmUp
from app.crash import CrashReporter
from app.logs import configure_logging
from app.main_window import MainWindow, WindowControllers
from app.paths import APP_NAME, AppPaths
from app.settings import load_settings
from app.style.colors import ThemeChoice
from app.style.theme import app_icon, apply_theme
from app.wiring.grounding import SharedEmbedder
from app.wiring.libraries import new_embedder, open_library
from app.wiring.turn_grounding import GroundingService
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
    """Everything the window needs, wired, and started (the last conversation
    shown, the last model loading). Raises HistoryError if the conversation
    database cannot be opened. ``open_documents`` builds the document library
    (default: :func:`app.wiring.libraries.open_library`, as the CLI does;
    tests pass one whose embedder is already loaded)."""
    loaded = load_settings(paths.settings_file)
    settings = loaded.settings
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, settings.theme)
    store = ConversationStore(paths.history_db)
    engine = EngineController()
    # What each model file's loads start from; the engine updates it in place
    # (it is the settings' own dict) and says so, and it is saved.
    engine.saved_prompt_speeds = settings.prompt_speeds
    mirror = os.environ.get(CATALOG_ENV)
    catalog = load_catalog(Path(mirror) if mirror else None)
    window = MainWindow(paths, settings, store, engine, catalog)
    engine.prompt_speed_changed.connect(lambda *_: window.save_settings())
    window.attach(_controllers(window, open_documents))
    _start(window)
    if loaded.problem:
        window.banner.show_message(loaded.problem, level="info")
    return window


def _controllers(
    window: MainWindow, open_documents: Callable[[], DocumentLibrary] | None
) -> WindowControllers:
    """The controllers, each given the widgets it drives and the parts it
    uses, and wired to one another."""
    paths, settings, store, engine = window.paths, window.settings, window.store, window.engine

    def confirm(title: str, text: str) -> bool:
        # Looked up at each call: tests answer the question by replacing it.
        return window.confirm(title, text)

    models = ModelsController(
        paths=paths,
        settings=settings,
        engine=engine,
        catalog=window.catalog,
        jobs=window.jobs,
        page=window.models_page,
        welcome=window.welcome,
        banner=window.banner,
        status=window.statusBar(),
        model_label=window.model_label,
        backend_label=window.backend_label,
        is_busy=lambda: window.composer.generating,
        confirm=confirm,
        save_settings=window.save_settings,
        parent=window,
    )
    chat = ChatController(
        settings=settings,
        store=store,
        engine=engine,
        models=models,
        chat=window.chat,
        composer=window.composer,
        activity=window.activity,
        speed_label=window.speed_label,
        banner=window.banner,
        parent=window,
    )
    conversations = ConversationsController(
        settings=settings,
        store=store,
        chat=chat,
        sidebar=window.conversations,
        composer=window.composer,
        banner=window.banner,
        confirm=confirm,
        parent=window,
    )
    files = ConversationFiles(
        parent=window,
        store=store,
        conversations=conversations,
        banner=window.banner,
        start_folder=Path.home,
    )
    # One embedding model for documents and web pages, loaded on first use;
    # a library made elsewhere (tests) lends its own to the web search.
    embedder = SharedEmbedder(
        new_embedder if open_documents is None else lambda: documents.library.embedder
    )
    documents = DocumentsController(
        # The library opens on a worker thread, on first use.
        open_library=open_documents or (lambda: open_library(paths, embedder.get)),
        jobs=window.jobs,
        page=window.documents_page,
        banner=window.banner,
        status_label=window.indexing_label,
        confirm=confirm,
        parent=window,
    )
    grounding = GroundingController(
        settings=settings,
        store=store,
        composer=window.composer,
        banner=window.banner,
        # The engine thread opens the library on a turn's first use.
        service=GroundingService(
            lambda: documents.library, embedder, data_dir=paths.data, cache_dir=paths.cache
        ),
        collection_names=documents.collection_names,
        save_settings=window.save_settings,
        parent=window,
    )
    documents.collections_changed.connect(grounding.collections_changed)
    chat.attach_grounding(grounding, window.edit_query_button, window.use_documents_button)
    window.use_documents_button.clicked.connect(chat.use_documents)
    # The document backends (torch…) are imported in the background once the
    # window shows, for a user who will need them (app.controllers.warmup).
    warm_up = WarmUp(window.jobs, window)
    warm_up.follow(settings, documents, window.composer.web_toggle)
    # Ready before Enter: the question's sources are read while it is typed.
    read_ahead = ReadAhead(
        composer=window.composer,
        engine=engine,
        chat=chat,
        grounding=grounding,
        models=models,
        store=store,
        settings=settings,
        parent=window,
    )
    return WindowControllers(
        models=models,
        chat=chat,
        conversations=conversations,
        files=files,
        documents=documents,
        grounding=grounding,
        warm_up=warm_up,
        read_ahead=read_ahead,
    )


def _start(window: MainWindow) -> None:
    """Show what the user left: the last conversation, the last model
    (loading), a download offer on a first run, work a crash interrupted."""
    settings, models = window.settings, window.models_controller
    window.conversations_controller.refresh(select=settings.last_conversation_id or None)
    models.offer_download()
    models.use_settings()  # the model server, when one is on, else the last model file
    window.show_home_page_unless_elsewhere()
    models.recover_interrupted_work()


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
