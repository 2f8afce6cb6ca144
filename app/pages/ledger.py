"""View → Privacy Ledger: every search query and web address that left this
computer, newest first, with the time (``retrieval.web.ledger``).

The ledger is a small SQLite file written before each request; reading its
newest :data:`SHOWN_ENTRIES` rows takes about a millisecond, so the page
reads it on the GUI thread, when it is shown and after each web turn.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from urllib.parse import urlsplit

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets.page_header import add_page_header
from retrieval.web.errors import LedgerDamaged
from retrieval.web.ledger import Ledger, LedgerEntry

log = logging.getLogger(__name__)

SHOWN_ENTRIES = 1000
EMPTY_TEXT = "Nothing has left this computer."
KIND_LABELS = {"query": "Search", "fetch": "Page", "model": "Model server"}


class LedgerPage(QWidget):
    back_requested = Signal()

    def __init__(
        self,
        ledger: Ledger,
        *,
        confirm: Callable[[str, str], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ledgerPage")
        self.ledger = ledger
        self._confirm = confirm
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 20, 32, 24)
        layout.setSpacing(10)

        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("secondaryButton")
        self.clear_button.setToolTip("Forget this list (what was sent cannot be unsent)")
        self.clear_button.clicked.connect(self.clear)
        add_page_header(
            layout,
            "Privacy Ledger",
            self.back_requested,
            actions=[self.clear_button],
            intro="Every search query and web address Footnote sent from this computer, "
            "newest first. Each is written here before it is sent. Your documents and "
            "conversations never leave; web search is off unless you turn it on with the globe.",
        )
        self.damage_note = QLabel()  # shown when part of the ledger file is damaged
        self.damage_note.setObjectName("modelDetail")
        self.damage_note.setWordWrap(True)
        self.damage_note.hide()
        layout.addWidget(self.damage_note)

        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("documentsEmpty")  # the Documents page's empty look
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty, 1)

        self.table = QTableWidget(0, 4)
        self.table.setObjectName("filesTable")
        self.table.setAccessibleName("What left this computer")
        self.table.setHorizontalHeaderLabels(["Time", "What", "Sent to", "Query or address"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(28)
        view = self.table.horizontalHeader()
        view.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        view.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 160)
        self.table.setColumnWidth(1, 70)
        self.table.setColumnWidth(2, 220)
        layout.addWidget(self.table, 1)
        self.refresh()

    def refresh(self) -> None:
        unreadable = 0
        try:
            read = self.ledger.read(SHOWN_ENTRIES)
        except (LedgerDamaged, sqlite3.Error, OSError) as exc:
            log.warning("cannot read the privacy ledger %s: %s", self.ledger.path, exc)
            entries: list[LedgerEntry] = []
            self.empty.setText(
                exc.message
                if isinstance(exc, LedgerDamaged)
                else f"The privacy ledger could not be read: {exc}"
            )
            unreadable = 1
        else:
            entries, unreadable = read.entries, read.unreadable
            self.empty.setText(EMPTY_TEXT)
        self.damage_note.setText(
            f"The ledger file is damaged: {unreadable} "
            f"{'entry' if unreadable == 1 else 'entries'} could not be read; the others are "
            "listed below."
        )
        self.damage_note.setVisible(bool(entries) and unreadable > 0)
        self._fill(entries)
        self.clear_button.setEnabled(bool(entries) or unreadable > 0)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """What the table shows (for tests)."""

        def text(row: int, col: int) -> str:
            item = self.table.item(row, col)
            return item.text() if item is not None else ""

        return [
            (text(r, 0), text(r, 1), text(r, 2), text(r, 3)) for r in range(self.table.rowCount())
        ]

    def clear(self) -> None:
        if self._confirm is not None and not self._confirm(
            "Clear the privacy ledger?",
            "The list of what was sent will be forgotten. What was sent cannot be unsent.",
        ):
            return
        try:
            self.ledger.clear()
        except (sqlite3.Error, OSError) as exc:
            log.warning("cannot clear the privacy ledger: %s", exc)
        self.refresh()

    def _fill(self, entries: list[LedgerEntry]) -> None:
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            when = entry.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            # A page request goes to the page's own server: name it, not "fetch".
            to = (urlsplit(entry.text).hostname or entry.text) if entry.kind == "fetch" else None
            cells = (
                when,
                KIND_LABELS.get(entry.kind, entry.kind),
                to or entry.provider,
                entry.text,
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        self.table.setVisible(bool(entries))
        self.empty.setVisible(not entries)
        self.clear_button.setEnabled(bool(entries))
