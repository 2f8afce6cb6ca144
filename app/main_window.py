"""The main window: conversations on the left, the pages on the right (the
chat, Welcome, Models, Documents, Privacy Ledger), the menus and the status bar.

It builds its widgets and pages and routes menus, page changes and drag and
drop; it holds no screen's logic. The controllers that do the work are built
by the composition root (``app.application``) and handed over with
:meth:`MainWindow.attach`. Every background job is tracked by one
``JobRegistry`` so closing the window joins them all. Nothing slow runs on
this thread.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.chat import ChatController
from app.controllers.conversation_files import ConversationFiles
from app.controllers.conversations import ConversationsController
from app.controllers.documents import DocumentsController, name_for
from app.controllers.grounding import GroundingController
from app.controllers.models import NO_MODEL_TEXT, ModelsController
from app.controllers.read_ahead import ReadAhead
from app.controllers.warmup import WarmUp
from app.pages.chat import ChatPage
from app.pages.documents import DocumentsPage
from app.pages.ledger import LedgerPage
from app.pages.models import ModelManagerPage
from app.pages.welcome import WelcomePage
from app.paths import AppPaths
from app.settings import Settings
from app.settings import save_settings as write_settings
from app.style.colors import ThemeChoice
from app.style.theme import app_icon, apply_theme, theme_changed, theme_menu
from app.widgets.banner import Banner
from app.widgets.conversation_list import ConversationList
from app.widgets.focus_order import order_chat_page
from app.widgets.search_popup import SearchPopup
from app.widgets.settings_dialog import GGUF_FILTER, SettingsDialog
from app.widgets.sources_panel import source_notes
from app.wiring.grounding import ledger_path
from app.workers.engine import EngineController
from app.workers.jobs import JobRegistry
from engine.catalog import CatalogEntry
from engine.history import ConversationStore
from engine.quantize import DEFAULT_QUANT
from retrieval.web.ledger import Ledger

log = logging.getLogger(__name__)

WINDOW_TITLE = "Footnote"
DEFAULT_SIZE = (1180, 780)
SOURCE_NOTE_MS = 8000  # how long "Opened report.pdf at page 4 …" stays in the status line


@dataclass(frozen=True)
class WindowControllers:
    """The work behind the window, one controller per concern."""

    models: ModelsController
    chat: ChatController
    conversations: ConversationsController
    files: ConversationFiles
    documents: DocumentsController
    grounding: GroundingController
    warm_up: WarmUp
    read_ahead: ReadAhead


class MainWindow(QMainWindow):
    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        store: ConversationStore,
        engine: EngineController,
        catalog: list[CatalogEntry],
    ) -> None:
        super().__init__()
        self.catalog = catalog
        self.paths = paths
        self.settings = settings
        self.store = store
        self.search_popup: SearchPopup | None = None  # made on first use
        self.engine = engine
        self.jobs = JobRegistry(self)
        self._shut_down = False
        self._chat_tab_stops: list[QWidget] = []  # app.widgets.focus_order
        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(*DEFAULT_SIZE)
        self._build()
        self._build_menus()

        self._restore_geometry()
        self.welcome.set_recent(settings.recent_models)

    def attach(self, controllers: WindowControllers) -> None:
        """Take the controllers the composition root built for this window
        (``app.application``) and follow the ones the window's pages track."""
        self.models_controller = controllers.models
        self.chat_controller = controllers.chat
        self.conversations_controller = controllers.conversations
        self.conversation_files = controllers.files
        self.documents_controller = controllers.documents
        self.grounding_controller = controllers.grounding
        self.warm_up = controllers.warm_up
        self.read_ahead = controllers.read_ahead
        # (The order of these connections is the order their slots run in:
        # the banner looks at the conversation after the controller switched it.)
        self.documents_page.back_requested.connect(self._show_home_page)
        self.documents_page.add_folder_requested.connect(self.choose_documents_folder)
        self.chat_controller.web_turn_finished.connect(self.ledger_page.refresh)
        self.edit_query_button.clicked.connect(self.edit_web_query)
        self.ledger_page.back_requested.connect(self._show_home_page)
        models = controllers.models
        models.model_state_changed.connect(self.show_home_page_unless_elsewhere)
        models.models_page_requested.connect(self.show_models)
        models.chat_page_requested.connect(lambda: self.pages.setCurrentWidget(self.chat_page))
        models.focus_requested.connect(self.composer.edit.setFocus)
        self.new_chat_button.clicked.connect(self.new_conversation)
        self.welcome.open_requested.connect(self.choose_model_file)
        self.welcome.browse_requested.connect(self.show_models)
        self.models_page.back_requested.connect(self._show_home_page)
        self.models_page.convert_requested.connect(self.choose_folder_to_convert)
        theme_changed().connect(self._restyle_content)
        source_notes().said.connect(self._say_source_opened)
        # A banner stays with the page (and conversation) it was raised on.
        self.banner.set_context(self._where)
        self.pages.currentChanged.connect(self.banner.context_changed)
        self.conversations.conversation_selected.connect(lambda _id: self.banner.context_changed())

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("mainSplitter")
        splitter.setHandleWidth(1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        sidebar = QFrame()
        sidebar.setObjectName("sidebar")
        sidebar.setMinimumWidth(200)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(12, 14, 12, 12)
        side.setSpacing(10)
        title = QLabel("Footnote")
        title.setObjectName("sidebarTitle")
        side.addWidget(title)
        self.new_chat_button = QPushButton("＋  New chat")
        self.new_chat_button.setObjectName("newChatButton")
        self.new_chat_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.new_chat_button.setAccessibleName("New chat")
        self.new_chat_button.setAccessibleDescription("Start a new conversation (Ctrl+N)")
        side.addWidget(self.new_chat_button)
        self.conversations = ConversationList()
        side.addWidget(self.conversations, 1)
        splitter.addWidget(sidebar)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        self.banner = Banner()
        right_layout.addWidget(self.banner)
        self.pages = QStackedWidget()
        self.welcome = WelcomePage()
        self.pages.addWidget(self.welcome)
        self.models_page = ModelManagerPage(self.catalog)
        self.pages.addWidget(self.models_page)
        self.documents_page = DocumentsPage()
        self.pages.addWidget(self.documents_page)
        self.ledger_page = LedgerPage(
            Ledger(ledger_path(self.paths.data)),
            confirm=lambda title, text: self.confirm(title, text),  # noqa: PLW0108
        )
        self.pages.addWidget(self.ledger_page)

        self.chat_page = ChatPage()
        # The chat page's parts, by name: controllers and tests reach them here.
        self.chat = self.chat_page.chat
        self.composer = self.chat_page.composer
        self.activity = self.chat_page.activity
        self.edit_query_button = self.chat_page.edit_query_button
        self.use_documents_button = self.chat_page.use_documents_button
        self.pages.addWidget(self.chat_page)
        right_layout.addWidget(self.pages, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, DEFAULT_SIZE[0] - 250])
        self.setCentralWidget(splitter)

        status = self.statusBar()
        status.setSizeGripEnabled(False)
        self.model_label = QLabel(NO_MODEL_TEXT)
        self.backend_label = QLabel("")
        self.speed_label = QLabel("")
        self.indexing_label = QLabel("")
        for label in (self.indexing_label, self.model_label, self.backend_label, self.speed_label):
            status.addPermanentWidget(label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&New Chat", QKeySequence.StandardKey.New, self.new_conversation),
            ("&Open Model…", QKeySequence.StandardKey.Open, self.choose_model_file),
            ("&Models…", QKeySequence("Ctrl+M"), self.show_models),
            ("&Documents…", QKeySequence("Ctrl+D"), self.show_documents),
            ("Add D&ocuments…", QKeySequence("Ctrl+Shift+D"), self.choose_documents_folder),
            (
                "&Convert a Hugging Face Folder…",
                QKeySequence("Ctrl+Shift+O"),
                self.choose_folder_to_convert,
            ),
            ("&Export Conversation…", QKeySequence("Ctrl+Shift+E"), self.export_conversation),
            ("&Import Conversation…", QKeySequence("Ctrl+Shift+I"), self.import_conversation),
            ("&Settings…", QKeySequence.StandardKey.Preferences, self.open_settings),
        ):
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        ledger = QAction("Privacy &Ledger", self)
        ledger.setShortcut(QKeySequence("Ctrl+Shift+L"))
        ledger.triggered.connect(self.show_ledger)
        view_menu.addAction(ledger)
        view_menu.addMenu(theme_menu(self, self.set_theme))
        find = QAction("&Search Conversations…", self)
        find.setShortcuts([QKeySequence("Ctrl+K"), QKeySequence(QKeySequence.StandardKey.Find)])
        find.triggered.connect(self.search_conversations)
        view_menu.addAction(find)
        stop = QAction("Stop", self)
        stop.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        stop.triggered.connect(self.stop)
        self.addAction(stop)
        help_menu = self.menuBar().addMenu("&Help")
        logs = QAction("Open &Log Folder", self)
        logs.triggered.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.logs)))
        )
        help_menu.addAction(logs)

    # ------------------------------------------------------------------ delegates
    # (what menus, the command line and tests call; the work is in the controllers)

    @property
    def conversation_id(self) -> int | None:
        """The conversation shown in the chat."""
        return self.chat_controller.conversation_id

    @Slot(str)
    def send(self, text: str) -> None:
        self.chat_controller.send(text)

    @Slot()
    def stop(self) -> None:
        self.chat_controller.stop()

    @Slot()
    def export_conversation(self) -> None:
        self.conversation_files.export_current()

    @Slot()
    def import_conversation(self) -> None:
        self.conversation_files.import_file()

    @Slot()
    def new_conversation(self) -> None:
        self.conversations_controller.new()
        self.banner.context_changed()

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab: on the chat page, the messages come between the conversation
        list and the message box (``app.widgets.focus_order``)."""
        if self.pages.currentWidget() is self.chat_page:
            composer = self.composer
            order_chat_page(
                [self.new_chat_button, self.conversations, *self.banner.buttons(), self.chat],
                self.chat,
                [composer.edit, composer.collections_chooser, composer.web_toggle, composer.button],
                last_known=self._chat_tab_stops,
            )
        return super().focusNextPrevChild(next)

    def _where(self) -> tuple[int, int | None]:
        """Where the user is, for the banner: the page, and on the chat page
        the conversation."""
        on_chat = self.pages.currentWidget() is self.chat_page
        return (self.pages.currentIndex(), self.conversation_id if on_chat else None)

    @Slot(str, bool)
    def _say_source_opened(self, message: str, ok: bool) -> None:
        """A source was opened (the status line says how) or could not be (the banner)."""
        if ok:
            self.statusBar().showMessage(message, SOURCE_NOTE_MS)
        else:
            self.banner.show_message(message, level="info")

    @Slot()
    def search_conversations(self) -> None:
        """The search box over the window (Ctrl+K, Ctrl+F)."""
        if self.search_popup is None:
            self.search_popup = SearchPopup(
                lambda query: self.banner.attempt(self.store.search, query) or [], self
            )
            self.search_popup.open_requested.connect(self.open_search_hit)
        self.search_popup.open_over(self)

    @Slot(int, int)
    def open_search_hit(self, conversation_id: int, message_id: int) -> None:
        """Open a conversation at a message (0: at its end), switching to the
        branch that holds it when another version is shown."""
        self._show_home_page()
        shown = self.banner.attempt(self.store.messages, conversation_id) or []
        on_branch = not message_id or any(m.id == message_id for m in shown)
        if not on_branch and conversation_id == self.conversation_id:
            self.chat_controller.show_version(message_id)
        else:
            if not on_branch:
                self.banner.attempt(self.store.select, message_id)
            self.show_conversation(conversation_id)
        if message_id:
            self.chat.scroll_to_message(message_id)
        else:
            self.chat.scroll_to_bottom()

    @Slot(int)
    def show_conversation(self, conversation_id: int | None) -> None:
        self.conversations_controller.show(conversation_id)

    @Slot(int)
    def delete_conversation(self, conversation_id: int) -> None:
        self.conversations_controller.delete(conversation_id)

    @Slot(str)
    def open_model(self, path: str) -> None:
        self.models_controller.open_model(path)

    def refresh_installed(self) -> None:
        self.models_controller.refresh_installed()

    @Slot(object)
    def start_download(self, entry: CatalogEntry) -> None:
        self.models_controller.start_download(entry)

    @Slot(str)
    def cancel_download(self, entry_id: str) -> None:
        self.models_controller.cancel_download(entry_id)

    def convert_folder(self, folder: Path, quant: str = DEFAULT_QUANT) -> None:
        self.models_controller.convert_folder(folder, quant)

    @Slot()
    def cancel_conversion(self) -> None:
        self.models_controller.cancel_conversion()

    @Slot(str)
    def delete_model_file(self, path: str) -> None:
        self.models_controller.delete_model_file(path)

    def confirm(self, title: str, text: str) -> bool:
        """Ask before destroying something (a method so tests can answer it)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------------ dialogs

    @Slot()
    def choose_model_file(self) -> None:
        start = str(Path(self.settings.model_path).parent) if self.settings.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", start, GGUF_FILTER)
        if path:
            self.open_model(path)

    @Slot()
    def choose_folder_to_convert(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a Hugging Face Phi-3 folder (config.json, *.safetensors)"
        )
        if folder:
            self.convert_folder(Path(folder))

    @Slot()
    def choose_documents_folder(self) -> None:
        """Add Folder…: a folder, then its collection's name (editable)."""
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of documents")
        if not folder:
            return
        suggested = name_for([Path(folder)])
        name, ok = QInputDialog.getText(
            self, "Add documents", "Name of the collection:", text=suggested
        )
        if ok:
            self.add_documents([Path(folder)], name.strip() or None)

    def add_documents(self, paths: list[Path], name: str | None = None) -> str:
        """Index these folders/files as a new collection; shows the Documents page."""
        added = self.documents_controller.add_paths(paths, name)
        self.show_documents()
        return added

    @Slot()
    def edit_web_query(self) -> None:
        """Edit query: search the web for other words, and ask again."""
        query, ok = QInputDialog.getText(
            self,
            "Edit the web search",
            "Search the web for:",
            text=self.chat_controller.current_web_query(),
        )
        if ok and query.strip():
            self.chat_controller.rerun_with_query(query)

    @Slot()
    def open_settings(self) -> None:
        dialog = SettingsDialog(
            self.settings,
            self,
            gpus=self.engine.gpus or (),
            prompt_tokens_per_s=self.engine.prompt_tokens_per_s if self.engine.model else None,
            prompt_speed_measured=self.engine.prompt_speed_measured,
            has_saved_key=self.settings.use_model_server,
        )
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return

        def load_inputs() -> tuple[object, ...]:
            s = self.settings
            return (
                s.model_path,
                s.context_tokens,
                s.threads,
                s.kv_cache_8bit,
                s.gpu_layers,
                s.use_model_server,
                s.model_server_url,
                s.model_server_model,
            )

        before = load_inputs()
        dialog.apply_to(self.settings)
        self.save_settings()
        self.set_theme(ThemeChoice(self.settings.theme))
        new_key = self.models_controller.remember_api_key(dialog.api_key)
        if load_inputs() != before or new_key:
            self.models_controller.use_settings()

    def set_theme(self, choice: ThemeChoice) -> None:
        """Light, dark or the system's, for the whole app, now and next time."""
        if self.settings.theme != choice.value:
            self.settings.theme = choice.value
            self.save_settings()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, choice)

    @Slot(str)
    def _restyle_content(self, _scheme: str) -> None:
        """Rich text carries its colours inline (code blocks, sources): render
        the finished answers again in the new theme's colours."""
        bubbles = self.chat.bubbles()
        if self.composer.generating and bubbles:
            bubbles = bubbles[:-1]  # the answer being written gets them at its end
        for bubble in bubbles:
            if bubble.sources_panel is not None:
                bubble.sources_panel.restyle()
            if bubble.role != "user" and bubble.text:
                bubble.set_text(bubble.text)

    def save_settings(self) -> None:
        try:
            write_settings(self.paths.settings_file, self.settings)
        except OSError as exc:
            self.banner.show_message(
                f"Your settings could not be saved: {exc.strerror or exc}. "
                "Check free disk space; Footnote keeps working with them for now.",
                details=repr(exc),
            )

    # ------------------------------------------------------------------ pages

    @Slot()
    def show_models(self) -> None:
        self.models_controller.prepare_page()
        self.pages.setCurrentWidget(self.models_page)

    @Slot()
    def show_documents(self) -> None:
        self.documents_controller.refresh()
        self.pages.setCurrentWidget(self.documents_page)

    @Slot()
    def show_ledger(self) -> None:
        self.ledger_page.refresh()
        self.pages.setCurrentWidget(self.ledger_page)

    def show_home_page_unless_elsewhere(self) -> None:
        """The chat (or Welcome) page, unless a full page (Models, Documents,
        Privacy Ledger) is open."""
        if self.pages.currentWidget() not in (
            self.models_page,
            self.documents_page,
            self.ledger_page,
        ):
            self._show_home_page()

    @Slot()
    def _show_home_page(self) -> None:
        """The chat once a model is ready or loading, else the first-run page."""
        has_model = self.models_controller.has_model
        self.pages.setCurrentWidget(self.chat_page if has_model else self.welcome)

    # ------------------------------------------------------------------ opening files

    def open_path(self, path: Path) -> None:
        """Open what the user pointed at: a GGUF model, a Hugging Face folder
        to convert, or any other folder as documents (drag and drop, "Open
        With", the command line)."""
        if path.is_dir() and (path / "config.json").exists():
            self.convert_folder(path)
        elif path.is_dir():
            self.add_documents([path])
        else:
            self.open_model(str(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _dropped_paths(event)
        models = [p for p in paths if p.lower().endswith(".gguf")]
        checkpoints = [p for p in paths if _is_checkpoint(Path(p))]
        if models:
            event.acceptProposedAction()
            self.open_model(models[0])
        elif checkpoints:
            event.acceptProposedAction()
            self.convert_folder(Path(checkpoints[0]))
        elif paths:
            # Any other folder or file: documents to answer from.
            event.acceptProposedAction()
            self.add_documents([Path(p) for p in paths])

    # ------------------------------------------------------------------ closing

    def _restore_geometry(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
        if self.settings.window_state:
            self.splitter.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.warm_up.arm_after_show()  # (arming twice is harmless)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save the window's state, then cancel and join every background job
        and the engine thread (idempotent). Returns only once no thread of
        this window is running; if one cannot stop at once (quantizing, a
        model load), the status bar says what it is waiting for."""
        if self._shut_down:
            return
        self._shut_down = True
        self.settings.window_geometry = _b64(self.saveGeometry())
        self.settings.window_state = _b64(self.splitter.saveState())
        self.save_settings()
        self.documents_controller.shutdown()
        self.jobs.shutdown(self._say_waiting)
        self.engine.shutdown(self._say_waiting)

    def _say_waiting(self, text: str) -> None:
        self.statusBar().showMessage(text)
        self.activity.setText(text)


def _b64(data: QByteArray) -> str:
    return bytes(data.toBase64().data()).decode("ascii")


def _is_checkpoint(path: Path) -> bool:
    """A Hugging Face model folder: config.json and safetensors weights."""
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
