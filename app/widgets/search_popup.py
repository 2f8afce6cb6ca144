"""Search conversations (Ctrl+K, Ctrl+F): a box over the window that finds
titles, messages and cited source names as you type, shows each hit's
matching line with the words highlighted, and opens the conversation at
that message on Enter (or a click). Up/Down move through the hits while
typing continues; Esc closes.

The search itself is ``engine.history_search`` (SQLite FTS5, a few ms);
this module only asks and shows. It runs on the GUI thread after a short
pause in typing (``SEARCH_DELAY_MS``).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.style import colors
from engine.history_search import SearchHit

SEARCH_DELAY_MS = 120  # after the last key, before searching
POPUP_WIDTH_PX = 640
POPUP_MAX_HEIGHT_PX = 460
POPUP_TOP_OFFSET_PX = 72  # from the top of the window it opens over
PLACEHOLDER = "Search conversations: titles, messages, sources"
EMPTY_HINT = "Type to search every conversation. Enter opens the one selected."
ROLE_LABELS = {"user": "You", "assistant": "Footnote"}
_DAY_S = 86_400


def where_label(hit: SearchHit) -> str:
    """Who or what matched: "You", "Footnote", "Title", "Source"."""
    if hit.where == "title":
        return "Title"
    if hit.where == "sources":
        return "Source"
    return ROLE_LABELS.get(hit.role or "", "")


def highlighted_html(line: str, spans: Sequence[tuple[int, int]]) -> str:
    """``line`` as rich text with the matched words marked: bold, in the
    accent's text colour (readable on the row and on the selected row)."""
    scheme = colors.current()
    mark = f"<span style='color:{scheme['accent_text']};font-weight:700'>"
    parts, at = [], 0
    for start, end in spans:
        parts.append(html.escape(line[at:start]))
        parts.append(mark + html.escape(line[start:end]) + "</span>")
        at = end
    parts.append(html.escape(line[at:]))
    return "".join(parts)


def when_text(updated_at: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    days = int((now - updated_at) // _DAY_S)
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 31:
        return f"{days} days ago"
    return time.strftime("%d %b %Y", time.localtime(updated_at))


class SearchPopup(QDialog):
    """``search(query)`` gives the hits (the store's, through the banner)."""

    open_requested = Signal(int, int)  # conversation id, message id (0: the title)

    def __init__(self, search: Callable[[str], list[SearchHit]], parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("searchPopup")
        self.setWindowTitle("Search conversations")
        self.setWindowFlag(Qt.WindowType.FramelessWindowHint)
        self.setAccessibleName("Search conversations")
        self._search = search
        self._hits: list[SearchHit] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)

        self.query = QLineEdit()
        self.query.setObjectName("searchQuery")
        self.query.setPlaceholderText(PLACEHOLDER)
        self.query.setClearButtonEnabled(True)
        self.query.setAccessibleName("Search conversations")
        self.query.setAccessibleDescription(
            "Every word must appear. Up and Down choose a result, Enter opens it, Esc closes."
        )
        self.query.textChanged.connect(self._schedule)
        self.query.installEventFilter(self)
        layout.addWidget(self.query)

        self.status = QLabel(EMPTY_HINT)
        self.status.setObjectName("searchStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.results = QListWidget()
        self.results.setObjectName("searchResults")
        self.results.setAccessibleName("Search results")
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.results.itemActivated.connect(self._open_item)
        self.results.itemClicked.connect(self._open_item)
        self.results.hide()
        layout.addWidget(self.results, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.search_now)
        self.resize(POPUP_WIDTH_PX, 0)

    # ------------------------------------------------------------ showing

    def open_over(self, window: QWidget) -> None:
        """Show (again) over ``window``, the last query selected for retyping."""
        self.setFixedWidth(min(POPUP_WIDTH_PX, max(320, window.width() - 48)))
        top_left = window.mapToGlobal(window.rect().topLeft())
        self.move(
            top_left.x() + (window.width() - self.width()) // 2,
            top_left.y() + POPUP_TOP_OFFSET_PX,
        )
        scheme = colors.current()
        # The rows are rich-text labels: a light selection keeps their
        # colours readable (the theme's accent selection would not).
        self.setStyleSheet(
            f"#searchPopup {{ background: {scheme['bg']}; border: 1px solid {scheme['border']};"
            " border-radius: 10px; }"
            f" #searchResults {{ border: 1px solid {scheme['line']}; border-radius: 6px; }}"
            f" #searchResults::item {{ border-bottom: 1px solid {scheme['line']}; }}"
            f" #searchResults::item:selected {{ background: {scheme['selected']};"
            f" border-left: 3px solid {scheme['accent']}; }}"
        )
        self.show()
        self.raise_()
        self.activateWindow()
        self.query.setFocus(Qt.FocusReason.PopupFocusReason)
        self.query.selectAll()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_height()

    def changeEvent(self, event: QEvent) -> None:
        # A click back in the window closes it, as a popup does.
        super().changeEvent(event)
        if (
            event.type() == QEvent.Type.ActivationChange
            and self.isVisible()
            and not self.isActiveWindow()
        ):
            self.reject()

    @property
    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    def current_hit(self) -> SearchHit | None:
        item = self.results.currentItem()
        return self._hits[self.results.row(item)] if item is not None else None

    @Slot()
    def search_now(self) -> None:
        self._timer.stop()
        text = self.query.text().strip()
        self._hits = self._search(text) if text else []
        self.results.clear()
        for hit in self._hits:
            self._add_row(hit)
        if self._hits:
            self.results.setCurrentRow(0)
            count = len(self._hits)
            self.status.setText(f"{count} result{'s' if count != 1 else ''}")
        elif text:
            self.status.setText(f"No conversation has every word of “{text}”.")
        else:
            self.status.setText(EMPTY_HINT)
        self.results.setVisible(bool(self._hits))
        self._fit_height()

    def _add_row(self, hit: SearchHit) -> None:
        scheme = colors.current()
        label = QLabel(
            f"<div><b>{html.escape(hit.title)}</b>"
            f"<span style='color:{scheme['muted']}'>&nbsp;&nbsp;{where_label(hit)} · "
            f"{when_text(hit.updated_at)}</span></div>"
            f"<div>{highlighted_html(hit.line, hit.spans)}</div>"
        )
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setWordWrap(True)
        label.setContentsMargins(8, 6, 8, 6)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        item = QListWidgetItem()
        # What a screen reader says for the row (the label draws it).
        item.setData(
            Qt.ItemDataRole.AccessibleTextRole, f"{hit.title}, {where_label(hit)}: {hit.line}"
        )
        width = self.results.viewport().width() or (self.width() - 24)
        label.setFixedWidth(max(200, width - 4))
        item.setSizeHint(QSize(width, label.heightForWidth(label.width()) + 2))
        self.results.addItem(item)
        self.results.setItemWidget(item, label)

    def _fit_height(self) -> None:
        rows = sum(self.results.sizeHintForRow(r) for r in range(min(self.results.count(), 6)))
        list_px = rows + 8 if self._hits else 0
        chrome = self.query.sizeHint().height() + self.status.sizeHint().height() + 40
        self.resize(self.width(), min(POPUP_MAX_HEIGHT_PX, chrome + list_px))

    # ------------------------------------------------------------ input

    @Slot()
    def _schedule(self) -> None:
        self._timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.query and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = Qt.Key(event.key())
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                self._move(key)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if self._timer.isActive():
                    self.search_now()  # Enter right after typing: the newest results
                self._open_item(self.results.currentItem())
                return True
        return super().eventFilter(watched, event)

    def _move(self, key: Qt.Key) -> None:
        count = self.results.count()
        if not count:
            return
        steps = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 5}
        step = steps.get(key, -5)
        row = min(max(self.results.currentRow() + step, 0), count - 1)
        self.results.setCurrentRow(row)

    @Slot(QListWidgetItem)
    def _open_item(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        hit = self._hits[self.results.row(item)]
        self.accept()
        self.open_requested.emit(hit.conversation_id, hit.message_id or 0)
