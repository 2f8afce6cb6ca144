"""Ready before Enter: while the user types, the engine finds the question's
sources and reads them into llama.cpp's KV cache, so the first word comes
seconds after Enter instead of after the sources are read (~5 s per 100
tokens of sources on a 2-core laptop; ``ChatSession.read_ahead``).

A read-ahead starts when typing pauses (``PAUSE_MS``), and while it goes on
at most every ``EVERY_MS`` at the end of a word: people rarely pause long
while writing a question, and the passages found for most of it are usually
those of all of it. A newer read-ahead stops the one running at the end of
its prompt batch (about a second of reading), never in the middle: what was
read stays cached, and the newer one searches again and reads on where the
passages are the same. The engine runs only the newest one waiting, and
Enter stops it at once (what it read so far stays cached). Only the user's
documents are searched: web search waits for Enter, so nothing leaves the
computer while a question is being written. Nothing here runs on the GUI
thread but the timers and building the request.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot

from engine.turn import SamplingParams, TurnRequest

if TYPE_CHECKING:
    from app.controllers.chat import ChatController
    from app.controllers.grounding import GroundingController
    from app.controllers.models import ModelsController
    from app.settings import Settings
    from app.widgets.composer import Composer
    from app.workers.engine import EngineController
    from engine.history import ConversationStore

log = logging.getLogger(__name__)

# A pause in typing this long starts a read-ahead; while typing goes on, one
# starts at the end of a word at most this often.
PAUSE_MS = 400
EVERY_MS = 1500
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
        pause_ms: int = PAUSE_MS,
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
        self._timer.setInterval(pause_ms)
        self._timer.timeout.connect(self._start)
        self._last_text = ""
        self._last_start = 0.0
        self.enabled = True  # bench.ui_typing compares with it off
        composer.edit.textChanged.connect(self._typed)
        composer.send_requested.connect(self._sent)

    @Slot()
    def _typed(self) -> None:
        text = self._composer.text()
        if text.strip() == self._last_text:
            return  # e.g. the composer cleared after sending
        self._timer.start()
        word_ended = text[-1:].isspace() or text[-1:] in ",.;:?!"
        if word_ended and time.monotonic() - self._last_start >= EVERY_MS / 1000:
            self._start()

    @Slot(str)
    def _sent(self, _text: str) -> None:
        self._timer.stop()
        self._last_text = ""

    @Slot()
    def _start(self) -> None:
        text = self._composer.text().strip()
        if (
            not self.enabled
            or len(text.split()) < MIN_WORDS
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
        self._last_start = time.monotonic()
        log.debug("reading ahead for %d words", len(text.split()))
        self._engine.read_ahead(request, source, self._grounding.budget())
