"""Events a chat turn yields, in order: zero or more Status/Notice/Sources/
PromptProgress, then Tokens, then exactly one Finished or Failed.

Plain frozen dataclasses so the domain is testable without Qt; the app's worker
re-emits them as Qt signals unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.context import Passage, SourceKind
from engine.errors import EngineError

FinishReason = Literal["stop", "cancelled", "length"]


@dataclass(frozen=True)
class Status:
    """What the turn is doing now ("Searching…", "Reading the prompt…")."""

    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the answer."""

    text: str


@dataclass(frozen=True)
class SourcesDeclined:
    """The context source chose not to use sources of this kind for this turn
    (the question needs none, or the search found no evidence), so the window
    can say so and offer to use them anyway. ``reason`` is for people."""

    kind: SourceKind
    reason: str


@dataclass(frozen=True)
class Sources:
    """The passages given to the model, numbered from 1 in this order (after
    the budget planner's trimming: exactly what the prompt holds)."""

    passages: Sequence[Passage]


@dataclass(frozen=True)
class PromptProgress:
    """Prompt evaluation progress, for long prompts."""

    done_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Token:
    """A piece of answer text (one or more tokens' worth of whole characters)."""

    text: str


@dataclass(frozen=True)
class TurnStats:
    prompt_tokens: int
    # Tokens llama.cpp kept from the previous turn (KV cache prefix reuse).
    reused_prompt_tokens: int
    evaluated_prompt_tokens: int
    generated_tokens: int
    prompt_seconds: float
    generation_seconds: float

    @property
    def tokens_per_second(self) -> float:
        if self.generation_seconds <= 0:
            return 0.0
        return self.generated_tokens / self.generation_seconds


@dataclass(frozen=True)
class Finished:
    text: str
    reason: FinishReason
    stats: TurnStats
    # The user message exactly as the model saw it (with any sources), so the
    # next turn can re-render it byte for byte and reuse the KV cache.
    user_content_as_sent: str = ""
    notes: tuple[str, ...] = field(default=())
    # The passages the model was given, numbered [1], [2], … in this order (the
    # same as the turn's Sources event): store them with the answer.
    sources: tuple[Passage, ...] = field(default=())
    # The prompt's tokens as llama.cpp read them: for checking what the model
    # saw (``ask --show-control-tokens``, the hostile-input tests).
    prompt_tokens: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Failed:
    error: EngineError


TurnEvent = Status | Notice | SourcesDeclined | Sources | PromptProgress | Token | Finished | Failed
