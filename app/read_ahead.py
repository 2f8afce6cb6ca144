"""Ready before Enter: while the user types, the engine finds the question's
sources and reads them into llama.cpp's KV cache, so the first word comes
seconds after Enter instead of after the sources are read (~5 s per 100
tokens of sources on a 2-core laptop; ``ChatSession.read_ahead``).

Typing is debounced (``DEBOUNCE_MS`` after the last keystroke), the next
keystroke or Enter cancels a read-ahead still running (the engine thread is
free for the turn within one prompt batch), and only the user's documents
are searched: web search waits for Enter, so nothing leaves the computer
while a question is being written. Nothing here runs on the GUI thread but
the timer and building the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot

from engine.turn import SamplingParams, TurnRequest

if TYPE_CHECKING:
    from app.chat_controller import ChatController
    from app.composer import Composer
    from app.engine_worker import EngineController
    from app.grounding_controller import GroundingController
    from app.models_controller import ModelsController
    from app.settings import Settings
    from engine.history import ConversationStore

# A pause in typing this long starts a read-ahead. Shorter wastes work on
# words still changing; longer leaves less of the typing time to use.
DEBOUNCE_MS = 600
# Fewer words than this say too little to search for.
MIN_WORDS = 3


class ReadAhead(QObject):
    def __init__(
        self,
        *,
        composer: Composer,
        engine: EngineController,
        chat: ChatController,
        grounding: GroundingController,
        models: ModelsController,
        store: ConversationStore,
        settings: Settings,
        debounce_ms: int = DEBOUNCE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._composer = composer
        self._engine = engine
        self._chat = chat
        self._grounding = grounding
        self._models = models
        self._store = store
        self._settings = settings
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._start)
        self._last_text = ""
        composer.edit.textChanged.connect(self._typed)
        composer.send_requested.connect(self._sent)

    @Slot()
    def _typed(self) -> None:
        if self._composer.text().strip() == self._last_text:
            return  # e.g. the composer cleared after sending
        self._engine.cancel_read_ahead()
        self._timer.start()

    @Slot(str)
    def _sent(self, _text: str) -> None:
        self._timer.stop()
        self._last_text = ""

    @Slot()
    def _start(self) -> None:
        text = self._composer.text().strip()
        if (
            len(text.split()) < MIN_WORDS
            or text == self._last_text
            or self._chat.generating
            or not self._models.has_model
        ):
            return
        source = self._grounding.local_source()
        if source is None:
            return
        conversation = self._chat.conversation_id
        stored = self._store.messages(conversation) if conversation is not None else []
        request = TurnRequest(
            system_prompt=self._settings.system_prompt,
            history=[m.as_earlier_message() for m in stored],
            user_message=text,
            sampling=SamplingParams(temperature=self._settings.temperature),
        )
        self._last_text = text
        self._engine.read_ahead(request, source, self._grounding.budget())
