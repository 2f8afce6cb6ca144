"""The main window: conversations on the left, the chat on the right.

It is a thin skin: it turns clicks into store writes and engine requests, and
engine events into widgets. Nothing slow runs here; model loading and every
turn run on the engine thread.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from PySide6.QtCore import QByteArray, Qt, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.banner import Banner
from app.chat_view import ChatView
from app.composer import Composer
from app.conversation_list import ConversationList
from app.engine_worker import EngineController, ModelSummary
from app.generator_worker import GeneratorJob
from app.model_manager import ModelManagerPage, human_size
from app.paths import AppPaths
from app.settings import Settings, save_settings
from app.settings_dialog import GGUF_FILTER, SettingsDialog
from app.theme import app_icon
from app.welcome import WelcomePage
from engine.catalog import CatalogEntry, recommend
from engine.convert import (
    ConvertCancelled,
    ConvertDone,
    ConvertProgress,
    convert,
    remove_leftovers,
)
from engine.download import (
    DownloadCancelled,
    DownloadDone,
    DownloadProgress,
    download,
    part_path_for,
)
from engine.errors import EngineError
from engine.events import Failed, Finished, Notice, PromptProgress, Status, Token
from engine.hardware import MemoryBudget, memory_budget
from engine.history import INTERRUPTED, ConversationStore, StoredMessage
from engine.library import InstalledModel, delete_model, installed_models
from engine.model import LoadOptions
from engine.quantize import DEFAULT_QUANT
from engine.turn import SamplingParams, TurnRequest

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

WINDOW_TITLE = "Footnote"
DEFAULT_SIZE = (1180, 780)
DRAFT_SAVE_S = 1.0  # how often the answer being written is saved


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
        self._downloads: dict[str, GeneratorJob] = {}
        self._scan: GeneratorJob | None = None
        self._conversion: GeneratorJob | None = None
        self._rescan = False
        self.paths = paths
        self.settings = settings
        self.store = store
        self.engine = engine
        self._conversation_id: int | None = None
        self._turn_id: int | None = None
        self._turn_conversation: int | None = None
        self._turn_user_message: StoredMessage | None = None
        # The answer so far (pieces, joined only when saved or re-shown), and
        # its saved copy (rewritten every DRAFT_SAVE_S).
        self._turn_pieces: list[str] = []
        self._turn_draft: StoredMessage | None = None
        self._draft_saved_at = -math.inf
        self._loading_path: str | None = None

        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(*DEFAULT_SIZE)
        self._build()
        self._build_menus()

        engine.model_loading.connect(self._on_model_loading)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.model_failed.connect(self._on_model_failed)
        engine.turn_event.connect(self._on_turn_event)
        engine.devices_found.connect(self._on_devices_found)

        self._restore_geometry()
        self._refresh_conversations(select=settings.last_conversation_id or None)
        self.welcome.set_recent(settings.recent_models)
        self._offer_download()
        if settings.model_path:
            self._load(settings.model_path)
        self._update_pages()
        self._recover_interrupted_work()

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
        self.new_chat_button.clicked.connect(self.new_conversation)
        side.addWidget(self.new_chat_button)
        self.conversations = ConversationList()
        self.conversations.conversation_selected.connect(self.show_conversation)
        self.conversations.rename_requested.connect(self._rename)
        self.conversations.delete_requested.connect(self.delete_conversation)
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
        self.welcome.open_requested.connect(self.choose_model_file)
        self.welcome.recent_requested.connect(self.open_model)
        self.welcome.download_requested.connect(self._download_recommended)
        self.welcome.browse_requested.connect(self.show_models)
        self.pages.addWidget(self.welcome)
        self.models_page = ModelManagerPage(self.catalog)
        self.models_page.back_requested.connect(self._leave_models)
        self.models_page.use_requested.connect(self.open_model)
        self.models_page.delete_requested.connect(self.delete_model_file)
        self.models_page.download_requested.connect(self.start_download)
        self.models_page.cancel_requested.connect(self.cancel_download)
        self.models_page.convert_requested.connect(self.choose_folder_to_convert)
        self.models_page.cancel_conversion.connect(self.cancel_conversion)
        self.pages.addWidget(self.models_page)

        chat_page = QWidget()
        chat_layout = QVBoxLayout(chat_page)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        self.chat = ChatView()
        chat_layout.addWidget(self.chat, 1)
        composer_area = QWidget()
        composer_area.setObjectName("composerArea")
        area_layout = QVBoxLayout(composer_area)
        area_layout.setContentsMargins(24, 8, 24, 14)
        self.composer = Composer()
        self.composer.send_requested.connect(self.send)
        self.composer.stop_requested.connect(self.stop)
        area_layout.addWidget(self.composer)
        self.activity = QLabel()
        self.activity.setObjectName("welcomeHint")
        area_layout.addWidget(self.activity)
        chat_layout.addWidget(composer_area)
        self.pages.addWidget(chat_page)
        self.chat_page = chat_page
        right_layout.addWidget(self.pages, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, DEFAULT_SIZE[0] - 250])
        self.setCentralWidget(splitter)

        status = self.statusBar()
        status.setSizeGripEnabled(False)
        self.model_label = QLabel("No model")
        self.backend_label = QLabel("")
        self.speed_label = QLabel("")
        for label in (self.model_label, self.backend_label, self.speed_label):
            status.addPermanentWidget(label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&New Chat", QKeySequence.StandardKey.New, self.new_conversation),
            ("&Open Model…", QKeySequence.StandardKey.Open, self.choose_model_file),
            ("&Models…", QKeySequence("Ctrl+M"), self.show_models),
            (
                "&Convert a Hugging Face Folder…",
                QKeySequence("Ctrl+Shift+O"),
                self.choose_folder_to_convert,
            ),
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

    # ------------------------------------------------------------------ models

    @Slot()
    def choose_model_file(self) -> None:
        start = str(Path(self.settings.model_path).parent) if self.settings.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", start, GGUF_FILTER)
        if path:
            self.open_model(path)

    @Slot(str)
    def open_model(self, path: str) -> None:
        if self.composer.generating:
            self.banner.show_message(
                "Stop the current answer before switching models.", level="info"
            )
            return
        self._load(path)

    def _load(self, path: str) -> None:
        self._loading_path = path
        self.engine.load_model(
            path,
            LoadOptions(
                context_tokens=self.settings.context_tokens,
                threads=self.settings.threads or None,
                kv_cache_8bit=self.settings.kv_cache_8bit,
                gpu_layers=None if self.settings.gpu_layers < 0 else self.settings.gpu_layers,
            ),
        )

    @Slot(str)
    def _on_model_loading(self, path: str) -> None:
        text = f"Loading {Path(path).name}…"
        self.model_label.setText(text)
        self.welcome.set_status(text)
        self.statusBar().showMessage(text)

    @Slot(object)
    def _on_model_loaded(self, summary: ModelSummary) -> None:
        self._loading_path = None
        path = str(summary.path)
        if path != self.settings.model_path or path not in self.settings.recent_models:
            self.settings.remember_model(path)
        self._save_settings()
        self.model_label.setText(f"{summary.name} · {summary.quantization}")
        self.model_label.setToolTip(str(summary.path))
        self.backend_label.setText(f"{summary.backend_label} · {summary.context_tokens:,} ctx")
        # The fallback reasons stay a hover away after the banner is dismissed.
        self.backend_label.setToolTip("\n".join(summary.notes))
        self.statusBar().showMessage("Model ready", 3000)
        self.welcome.set_status("")
        if summary.notes:
            self.banner.show_message(" ".join(summary.notes), level="info")
        elif self.banner.property("level") == "error" and "load" in self.banner.text().lower():
            self.banner.hide()
        self._update_pages()
        if self.pages.currentWidget() is self.models_page:
            self.refresh_installed()  # move the "In use" mark
        self.composer.edit.setFocus()

    @Slot(object)
    def _on_model_failed(self, error: EngineError) -> None:
        failed = self._loading_path
        self._loading_path = None
        self.statusBar().clearMessage()
        self.welcome.set_status("")
        current = self.engine.model
        self.model_label.setText(
            f"{current.name} · {current.quantization}" if current else "No model"
        )
        message = str(error)
        if current is not None:
            message += f" Still using {current.name}."
        self.banner.show_message(message, details=error.detail)
        log.info("model %s failed: %s", failed, error)
        self._update_pages()

    # ------------------------------------------------------------------ conversations

    def _refresh_conversations(self, select: int | None = None) -> None:
        conversations = self.store.conversations()
        ids = {c.id for c in conversations}
        if select not in ids:
            select = conversations[0].id if conversations else None
        self.conversations.set_conversations(conversations, select)
        if select != self._conversation_id:
            self.show_conversation(select)

    @Slot()
    def new_conversation(self) -> None:
        # Reuse an empty "New chat" instead of piling them up.
        if self._conversation_id is not None and not self.store.messages(self._conversation_id):
            self.composer.edit.setFocus()
            return
        conv = self._store_call(self.store.create_conversation)
        if conv is not None:
            self._refresh_conversations(select=conv.id)
            self.show_conversation(conv.id)
        self.composer.edit.setFocus()

    @Slot(int)
    def show_conversation(self, conversation_id: int | None) -> None:
        if conversation_id == self._conversation_id and self.chat.bubbles():
            return
        self._conversation_id = conversation_id
        self.chat.clear()
        if conversation_id is None:
            return
        messages = self._store_call(self.store.messages, conversation_id) or []
        streaming_here = self._turn_id is not None and self._turn_conversation == conversation_id
        draft_id = self._turn_draft.id if self._turn_draft else None
        for message in messages:
            if streaming_here and message.id == draft_id:
                continue  # shown below as the answer being written
            footer = _STORED_FOOTERS.get(message.finish_reason or "", "")
            self.chat.add_message(message.role, message.content, footer)
        if streaming_here:
            self.chat.begin_answer()
            self.chat.append_answer("".join(self._turn_pieces))
        item = self.conversations.item_for(conversation_id)
        if item is not None and self.conversations.currentItem() is not item:
            self.conversations.blockSignals(True)
            self.conversations.setCurrentItem(item)
            self.conversations.blockSignals(False)
        self.settings.last_conversation_id = conversation_id

    @Slot(int, str)
    def _rename(self, conversation_id: int, title: str) -> None:
        # Update the edited item in place: rebuilding the list from inside its
        # own itemChanged signal would delete the item being edited.
        self._store_call(self.store.rename_conversation, conversation_id, title)
        conv = self.store.get_conversation(conversation_id)
        item = self.conversations.item_for(conversation_id)
        if conv is not None and item is not None and item.text() != conv.title:
            self.conversations.blockSignals(True)
            item.setText(conv.title)
            item.setToolTip(conv.title)
            self.conversations.blockSignals(False)

    @Slot(int)
    def delete_conversation(self, conversation_id: int) -> None:
        conv = self.store.get_conversation(conversation_id)
        if conv is None or not self.confirm(
            "Delete conversation?", f"“{conv.title}” will be deleted. This cannot be undone."
        ):
            return
        if self._turn_conversation == conversation_id:
            self.stop()
            # Its last tokens and its end have nowhere to go now.
            self._turn_conversation = None
            self._turn_draft = None
        self._store_call(self.store.delete_conversation, conversation_id)
        if self._conversation_id == conversation_id:
            self._conversation_id = None
            self.chat.clear()  # the next one, if any, is shown by the refresh
        self._refresh_conversations()

    def confirm(self, title: str, text: str) -> bool:
        """Ask before destroying something (a method so tests can answer it)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------------ turns

    @Slot(str)
    def send(self, text: str) -> None:
        if self._turn_id is not None:
            return
        if self.engine.model is None and self._loading_path is None:
            self.composer.set_text(text)
            self.banner.show_message("Open a model first: File → Open Model…", level="info")
            return
        if self._conversation_id is None:
            conv = self._store_call(self.store.create_conversation)
            if conv is None:
                self.composer.set_text(text)
                return
            self._conversation_id = conv.id
        history = [
            m.as_chat_message()
            for m in (self._store_call(self.store.messages, self._conversation_id) or [])
        ]
        user_message = self._store_call(self.store.add_message, self._conversation_id, "user", text)
        if user_message is None:  # not saved: keep the text, do not answer
            self.composer.set_text(text)
            return
        self.banner.hide()
        self.chat.add_message("user", text)
        self._refresh_conversations(select=self._conversation_id)
        request = TurnRequest(
            system_prompt=self.settings.system_prompt,
            history=history,
            user_message=text,
            sampling=SamplingParams(temperature=self.settings.temperature),
        )
        self._turn_conversation = self._conversation_id
        self._turn_user_message = user_message
        self._turn_id = self.engine.start_turn(request)
        self.chat.begin_answer()
        self.composer.set_generating(True)
        self.activity.setText("Thinking…")

    @Slot()
    def stop(self) -> None:
        if self._turn_id is not None:
            self.engine.cancel(self._turn_id)
            self.activity.setText("Stopping…")

    @Slot(int, object)
    def _on_turn_event(self, turn_id: int, event: object) -> None:
        if turn_id != self._turn_id:
            return
        visible = (
            self._turn_conversation is not None and self._turn_conversation == self._conversation_id
        )
        if isinstance(event, Token):
            self._turn_pieces.append(event.text)
            self._save_draft()
            if visible:
                self.chat.append_answer(event.text)
            if self.activity.text() != "Stopping…":
                self.activity.setText("Writing…")
        elif isinstance(event, Status):
            self.activity.setText(event.text)
        elif isinstance(event, PromptProgress):
            percent = 100 * event.done_tokens // max(event.total_tokens, 1)
            self.activity.setText(f"Reading the prompt… {percent}%")
        elif isinstance(event, Notice):
            self.banner.show_message(event.text, level="info")
        elif isinstance(event, Finished):
            self._finish_turn(event, visible)
        elif isinstance(event, Failed):
            self._fail_turn(event.error, visible)

    def _save_draft(self) -> None:
        """Keep the answer being written on disk: on the first token, then at
        most every DRAFT_SAVE_S, so a crash or a kill loses at most that much.
        (A failed save says so in the banner and is retried no sooner.)"""
        now = time.monotonic()
        if self._turn_conversation is None or now - self._draft_saved_at < DRAFT_SAVE_S:
            return
        self._draft_saved_at = now
        if self._turn_draft is None:
            self._turn_draft = self._store_call(
                self.store.add_message,
                self._turn_conversation,
                "assistant",
                "".join(self._turn_pieces),
                finish_reason=INTERRUPTED,
            )
        else:
            self._store_call(
                self.store.update_message,
                self._turn_draft.id,
                "".join(self._turn_pieces),
                INTERRUPTED,
            )

    def _finish_turn(self, event: Finished, visible: bool) -> None:
        conversation = self._turn_conversation
        user_message = self._turn_user_message
        draft = self._turn_draft
        self._end_turn()
        footer = _answer_footer(event)
        if draft is not None:
            if event.text:
                self._store_call(self.store.update_message, draft.id, event.text, event.reason)
            else:
                self._store_call(self.store.delete_message, draft.id)
        elif event.text and conversation is not None:
            self._store_call(
                self.store.add_message,
                conversation,
                "assistant",
                event.text,
                finish_reason=event.reason,
            )
        if user_message is not None and event.user_content_as_sent != user_message.content:
            self._store_call(
                self.store.set_model_content, user_message.id, event.user_content_as_sent
            )
        if visible:
            self.chat.end_answer(event.text, footer)
        if event.stats.generated_tokens:
            self.speed_label.setText(f"{event.stats.tokens_per_second:.1f} tok/s")
        if event.notes:
            self.banner.show_message(" ".join(event.notes), level="info")

    def _fail_turn(self, error: EngineError, visible: bool) -> None:
        draft = self._turn_draft
        self._end_turn()
        if draft is not None:  # errors never stay in the conversation as an answer
            self._store_call(self.store.delete_message, draft.id)
        if visible:
            self.chat.end_answer("")
        # Errors go to the banner, never into the conversation as assistant text.
        self.banner.show_message(str(error), details=error.detail)

    def _end_turn(self) -> None:
        self._turn_id = None
        self._turn_conversation = None
        self._turn_user_message = None
        self._turn_pieces = []
        self._turn_draft = None
        self._draft_saved_at = -math.inf
        self.composer.set_generating(False)
        self.activity.setText("")

    # ------------------------------------------------------------------ settings

    @Slot()
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, gpus=self.engine.gpus or ())
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return

        def load_inputs() -> tuple[object, ...]:
            s = self.settings
            return (s.model_path, s.context_tokens, s.threads, s.kv_cache_8bit, s.gpu_layers)

        before = load_inputs()
        dialog.apply_to(self.settings)
        self._save_settings()
        after = load_inputs()
        if after != before and self.settings.model_path:
            self.open_model(self.settings.model_path)

    def _save_settings(self) -> None:
        try:
            save_settings(self.paths.settings_file, self.settings)
        except OSError as exc:
            self.banner.show_message(
                f"Your settings could not be saved: {exc.strerror or exc}. "
                "Check free disk space; Footnote keeps working with them for now.",
                details=repr(exc),
            )

    def _store_call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run a store operation; on failure show why and return None."""
        try:
            return method(*args, **kwargs)
        except EngineError as exc:
            self.banner.show_message(str(exc), details=exc.detail)
            return None

    # ------------------------------------------------------------------ window

    def _update_pages(self) -> None:
        if self.pages.currentWidget() is not self.models_page:
            self._show_home_page()

    def _show_home_page(self) -> None:
        """The chat once a model is ready or loading, else the first-run page."""
        has_model = self.engine.model is not None or self._loading_path is not None
        self.pages.setCurrentWidget(self.chat_page if has_model else self.welcome)

    # ------------------------------------------------------------------ model files

    @Slot()
    def show_models(self) -> None:
        self.models_page.set_memory_budget(self._memory_budget())
        self.refresh_installed()
        self.pages.setCurrentWidget(self.models_page)

    @Slot()
    def _leave_models(self) -> None:
        self._show_home_page()

    def refresh_installed(self) -> None:
        """Read the models folder's headers off the GUI thread."""
        if self._scan is not None and self._scan.is_running():
            self._rescan = True  # the folder may have changed since that scan began
            return
        self._rescan = False
        folder = self.paths.models
        recent = [Path(p) for p in self.settings.recent_models]
        self._scan = GeneratorJob(
            lambda _cancel: iter([installed_models(folder, recent)]), "model-scan", self
        )
        self._scan.yielded.connect(self._on_installed)
        self._scan.finished.connect(self._after_scan)
        self._scan.start()

    @Slot()
    def _after_scan(self) -> None:
        if self._rescan:
            self.refresh_installed()

    @Slot(object)
    def _on_installed(self, models: list[InstalledModel]) -> None:
        in_use = self.engine.model.path if self.engine.model else None
        self.models_page.set_installed(models, in_use, self.paths.models)

    def _memory_budget(self) -> MemoryBudget:
        """Free RAM now, plus the GPUs' free memory as found at startup."""
        return memory_budget(self.engine.gpus or ())

    def _offer_download(self) -> None:
        offer = recommend(self.catalog, self._memory_budget().total_bytes)
        if offer is not None:
            self.welcome.offer_download(offer.name.split(" (")[0], human_size(offer.size_bytes))

    @Slot(object)
    def _on_devices_found(self, _gpus: object) -> None:
        # A GPU with its own memory can change what fits and what we recommend.
        budget = self._memory_budget()
        if budget.gpu_bytes:
            self._offer_download()
            self.models_page.set_memory_budget(budget)

    @Slot()
    def _download_recommended(self) -> None:
        best = recommend(self.catalog, self._memory_budget().total_bytes) or next(
            (e for e in self.catalog if e.default), None
        )
        self.show_models()
        if best is not None:
            self.start_download(best)

    @Slot(object)
    def start_download(self, entry: CatalogEntry) -> None:
        if entry.id in self._downloads:
            return
        destination = self.paths.models / entry.file
        if destination.exists():
            self.open_model(str(destination))
            return
        job = GeneratorJob(
            lambda cancel: download(entry.url, destination, cancel, sha256=entry.sha256),
            f"download-{entry.id}",
            self,
        )
        job.yielded.connect(lambda event: self._on_download_event(entry, event))
        job.failed.connect(lambda error: self._on_download_failed(entry, error))
        job.finished.connect(lambda: self._downloads.pop(entry.id, None))
        self._downloads[entry.id] = job
        row = self.models_page.rows.get(entry.id)
        if row is not None:
            row.start()
        job.start()

    @Slot(str)
    def cancel_download(self, entry_id: str) -> None:
        job = self._downloads.get(entry_id)
        if job is not None:
            job.cancel()

    def _on_download_event(self, entry: CatalogEntry, event: object) -> None:
        row = self.models_page.rows.get(entry.id)
        if isinstance(event, DownloadProgress):
            if row is not None:
                row.show_progress(event)
            percent = int(100 * (event.fraction or 0))
            self.statusBar().showMessage(f"Downloading {entry.name}: {percent}%")
        elif isinstance(event, DownloadDone):
            if row is not None:
                row.show_state("Downloaded and verified.")
            self.statusBar().showMessage(f"{entry.name} downloaded and verified", 5000)
            self.refresh_installed()
            self.open_model(str(event.path))
            self.pages.setCurrentWidget(self.chat_page)
        elif isinstance(event, DownloadCancelled):
            if row is not None:
                row.show_state("Paused. Download again to continue where it stopped.")
            self.statusBar().clearMessage()

    def _on_download_failed(self, entry: CatalogEntry, error: EngineError) -> None:
        row = self.models_page.rows.get(entry.id)
        if row is not None:
            row.show_state(str(error))
        self.statusBar().clearMessage()
        self.banner.show_message(str(error), details=error.detail)

    def _recover_interrupted_work(self) -> None:
        """After a crash or a kill: a download's .part resumes where it stopped;
        a conversion's unquantized leftover is deleted (it is never a model)."""
        remove_leftovers(self.paths.models)
        for entry in self.catalog:
            if part_path_for(self.paths.models / entry.file).exists():
                self.statusBar().showMessage(f"Resuming the download of {entry.name}…")
                self.start_download(entry)

    def open_path(self, path: Path) -> None:
        """Open what the user pointed at: a GGUF model, or a Hugging Face folder
        to convert (drag and drop, "Open With", the command line)."""
        if path.is_dir() and (path / "config.json").exists():
            self.convert_folder(path)
        else:
            self.open_model(str(path))

    @Slot()
    def choose_folder_to_convert(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a Hugging Face Phi-3 folder (config.json, *.safetensors)"
        )
        if folder:
            self.convert_folder(Path(folder))

    def convert_folder(self, folder: Path, quant: str = DEFAULT_QUANT) -> None:
        """Convert and quantize on a background thread; the result becomes the model."""
        if self._conversion is not None:
            self.banner.show_message("One conversion at a time: wait for this one.", level="info")
            return
        output = self.paths.models / f"{folder.name}-{quant.upper()}.gguf"
        if output.exists():
            self.open_model(str(output))
            return
        self.show_models()
        self.models_page.conversion.start(f"Converting {folder.name} to {quant.upper()}")
        job = GeneratorJob(
            lambda cancel: convert(folder, output, cancel, quant=quant), "convert", self
        )
        job.yielded.connect(self._on_convert_event)
        job.failed.connect(self._on_convert_failed)
        job.finished.connect(self._on_convert_finished)
        self._conversion = job
        job.start()

    @Slot()
    def cancel_conversion(self) -> None:
        if self._conversion is not None:
            self._conversion.cancel()

    @Slot(object)
    def _on_convert_event(self, event: object) -> None:
        row = self.models_page.conversion
        if isinstance(event, ConvertProgress):
            row.update_progress(event.stage, event.done, event.total)
        elif isinstance(event, ConvertDone):
            row.finish(f"Done: {event.path.name}")
            self.statusBar().showMessage(f"{event.path.name} is ready", 5000)
            self.refresh_installed()
            self.open_model(str(event.path))
        elif isinstance(event, ConvertCancelled):
            row.finish("Conversion cancelled; nothing was written.")

    @Slot(object)
    def _on_convert_failed(self, error: EngineError) -> None:
        self.models_page.conversion.finish(str(error))
        self.banner.show_message(str(error), details=error.detail)

    @Slot()
    def _on_convert_finished(self) -> None:
        self._conversion = None

    @Slot(str)
    def delete_model_file(self, path: str) -> None:
        if self.engine.model is not None and str(self.engine.model.path) == path:
            self.banner.show_message(
                "Switch to another model before deleting this one.", level="info"
            )
            return
        if not self.confirm(
            "Delete model?", f"{Path(path).name} will be deleted from this computer."
        ):
            return
        try:
            delete_model(Path(path), self.paths.models)
        except EngineError as exc:
            self.banner.show_message(str(exc), details=exc.detail)
        if path in self.settings.recent_models:
            self.settings.recent_models.remove(path)
            self._save_settings()
        self.refresh_installed()

    def _restore_geometry(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
        if self.settings.window_state:
            self.splitter.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _dropped_paths(event)
        models = [p for p in paths if p.lower().endswith(".gguf")]
        checkpoints = [p for p in paths if (Path(p) / "config.json").exists()]
        if models:
            event.acceptProposedAction()
            self.open_model(models[0])
        elif checkpoints:
            event.acceptProposedAction()
            self.convert_folder(Path(checkpoints[0]))
        elif paths:
            event.acceptProposedAction()
            self.banner.show_message(
                f"{Path(paths[0]).name} is not a .gguf model file or a Hugging Face model "
                "folder. Drop a GGUF model, such as Phi-3-mini-4k-instruct-q4.gguf.",
                level="info",
            )

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save the window's state and stop the workers (idempotent)."""
        for job in list(self._downloads.values()):
            job.stop_and_wait()  # the part file stays; the next download resumes it
        if self._scan is not None:
            self._scan.stop_and_wait()
        if self._conversion is not None:
            self._conversion.stop_and_wait()
        if not self.engine.is_running():
            return
        self.settings.window_geometry = _b64(self.saveGeometry())
        self.settings.window_state = _b64(self.splitter.saveState())
        self._save_settings()
        self.engine.shutdown()


def _b64(data: QByteArray) -> str:
    return bytes(data.toBase64().data()).decode("ascii")


def _dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


# Footers of answers read back from the conversation database.
_STORED_FOOTERS = {
    "cancelled": "Stopped",
    "length": "Cut short",
    INTERRUPTED: "Interrupted: Footnote closed before this answer was finished",
}


def _answer_footer(event: Finished) -> str:
    parts = []
    if event.reason == "cancelled":
        parts.append("Stopped")
    elif event.reason == "length":
        parts.append("Cut short")
    if event.stats.generated_tokens:
        parts.append(
            f"{event.stats.generated_tokens} tokens · {event.stats.tokens_per_second:.1f} tok/s"
        )
    return "  ·  ".join(parts)
