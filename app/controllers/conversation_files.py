"""File → Export… and File → Import…: a conversation to a Markdown or JSON
file, and a JSON export back into the list (the work is in ``engine.export``;
a conversation is kilobytes, written in milliseconds, so on the GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from app.controllers.conversations import ConversationsController
from app.widgets.banner import Banner
from engine.errors import EngineError
from engine.export import (
    ExportFormat,
    export_text,
    import_conversation,
    read_conversation_file,
    suggested_file_name,
    write_file,
)
from engine.history import ConversationStore

MARKDOWN_FILTER = "Markdown, with footnotes (*.md)"
JSON_FILTER = "JSON, everything, to import again (*.json)"
NOTHING_TO_EXPORT_TEXT = "Open a conversation to export first."


class ConversationFiles:
    def __init__(
        self,
        *,
        parent: QWidget,
        store: ConversationStore,
        conversations: ConversationsController,
        banner: Banner,
        start_folder: Callable[[], Path],
    ) -> None:
        self.parent = parent
        self.store = store
        self.conversations = conversations
        self.banner = banner
        self._start_folder = start_folder

    def export_current(self, target: Path | None = None) -> Path | None:
        """Export the conversation shown; ``target`` None asks where (the
        file type chosen in the dialog, or the name's extension, decides
        the format). Returns the file written."""
        conversation_id = self.conversations.current_id
        conversation = (
            self.banner.attempt(self.store.get_conversation, conversation_id)
            if conversation_id is not None
            else None
        )
        if conversation is None or not self.banner.attempt(self.store.messages, conversation.id):
            self.banner.show_message(NOTHING_TO_EXPORT_TEXT, level="info")
            return None
        if target is None:
            chosen, chosen_filter = QFileDialog.getSaveFileName(
                self.parent,
                "Export conversation",
                str(self._start_folder() / suggested_file_name(conversation.title, "md")),
                f"{MARKDOWN_FILTER};;{JSON_FILTER}",
            )
            if not chosen:
                return None
            target = Path(chosen)
            if not target.suffix:
                target = target.with_suffix(".json" if chosen_filter == JSON_FILTER else ".md")
        fmt: ExportFormat = "json" if target.suffix.lower() == ".json" else "md"
        text = self.banner.attempt(export_text, self.store, conversation.id, fmt)
        if text is None:
            return None
        try:
            write_file(target, text)
        except EngineError as exc:
            self.banner.show_error(exc)
            return None
        self.banner.show_message(f"Exported “{conversation.title}” to {target}", level="info")
        return target

    def import_file(self, source: Path | None = None) -> int | None:
        """Add a conversation exported as JSON and show it; ``source`` None
        asks which file. Returns the new conversation's id."""
        if source is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self.parent, "Import a conversation", str(self._start_folder()), JSON_FILTER
            )
            if not chosen:
                return None
            source = Path(chosen)
        data = self.banner.attempt(read_conversation_file, source)
        if data is None:
            return None
        conversation = self.banner.attempt(import_conversation, self.store, data)
        if conversation is None:
            return None
        self.conversations.refresh(select=conversation.id)
        self.conversations.show(conversation.id)
        self.banner.show_message(f"Imported “{conversation.title}”", level="info")
        return conversation.id
