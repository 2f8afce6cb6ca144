"""The one place non-blocking problems are shown: a dismissable bar above the
chat, with optional technical details the user can copy (never a traceback
in their face)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import EngineError

P = ParamSpec("P")
T = TypeVar("T")


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

    def show_error(self, error: EngineError) -> None:
        """An engine error: its sentence, with the technical cause behind "Copy details"."""
        self.show_message(str(error), details=error.detail)

    def attempt(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run ``method`` (a store write, a file operation); if it raises one of
        the engine's typed errors, show it here and return None instead of
        letting it reach the crash dialog."""
        try:
            return method(*args, **kwargs)
        except EngineError as exc:
            self.show_error(exc)
            return None

    def text(self) -> str:
        return self.message.text() if self.isVisible() else ""

    def _copy_details(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.message.text()}\n\n{self._details}")
