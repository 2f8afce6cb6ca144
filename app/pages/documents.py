"""The Documents page: the collections Footnote answers from, their indexing
progress, and every file's health (indexed, changed, excluded, failed with
its reason, no text layer), with Add Folder…, Remove, Retry failed and
Excludes…; and the collections that live on a Chroma server (Add a server
collection…), with where they live, whether the server answers and whether
an offline copy is kept here (Offline copy, Path mapping…). It only shows
and asks; ``DocumentsController`` does the work.
``ServerRow`` (``app/pages/server_row.py``) is what a server collection's row
shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.pages.server_row import ServerRow, server_state, server_tip
from app.style import colors
from app.widgets.excludes_dialog import ExcludesDialog
from app.widgets.page_header import add_page_header
from app.widgets.server_collection_dialog import PathMapDialog, ServerCollectionDialog
from retrieval.documents import CollectionInfo, FileHealth
from retrieval.ingest_events import IngestProgress, VectorsRebuilding
from retrieval.manifest import NOTHING_TO_READ_STATES, is_failure

COLLECTIONS_MAX_HEIGHT_PX = 220


def problem_color() -> QColor:
    """A red that stays readable on the theme's rows and on the selection."""
    return QColor(colors.current()["problem"])


def skipped_color() -> QColor:
    """Secondary text: a skipped file is listed, not a problem."""
    return QColor(colors.current()["muted"])


SKIPPED_TIP = (
    "Skipped: files of a type Footnote does not read (images, .odt, archives…) or with "
    "no text in them (empty, or scanned without a text layer). They are not failures; "
    "Footnote reads them again if they change."
)


EMPTY_TEXT = "Drop folders here, or Add Folder…, to answer from your own files."
PATH_ROLE = Qt.ItemDataRole.UserRole

# What a manifest state means to a person.
STATE_LABELS = {
    "indexed": "Indexed",
    "pending": "Waiting",
    "changed": "Changed",
    "indexing": "Indexing…",
    "failed": "Failed",
    "no_text": "Skipped: no text",
    "excluded": "Excluded",
    "encrypted": "Encrypted",
    "timeout": "Timed out",
    "binary": "Skipped: file type",
    "unreadable": "Unreadable",
    "too_large_memory": "Too large",
    "duplicate": "Duplicate",
    "link_outside": "Link outside",
}


@dataclass(frozen=True)
class CollectionActivity:
    kind: str  # "queued", "indexing", "removing"
    # while indexing: the files' progress, or the search index's rebuild
    progress: IngestProgress | VectorsRebuilding | None = None


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state.replace("_", " ").capitalize())


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return "less than a minute left"
    return f"about {round(seconds / 60)} min left"


def progress_text(p: IngestProgress | VectorsRebuilding | None) -> str:
    if isinstance(p, VectorsRebuilding):
        eta = eta_text(p.eta_s)
        return f"Rebuilding search index: {p.passages_done} / {p.passages_total} passages" + (
            f", {eta}" if eta else ""
        )
    if p is None or not p.files_total:
        return "Looking for changes…"
    eta = eta_text(p.eta_s)
    return f"{p.files_done} / {p.files_total} files" + (f", {eta}" if eta else "")


def progress_fraction(p: IngestProgress | VectorsRebuilding | None) -> float:
    if isinstance(p, VectorsRebuilding):
        return p.passages_done / p.passages_total if p.passages_total else 0.0
    return p.files_done / p.files_total if p is not None and p.files_total else 0.0


def collection_state(info: CollectionInfo | None) -> str:
    """ "Up to date", "2 failed, 42 skipped", "12 not indexed yet", "Search
    index damaged": what a settled collection needs. Skipped files (a type
    Footnote does not read, no text) are counted apart from failures."""
    if info is None:
        return ""
    failed = sum(n for state, n in info.states.items() if is_failure(state))
    skipped = sum(info.states.get(s, 0) for s in NOTHING_TO_READ_STATES)
    waiting = sum(info.states.get(s, 0) for s in ("pending", "changed", "indexing"))
    parts = []
    if info.vectors is not None and not info.vectors.ok:
        parts.append(VECTOR_STATE_LABELS.get(info.vectors.state, "Search index incomplete"))
    if waiting:
        parts.append(f"{waiting} not indexed yet")
    if failed:
        parts.append(f"{failed} failed")
    if not parts:
        parts.append("Up to date")
    if skipped:
        parts.append(f"{skipped} skipped")
    return ", ".join(parts)


# What a search index that is not whole means, in the collections table (the
# tooltip has the whole sentence: what is lost, what happens next).
VECTOR_STATE_LABELS = {
    "incomplete": "Search index incomplete",
    "broken": "Search index damaged",
    "rebuilding": "Rebuilding search index",
}


def indexed_files(info: CollectionInfo) -> int:
    return info.states.get("indexed", 0)


class DocumentsPage(QWidget):
    back_requested = Signal()
    add_folder_requested = Signal()
    add_server_requested = Signal(object)  # a ServerCollectionForm
    remove_requested = Signal(str)
    retry_requested = Signal(str)
    excludes_changed = Signal(str, list)
    cancel_requested = Signal()
    selection_changed = Signal(str)
    open_file_requested = Signal(str)
    offline_copy_requested = Signal(str, bool)  # a server collection, keep a copy or not
    path_map_changed = Signal(str, object)  # a server collection, its new PathMap
    server_folder_chosen = Signal(str, str)  # a server collection, a folder to index into it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("documentsPage")
        self._infos: dict[str, CollectionInfo] = {}
        self._servers: dict[str, ServerRow] = {}
        self._names: list[str] = []
        self._health: list[FileHealth] = []
        # what the file table shows now, row by row (see _fill_files)
        self._shown_files: list[tuple[FileHealth, Sequence[Path]]] = []
        self._selected: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 20, 32, 24)
        layout.setSpacing(10)

        self.add_button = QPushButton("Add Folder…")
        self.add_button.setObjectName("primaryButton")
        self.add_button.clicked.connect(self.add_folder_requested)
        self.add_server_button = _secondary(
            "Add a server collection…",
            "Search a collection your team indexed on a Chroma server",
        )
        self.add_server_button.clicked.connect(self._ask_server_collection)
        add_page_header(
            layout,
            "Documents",
            self.back_requested,
            actions=[self.add_server_button, self.add_button],
            intro="Footnote answers from these folders and cites the page or heading it used. "
            "Files are only read, never moved or changed; folders are watched for changes.",
        )

        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("documentsEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty, 1)

        self.collections = QTableWidget(0, 4)
        self.collections.setObjectName("collectionsTable")
        self.collections.setAccessibleName("Collections")
        self.collections.setAccessibleDescription(
            "The folders Footnote answers from; choose one to see its files below"
        )
        self.collections.setHorizontalHeaderLabels(["Collection", "Files", "Passages", "State"])
        _table_style(self.collections)
        header_view = self.collections.horizontalHeader()
        header_view.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header_view.setSectionResizeMode(3, QHeaderView.ResizeMode.Fixed)
        self.collections.setColumnWidth(1, 70)
        self.collections.setColumnWidth(2, 80)
        self.collections.setColumnWidth(3, 300)
        self.collections.itemSelectionChanged.connect(self._on_selection)
        self.collections.setMaximumHeight(COLLECTIONS_MAX_HEIGHT_PX)
        layout.addWidget(self.collections, 1)

        actions = QHBoxLayout()
        self.remove_button = _secondary("Remove", "Remove this collection's index (files stay)")
        self.remove_button.clicked.connect(self._emit_for_selected(self.remove_requested))
        self.retry_button = _secondary("Retry failed", "Read the files that failed again")
        self.retry_button.clicked.connect(self._emit_for_selected(self.retry_requested))
        self.excludes_button = _secondary("Excludes…", "Files and folders to leave out")
        self.excludes_button.clicked.connect(self._edit_excludes)
        self.cancel_button = _secondary(
            "Stop indexing",
            "Stop now: finished files stay indexed; the rest, and a file cut off part-way "
            "(from its start), are indexed next time",
        )
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.offline_button = _secondary(
            "Offline copy",
            "Keep a copy of this server collection on this computer, searched when the "
            "server cannot be reached (turn off to delete it)",
        )
        self.offline_button.setCheckable(True)
        self.offline_button.clicked.connect(self._on_offline_clicked)
        self.path_map_button = _secondary(
            "Path mapping…", "Where this computer sees the server's files, so citations open them"
        )
        self.path_map_button.clicked.connect(self._edit_path_map)
        self.server_folder_button = _secondary(
            "Add a folder to this server collection…",
            "Index a folder into the collection on its server, for everyone who uses it",
        )
        self.server_folder_button.clicked.connect(self._choose_server_folder)
        self._server_buttons = [
            self.offline_button,
            self.path_map_button,
            self.server_folder_button,
        ]
        for button in (
            self.remove_button,
            self.retry_button,
            self.excludes_button,
            *self._server_buttons,
        ):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.cancel_button)
        layout.addLayout(actions)

        files_header = QHBoxLayout()
        self.files_title = QLabel("Files")
        self.files_title.setObjectName("sectionTitle")
        files_header.addWidget(self.files_title)
        files_header.addStretch(1)
        self.problems_only = QCheckBox("Only problems")
        self.problems_only.toggled.connect(self._fill_files)
        files_header.addWidget(self.problems_only)
        layout.addLayout(files_header)
        self.files = QTableWidget(0, 3)
        self.files.setObjectName("filesTable")
        self.files.setAccessibleName("Files")
        self.files.setAccessibleDescription("The chosen collection's files and their state")
        self.files.setHorizontalHeaderLabels(["File", "State", "Why"])
        _table_style(self.files)
        files_view = self.files.horizontalHeader()
        files_view.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        files_view.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.files.setColumnWidth(0, 320)
        self.files.setColumnWidth(1, 120)
        self.files.setToolTip("Double-click a file to open it")
        self.files.itemDoubleClicked.connect(self._on_file_double_clicked)
        # Reasons are sentences: wrap them rather than cut them off.
        self.files.setWordWrap(True)
        layout.addWidget(self.files, 3)
        self._collection_widgets = [
            self.collections,
            self.remove_button,
            self.retry_button,
            self.excludes_button,
            self.files_title,
            self.problems_only,
            self.files,
        ]
        self.show_collections([], {}, None, [])

    # ------------------------------------------------------------ showing

    def show_collections(
        self,
        infos: Sequence[CollectionInfo],
        activity: Mapping[str, CollectionActivity],
        selected: str | None,
        health: Sequence[FileHealth],
        servers: Sequence[ServerRow] = (),
    ) -> None:
        """Show the collections (and ones being added, not yet read back)
        with their state, and ``selected``'s files; then the collections
        on Chroma servers."""
        self._infos = {i.name: i for i in infos}
        self._servers = {r.name: r for r in servers}
        names = [i.name for i in infos] + [n for n in activity if n not in self._infos]
        names += [r.name for r in servers if r.name not in names]
        has_any = bool(names)
        self.empty.setVisible(not has_any)
        for widget in self._collection_widgets:
            widget.setVisible(has_any)
        self.cancel_button.setVisible(any(a.kind == "indexing" for a in activity.values()))
        if selected not in names:
            selected = names[0] if names else None
        self._selected = selected

        table = self.collections
        table.blockSignals(True)
        if names != self._names:
            table.setRowCount(len(names))
            self._names = names
        for row, name in enumerate(names):
            info = self._infos.get(name)
            _set(table, row, 0, name)
            server = self._servers.get(name) if info is None else None
            if server is not None:
                self._show_server(row, server, activity.get(name))
                if name == selected:
                    table.selectRow(row)
                continue
            _set(table, row, 1, f"{indexed_files(info):,}" if info else "")
            _set(table, row, 2, f"{info.chunks:,}" if info else "")
            self._show_state(row, info, activity.get(name))
            if name == selected:
                table.selectRow(row)
        table.blockSignals(False)

        info = self._infos.get(selected or "")
        server = self._servers.get(selected or "") if info is None else None
        self.retry_button.setEnabled(info is not None and "failed" in collection_state(info))
        self.excludes_button.setEnabled(info is not None)
        self.remove_button.setEnabled(info is not None or server is not None)
        self.problems_only.setVisible(has_any and server is None)
        for button in (self.retry_button, self.excludes_button):
            button.setVisible(has_any and server is None)
        for button in self._server_buttons:
            button.setVisible(server is not None)
        self.offline_button.setChecked(server is not None and server.offline_copy)
        if server is not None:
            self.files_title.setText(
                f"“{server.name}” lives on {server.url} (collection “{server.remote_name}”): "
                "its files are indexed there, not on this computer"
            )
        else:
            self.files_title.setText(f"Files in “{selected}”" if selected else "Files")
        self._health = list(health) if info is not None else []
        self._fill_files()

    def _show_server(
        self, row: int, server: ServerRow, activity: CollectionActivity | None = None
    ) -> None:
        table = self.collections
        _set(table, row, 1, "")
        _set(table, row, 2, f"{server.chunks:,}" if server.chunks is not None else "")
        if activity is not None and activity.kind in ("indexing", "queued"):
            # a folder being indexed into it from here: shown as a local run is
            self._show_state(row, None, activity)
            return
        if table.cellWidget(row, 3) is not None:
            table.removeCellWidget(row, 3)
        item = _set(table, row, 3, server_state(server))
        item.setToolTip(server_tip(server))
        item.setForeground(problem_color() if server.problem else table.palette().text())

    def _show_state(
        self, row: int, info: CollectionInfo | None, activity: CollectionActivity | None
    ) -> None:
        table = self.collections
        if activity is not None and activity.kind == "indexing":
            bar = table.cellWidget(row, 3)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                bar.setObjectName("indexProgress")
                bar.setRange(0, 1000)
                table.setCellWidget(row, 3, bar)
            p = activity.progress
            bar.setValue(int(1000 * progress_fraction(p)))
            bar.setFormat(progress_text(p))
            _set(table, row, 3, progress_text(p))
            return
        if table.cellWidget(row, 3) is not None:
            table.removeCellWidget(row, 3)
        if activity is not None:
            text = "Removing…" if activity.kind == "removing" else "Waiting to index"
        else:
            text = collection_state(info)
        item = _set(table, row, 3, text)
        vectors = info.vectors if info is not None and activity is None else None
        damaged = vectors is not None and not vectors.ok
        tip = _sentence(vectors.describe()) if damaged and vectors else ""
        if "skipped" in text:
            tip = f"{tip}\n\n{SKIPPED_TIP}".strip()
        item.setToolTip(tip)
        item.setForeground(problem_color() if damaged else table.palette().text())

    def _fill_files(self) -> None:
        """Show the file rows. While a collection indexes this runs about once
        a second (the controller's live refresh), so only rows that changed
        are written and measured again: a 10k-file table stays cheap."""
        rows = [h for h in self._health if not self.problems_only.isChecked() or _problem(h)]
        info = self._infos.get(self._selected or "")
        roots = info.roots if info is not None else ()
        shown = self._shown_files
        if len(rows) != len(shown):
            shown = []
            self.files.setRowCount(len(rows))
        for row, health in enumerate(rows):
            if row < len(shown) and shown[row] == (health, roots):
                continue
            item = _set(self.files, row, 0, _relative(health.path, roots))
            item.setData(PATH_ROLE, health.path)
            item.setToolTip(health.path)
            state = _set(self.files, row, 1, state_label(health.state))
            reason = _set(self.files, row, 2, health.reason)
            reason.setToolTip(health.reason)
            # Items are reused from row to row: every row sets its colour.
            if is_failure(health.state):
                state.setForeground(problem_color())
            elif health.state in NOTHING_TO_READ_STATES:
                state.setForeground(skipped_color())
                state.setToolTip(SKIPPED_TIP)
            else:
                state.setData(Qt.ItemDataRole.ForegroundRole, None)
            if health.state not in NOTHING_TO_READ_STATES:
                state.setToolTip("")
            if shown:
                self.files.resizeRowToContents(row)
        if not shown:
            self.files.resizeRowsToContents()
        self._shown_files = [(h, roots) for h in rows]

    # ------------------------------------------------------------ for tests and the controller

    @property
    def selected(self) -> str | None:
        return self._selected

    def collection_rows(self) -> list[tuple[str, str, str, str]]:
        """The collections table as text (name, files, passages, state)."""
        table = self.collections
        return [
            tuple(_text(table, row, col) for col in range(4))  # type: ignore[misc]
            for row in range(table.rowCount())
        ]

    def file_rows(self) -> list[tuple[str, str, str]]:
        """The visible file table as text (file, state, why)."""
        return [
            (_text(self.files, r, 0), _text(self.files, r, 1), _text(self.files, r, 2))
            for r in range(self.files.rowCount())
        ]

    # ------------------------------------------------------------ input

    def _on_selection(self) -> None:
        rows = {index.row() for index in self.collections.selectedIndexes()}
        if rows:
            name = self._names[min(rows)]
            if name != self._selected:
                self._selected = name
                self.selection_changed.emit(name)

    def _emit_for_selected(self, signal: SignalInstance) -> Callable[[], None]:
        def emit() -> None:
            if self._selected is not None:
                signal.emit(self._selected)

        return emit

    def _ask_server_collection(self) -> None:
        dialog = ServerCollectionDialog(self)
        if dialog.exec() == ServerCollectionDialog.DialogCode.Accepted:
            self.add_server_requested.emit(dialog.form())

    def _on_offline_clicked(self, checked: bool) -> None:
        server = self._servers.get(self._selected or "")
        if server is not None:
            self.offline_copy_requested.emit(server.name, checked)

    def _edit_path_map(self) -> None:
        server = self._servers.get(self._selected or "")
        if server is None:
            return
        dialog = PathMapDialog(server.name, server.path_map, self)
        if dialog.exec() == PathMapDialog.DialogCode.Accepted:
            self.path_map_changed.emit(server.name, dialog.mapping())

    def _choose_server_folder(self) -> None:
        server = self._servers.get(self._selected or "")
        if server is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self, f"Choose a folder to index into “{server.name}” on {server.url}"
        )
        if folder:
            self.server_folder_chosen.emit(server.name, folder)

    def _edit_excludes(self) -> None:
        info = self._infos.get(self._selected or "")
        if info is None:
            return
        dialog = ExcludesDialog(info.name, info.excludes, self)
        if dialog.exec() == ExcludesDialog.DialogCode.Accepted:
            self.excludes_changed.emit(info.name, dialog.patterns())

    def _on_file_double_clicked(self, item: QTableWidgetItem) -> None:
        first = self.files.item(item.row(), 0)
        if first is not None:
            self.open_file_requested.emit(str(first.data(PATH_ROLE)))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _problem(health: FileHealth) -> bool:
    return is_failure(health.state) or health.state in ("changed", "pending")


def _relative(path: str, roots: Sequence[Path]) -> str:
    for root in roots:
        try:
            return Path(path).relative_to(root.parent if root.is_file() else root).as_posix()
        except ValueError:
            continue
    return path


def _set(
    table: QTableWidget,
    row: int,
    col: int,
    text: str,
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
) -> QTableWidgetItem:
    item = table.item(row, col)
    if item is None:
        item = QTableWidgetItem()
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        table.setItem(row, col, item)
    item.setText(text)
    item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
    return item


def _text(table: QTableWidget, row: int, col: int) -> str:
    item = table.item(row, col)
    return item.text() if item is not None else ""


def _table_style(table: QTableWidget) -> None:
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setDefaultAlignment(
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    )
    table.setShowGrid(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().setDefaultSectionSize(30)


def _secondary(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("secondaryButton")
    button.setToolTip(tip)
    return button
