"""The sidebar list of conversations: select, rename (F2 or double-click),
delete (Delete key or context menu)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QMenu, QWidget

from engine.history import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QListWidget):
    conversation_selected = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationList")
        self.setAccessibleName("Conversations")
        self.setAccessibleDescription(
            "Your conversations, newest first. Enter or a click opens one, F2 renames it, "
            "Delete deletes it."
        )
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(self._on_current)
        self.itemChanged.connect(self._on_edited)
        self._filling = False

    def set_conversations(self, conversations: list[Conversation], current: int | None) -> None:
        self._filling = True
        try:
            self.clear()
            for conv in conversations:
                item = QListWidgetItem(conv.title)
                item.setData(ID_ROLE, conv.id)
                item.setToolTip(conv.title)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.addItem(item)
                if conv.id == current:
                    self.setCurrentItem(item)
        finally:
            self._filling = False

    def current_id(self) -> int | None:
        item = self.currentItem()
        return int(item.data(ID_ROLE)) if item is not None else None

    def item_for(self, conversation_id: int) -> QListWidgetItem | None:
        for row in range(self.count()):
            item = self.item(row)
            if item.data(ID_ROLE) == conversation_id:
                return item
        return None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Delete and self.current_id() is not None:
            self.delete_requested.emit(self.current_id())
            return
        super().keyPressEvent(event)

    def _on_current(self, current: QListWidgetItem | None, _previous: object) -> None:
        if not self._filling and current is not None:
            self.conversation_selected.emit(int(current.data(ID_ROLE)))

    def _on_edited(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self.rename_requested.emit(int(item.data(ID_ROLE)), item.text())

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        rename = QAction("Rename", menu)
        rename.triggered.connect(lambda: self.editItem(item))
        delete = QAction("Delete", menu)
        delete.triggered.connect(lambda: self.delete_requested.emit(int(item.data(ID_ROLE))))
        menu.addAction(rename)
        menu.addAction(delete)
        menu.popup(self.viewport().mapToGlobal(pos))
