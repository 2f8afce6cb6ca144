"""The one place non-blocking problems are shown: a dismissable bar above the
chat, with optional technical details the user can copy (never a traceback
in their face)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class Banner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(14, 8, 8, 8)
        row = QHBoxLayout()
        self.message = QLabel()
        self.message.setObjectName("bannerText")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.message, 1)
        self.details_button = QPushButton("Copy details")
        self.details_button.setObjectName("bannerButton")
        self.details_button.clicked.connect(self._copy_details)
        row.addWidget(self.details_button)
        close = QPushButton("✕")
        close.setObjectName("bannerClose")
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        row.addWidget(close)
        outer.addLayout(row)
        self._details = ""
        self.hide()

    def show_message(self, text: str, *, level: str = "error", details: str = "") -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.message.setText(text)
        self._details = details
        self.details_button.setVisible(bool(details))
        self.show()

    def text(self) -> str:
        return self.message.text() if self.isVisible() else ""

    def _copy_details(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.message.text()}\n\n{self._details}")
