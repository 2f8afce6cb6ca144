"""The full-window pages share one header: Back to chat, the page's own
buttons, the title and its introduction."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from app.pages.documents import DocumentsPage
from app.pages.ledger import LedgerPage
from app.pages.models import ModelManagerPage
from app.widgets.page_header import BACK_TEXT
from retrieval.web.ledger import Ledger


def header_of(page: QWidget) -> tuple[list[str], str]:
    buttons = [b.text() for b in page.findChildren(QPushButton) if b.isVisibleTo(page)]
    [title] = [w.text() for w in page.findChildren(QLabel) if w.objectName() == "welcomeTitle"]
    return buttons, title


def test_every_page_has_the_same_header_and_back_returns_to_chat(qtbot, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    pages = {
        "Documents": (DocumentsPage(), "Add Folder…"),
        "Privacy Ledger": (LedgerPage(ledger), "Clear"),
        "Models": (ModelManagerPage([]), "Convert a Hugging Face folder…"),
    }
    for title, (page, action) in pages.items():
        qtbot.addWidget(page)
        buttons, shown = header_of(page)
        assert shown == title
        # Back first, then the page's own actions (its main one last, rightmost).
        assert buttons[0] == BACK_TEXT and action in buttons[1:], (title, buttons)
        back = next(b for b in page.findChildren(QPushButton) if b.text() == BACK_TEXT)
        assert back.objectName() == "linkButton"
        with qtbot.waitSignal(page.back_requested, timeout=1000):  # type: ignore[attr-defined]
            qtbot.mouseClick(back, Qt.MouseButton.LeftButton)
