"""What the chat controller keeps about a turn (the one in flight, the last
answer that can be asked again) and the words it shows for a turn's end.
Plain data and text, no Qt."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.context import ContextProgress, ContextRequest, ContextSource, Passage
from engine.events import Finished, ReadingPrompt
from engine.history import INTERRUPTED, StoredMessage

if TYPE_CHECKING:
    from app.wiring.turn_grounding import TurnGrounding

DRAFT_SAVE_S = 1.0  # how often the answer being written is saved

# Footers of answers read back from the conversation database.
STORED_FOOTERS = {
    "cancelled": "Stopped",
    "length": "Cut short",
    "failed": "Interrupted: the model server failed before the answer was finished",
    INTERRUPTED: "Interrupted: Footnote closed before this answer was finished",
}


@dataclass
class TurnInFlight:
    """The turn in flight. ``conversation`` becomes None when its
    conversation is deleted: its last tokens and its end go nowhere."""

    id: int
    conversation: int | None
    user_message: StoredMessage
    pieces: list[str] = field(default_factory=list)  # joined only when saved or re-shown
    draft: StoredMessage | None = None  # its saved copy, rewritten every DRAFT_SAVE_S
    draft_saved_at: float = -math.inf
    grounding: TurnGrounding | None = None  # its context source, when it has one
    # From the Sources event: shown while the answer is written, also when its
    # conversation is opened again mid-answer (saved from Finished.sources).
    sources: tuple[Passage, ...] = ()
    # What the prompt being read holds ("Reading 5 sources…"), which
    # PromptProgress adds a percentage to.
    reading: ReadingPrompt = field(default_factory=ReadingPrompt)
    stopping: bool = False  # Stop was pressed: the status line says so until the end
    # Why the documents' Auto rule held them back (SourcesDeclined), if it did.
    documents_declined: str = ""
    # A regenerated answer: the version shown before, shown again if this
    # turn ends without an answer (stopped at once, failed).
    replaces: int | None = None


@dataclass(frozen=True)
class AskAgain:
    """The last answer, when it can be asked again grounded otherwise: it
    searched the web ("Edit query" searches for other words), or Auto held
    the documents back ("Use my documents" sends them)."""

    conversation: int
    question: str
    user_message_id: int
    answer_id: int | None
    web_query: str = ""
    documents_declined: str = ""


def stored_sources(passages: Sequence[Passage]) -> ContextSource:
    """A context source that gives back the sources an answer was given."""

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:  # noqa: ARG001
        yield from ()
        return list(passages)

    return source


def declined_text(reason: str) -> str:
    """The status line when Auto held the documents back."""
    return f"Not using your documents: {reason}"


def answer_footer(event: Finished) -> str:
    parts = []
    if event.reason == "cancelled":
        parts.append("Stopped")
    elif event.reason == "length":
        parts.append("Cut short")
    elif event.reason == "failed":
        parts.append("Interrupted: the model server failed")
    if event.stats.generated_tokens:
        parts.append(
            f"{event.stats.generated_tokens} tokens · {event.stats.tokens_per_second:.1f} tok/s"
        )
    return "  ·  ".join(parts)
