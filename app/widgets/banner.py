"""The one place non-blocking problems are shown: a dismissable bar above the
page, with optional technical details the user can copy (never a traceback
in their face).

A message belongs to where it was raised: the page (and, on the chat page,
the conversation) in view when it was shown. Going elsewhere hides it; coming
back shows it again until it is dismissed. Where is decided one event-loop
turn after the message is raised, so a message raised just before the app
itself switches page (a failed load that opens the Models page) goes with it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAccessible, QAccessibleEvent, QGuiApplication
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
        self.message.setAccessibleName("Message")
        self.details_button = QPushButton("Copy details")
        self.details_button.setObjectName("bannerButton")
        self.details_button.setAccessibleDescription(
            "Copy the message and its technical details, for a bug report"
        )
        self.details_button.clicked.connect(self._copy_details)
        row.addWidget(self.details_button)
        self.close_button = QPushButton("✕")
        self.close_button.setObjectName("bannerClose")
        self.close_button.setToolTip("Dismiss this message")
        self.close_button.setAccessibleName("Dismiss")
        self.close_button.setAccessibleDescription("Close this message")
        self.close_button.setMinimumWidth(30)
        self.close_button.clicked.connect(self.hide)
        row.addWidget(self.close_button)
        outer.addLayout(row)
        self._details = ""
        # Where the message belongs (see the module's docstring).
        self._context: Callable[[], Hashable] = lambda: None
        self._owner: Hashable = None
        self._claimed = False
        self._active = False  # a message is raised and not dismissed
        self.setVisible(False)

    def buttons(self) -> list[QWidget]:
        """Its buttons, in Tab order."""
        return [self.details_button, self.close_button]

    def set_context(self, context: Callable[[], Hashable]) -> None:
        """What "where the user is" means: a key compared for equality."""
        self._context = context

    @Slot()
    def context_changed(self) -> None:
        """The user went to another page or conversation: show the message
        only where it was raised."""
        if self._active and self._claimed:
            self.setVisible(self._context() == self._owner)

    def _claim(self) -> None:
        if self._active and not self._claimed:
            self._owner = self._context()
            self._claimed = True

    def show_message(self, text: str, *, level: str = "error", details: str = "") -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.message.setText(text)
        self._details = details
        self.details_button.setVisible(bool(details))
        self.setAccessibleName("Error" if level == "error" else "Notice")
        self.setAccessibleDescription(text)
        self._active = True
        self._claimed = False
        QTimer.singleShot(0, self._claim)
        self.show()
        # Screen readers announce an alert; a bar appearing is otherwise silent.
        QAccessible.updateAccessibility(QAccessibleEvent(self, QAccessible.Event.Alert))

    def hide(self) -> None:
        """Dismiss the message (the ✕ button; tests call it too)."""
        self._active = False
        self.setVisible(False)

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
