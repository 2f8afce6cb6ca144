"""Where the user writes: Enter sends, Shift+Enter starts a new line, and the
Send button turns into Stop while an answer is being written. Beside it: the
globe (web search Off/Auto/Always) and the documents the conversation uses."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QPushButton, QWidget

from app.widgets.collections_chooser import CollectionsChooser
from app.widgets.web_toggle import WebToggle

MIN_LINES = 1
MAX_LINES = 8


class MessageEdit(QPlainTextEdit):
    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        is_enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if is_enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QFrame):
    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.setSpacing(8)

        self.edit = MessageEdit()
        self.edit.setObjectName("composerEdit")
        self.edit.setPlaceholderText("Ask anything…   (Enter to send, Shift+Enter for a new line)")
        self.edit.setFrameShape(QFrame.Shape.NoFrame)
        self.edit.setTabChangesFocus(True)
        self.edit.setAccessibleName("Message")
        self.edit.setAccessibleDescription(
            "Your question. Enter sends it, Shift+Enter starts a new line."
        )
        # The box's frame shows where typing goes (style.qss: #composer[focused]).
        self.edit.installEventFilter(self)
        self.edit.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.edit.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.edit.submitted.connect(self._on_submit)
        self.edit.textChanged.connect(self._fit_height)
        layout.addWidget(self.edit, 1)

        self.collections_chooser = CollectionsChooser()
        layout.addWidget(self.collections_chooser, 0, Qt.AlignmentFlag.AlignBottom)
        self.web_toggle = WebToggle()
        layout.addWidget(self.web_toggle, 0, Qt.AlignmentFlag.AlignBottom)

        self.button = QPushButton("Send")
        self.button.setObjectName("sendButton")
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.clicked.connect(self._on_button)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignBottom)
        # Tab order: the message, the documents, web search, Send.
        QWidget.setTabOrder(self.edit, self.collections_chooser)
        QWidget.setTabOrder(self.collections_chooser, self.web_toggle)
        QWidget.setTabOrder(self.web_toggle, self.button)

        self._generating = False
        self._fit_height()
        self._update_button()

    @property
    def generating(self) -> bool:
        return self._generating

    def set_generating(self, generating: bool) -> None:
        self._generating = generating
        self._update_button()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def _on_submit(self) -> None:
        if not self._generating:
            self._on_button()

    def _on_button(self) -> None:
        if self._generating:
            self.stop_requested.emit()
            return
        text = self.text().strip()
        if text:
            self.edit.clear()
            self.send_requested.emit(text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            self.setProperty("focused", event.type() == QEvent.Type.FocusIn)
            self.style().unpolish(self)
            self.style().polish(self)
        return super().eventFilter(watched, event)

    def _update_button(self) -> None:
        self.button.setText("Stop" if self._generating else "Send")
        self.button.setAccessibleName("Stop" if self._generating else "Send")
        self.button.setAccessibleDescription(
            "Stop the answer being written (Esc)" if self._generating else "Send your message"
        )
        self.button.setProperty("stop", self._generating)
        self.button.setToolTip("Stop the answer (Esc)" if self._generating else "Send (Enter)")
        # Re-polish so the stylesheet's [stop="true"] rule applies.
        self.button.style().unpolish(self.button)
        self.button.style().polish(self.button)

    def _fit_height(self) -> None:
        metrics = self.edit.fontMetrics()
        count = self.edit.document().lineCount()
        lines = max(MIN_LINES, min(MAX_LINES, count))
        # A scroll bar only once the text outgrows the box.
        self.edit.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded
            if count > MAX_LINES
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        margins = self.edit.contentsMargins()
        height = lines * metrics.lineSpacing() + 2 * int(self.edit.document().documentMargin())
        self.edit.setFixedHeight(height + margins.top() + margins.bottom())
