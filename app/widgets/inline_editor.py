"""A question edited in place, inside its bubble: the text, Cancel and Send.

Enter sends (as in the message box), Shift+Enter adds a line, Escape
cancels; Escape is also the window's Stop shortcut, so the editor claims it
while it has the focus.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

MIN_EDITOR_LINES = 3
MAX_EDITOR_LINES = 8
EDITOR_WIDTH_PX = 520  # when the bubble has room: a question is easier to edit wide


class InlineEditor(QWidget):
    submitted = Signal(str)  # the new text, stripped, never empty
    cancelled = Signal()

    def __init__(self, text: str, available_px: int, parent: QWidget | None = None) -> None:
        """``available_px``: the widest the editor may be (the bubble's room)."""
        super().__init__(parent)
        self.setObjectName("editHolder")
        self.edit = QPlainTextEdit(text)
        self.edit.setObjectName("inlineEditor")
        self.edit.setAccessibleName("Edit your question")
        self.edit.setAccessibleDescription(
            "Enter sends it as a new version, Shift+Enter adds a line, Escape cancels"
        )
        self.edit.setTabChangesFocus(True)
        lines = max(MIN_EDITOR_LINES, min(MAX_EDITOR_LINES, text.count("\n") + 2))
        self.edit.setFixedHeight(self.edit.fontMetrics().lineSpacing() * lines + 16)
        self.edit.setMinimumWidth(max(min(EDITOR_WIDTH_PX, available_px), 200))
        self.edit.installEventFilter(self)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Keep the question as it was (Escape)")
        self.cancel_button.clicked.connect(self.cancelled)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primaryButton")
        self.send_button.setToolTip("Send as a new version; the earlier one stays (Enter)")
        self.send_button.clicked.connect(self.submit)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addLayout(row)

    def start(self) -> None:
        self.edit.setFocus()
        self.edit.moveCursor(QTextCursor.MoveOperation.End)

    def set_send_enabled(self, enabled: bool) -> None:
        """Off while an answer is being written (one turn at a time)."""
        self.send_button.setEnabled(enabled)

    def submit(self) -> None:
        text = self.edit.toPlainText().strip()
        if text and self.send_button.isEnabled():
            self.submitted.emit(text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and isinstance(event, QKeyEvent):
            if event.type() == QEvent.Type.ShortcutOverride and event.key() == Qt.Key.Key_Escape:
                event.accept()  # ours, not the window's Stop
                return True
            if event.type() == QEvent.Type.KeyPress:
                if event.key() == Qt.Key.Key_Escape:
                    self.cancelled.emit()
                    return True
                enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                    self.submit()
                    return True
        return super().eventFilter(watched, event)
