"""The conversations in the sidebar: list, select, new, rename, delete.

Every store call goes through the banner: a database that cannot be read or
written (a full disk, a file gone read-only) is a sentence above the chat,
never the crash dialog. Showing a conversation's messages is the chat
controller's job (the one being answered shows its answer so far).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Slot

from app.controllers.chat import ChatController
from app.settings import Settings
from app.widgets.banner import Banner
from app.widgets.composer import Composer
from app.widgets.conversation_list import ConversationList
from engine.errors import EngineError
from engine.history import ConversationStore


class ConversationsController(QObject):
    def __init__(
        self,
        *,
        settings: Settings,
        store: ConversationStore,
        chat: ChatController,
        sidebar: ConversationList,
        composer: Composer,
        banner: Banner,
        confirm: Callable[[str, str], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.store = store
        self.chat = chat
        self.sidebar = sidebar
        self.composer = composer
        self.banner = banner
        self._confirm = confirm
        sidebar.conversation_selected.connect(self.show)
        sidebar.rename_requested.connect(self.rename)
        sidebar.delete_requested.connect(self.delete)
        chat.conversation_changed.connect(self.refresh)

    @property
    def current_id(self) -> int | None:
        return self.chat.conversation_id

    @Slot(int)
    def refresh(self, select: int | None = None) -> None:
        """Re-read the list (titles, order) and keep ``select`` current."""
        conversations = self.banner.attempt(self.store.conversations)
        if conversations is None:
            return  # the list on screen stays as it was; the banner says why
        ids = {c.id for c in conversations}
        if select not in ids:
            select = conversations[0].id if conversations else None
        self.sidebar.set_conversations(conversations, select)
        if select != self.current_id:
            self.show(select)

    @Slot(int)
    def show(self, conversation_id: int | None) -> None:
        self.chat.show(conversation_id)
        if conversation_id is None:
            return
        item = self.sidebar.item_for(conversation_id)
        if item is not None and self.sidebar.currentItem() is not item:
            self.sidebar.blockSignals(True)
            self.sidebar.setCurrentItem(item)
            self.sidebar.blockSignals(False)
        self.settings.last_conversation_id = conversation_id

    @Slot()
    def new(self) -> None:
        # Reuse an empty "New chat" instead of piling them up.
        current = self.current_id
        if current is not None and self.banner.attempt(self.store.messages, current) == []:
            self.composer.edit.setFocus()
            return
        conv = self.banner.attempt(self.store.create_conversation)
        if conv is not None:
            self.refresh(select=conv.id)
            self.show(conv.id)
        self.composer.edit.setFocus()

    @Slot(int, str)
    def rename(self, conversation_id: int, title: str) -> None:
        # Update the edited item in place: rebuilding the list from inside its
        # own itemChanged signal would delete the item being edited.
        self.banner.attempt(self.store.rename_conversation, conversation_id, title)
        conv = self.banner.attempt(self.store.get_conversation, conversation_id)
        item = self.sidebar.item_for(conversation_id)
        if item is None:
            return
        # What the database holds (trimmed), or, when it failed, the old title back.
        shown = conv.title if conv is not None else item.toolTip()
        if item.text() != shown:
            self.sidebar.blockSignals(True)
            item.setText(shown)
            item.setToolTip(shown)
            self.sidebar.blockSignals(False)

    @Slot(int)
    def delete(self, conversation_id: int) -> None:
        conv = self.banner.attempt(self.store.get_conversation, conversation_id)
        if conv is None or not self._confirm(
            "Delete conversation?", f"“{conv.title}” will be deleted. This cannot be undone."
        ):
            return
        try:
            self.store.delete_conversation(conversation_id)
        except EngineError as exc:
            self.banner.show_error(exc)
            return  # still there: keep showing it (and let its answer finish)
        self.chat.forget_conversation(conversation_id)
        self.refresh()
