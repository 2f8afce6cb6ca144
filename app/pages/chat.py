"""The chat page: the conversation, the message box, and the status line under
it with its two one-click actions ("Edit query", "Use my documents").

It only lays them out; the chat controller fills the status line and shows or
hides the actions (``ChatController.attach_grounding``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.chat_view import ChatView
from app.widgets.composer import Composer


class ChatPage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.chat = ChatView()
        self.chat.setAccessibleName("Conversation")
        layout.addWidget(self.chat, 1)

        composer_area = QWidget()
        composer_area.setObjectName("composerArea")
        area_layout = QVBoxLayout(composer_area)
        area_layout.setContentsMargins(24, 8, 24, 14)
        self.composer = Composer()
        area_layout.addWidget(self.composer)
        status_row = QHBoxLayout()
        status_row.setContentsMargins(0, 0, 0, 0)
        self.activity = QLabel()
        self.activity.setObjectName("welcomeHint")
        status_row.addWidget(self.activity)
        # Shown while and after a turn searched the web: search for other words.
        self.edit_query_button = _link_button(
            "Edit query", "Search the web for other words and ask again"
        )
        status_row.addWidget(self.edit_query_button)
        # Shown after Auto held the documents back: ask again with them.
        self.use_documents_button = _link_button(
            "Use my documents", "Ask this question again with passages from your documents"
        )
        status_row.addWidget(self.use_documents_button)
        status_row.addStretch(1)
        area_layout.addLayout(status_row)
        layout.addWidget(composer_area)


def _link_button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("linkButton")
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setToolTip(tip)
    return button
