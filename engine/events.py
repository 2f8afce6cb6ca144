"""Events a chat turn yields, in order: zero or more progress events, Notices,
SourcesDeclined, Sources and PromptProgress, then Tokens, then exactly one
Finished or Failed.

Plain frozen dataclasses so the domain is testable without Qt; the app's worker
re-emits them as Qt signals unchanged. Progress is typed (what is happening,
with its facts: the query searched, the number of sources read) and each event
has its one wording for people in ``text``: the window and the CLI react to the
event's type and show its ``text``, and nothing matches on the wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import EngineError
from engine.passages import Passage, SourceKind

# "failed": the model (a server) failed mid-answer; only in Failed.partial.
FinishReason = Literal["stop", "cancelled", "length", "failed"]


# ---------------------------------------------------------------- progress


@dataclass(frozen=True)
class Status:
    """Progress in words of a context source's own (one the engine has no
    type for); the app's sources use the typed events below."""

    text: str


@dataclass(frozen=True)
class LookingForSources:
    """The turn asks its context source for passages."""

    @property
    def text(self) -> str:
        return "Looking for sources…"


@dataclass(frozen=True)
class SearchingDocuments:
    """The user's document collections are being searched."""

    @property
    def text(self) -> str:
        return "Looking in your documents…"


@dataclass(frozen=True)
class WritingSearchQuery:
    """The model writes the web search query."""

    @property
    def text(self) -> str:
        return "Writing a search query…"


@dataclass(frozen=True)
class SearchingWeb:
    """A search engine is asked for ``query`` (the query is known from here on:
    the window offers to edit it)."""

    query: str
    provider: str  # human name, e.g. "DuckDuckGo"

    @property
    def text(self) -> str:
        return f"Searching the web for “{self.query}” ({self.provider})…"


@dataclass(frozen=True)
class ReadingWebPages:
    """Result pages fetched so far."""

    done: int
    total: int

    @property
    def text(self) -> str:
        return f"Reading web pages… {self.done} of {self.total}"


@dataclass(frozen=True)
class ChoosingPassages:
    """The fetched pages' text is being ranked against the question."""

    pages: int

    @property
    def text(self) -> str:
        return f"Choosing passages from {self.pages} web pages…"


@dataclass(frozen=True)
class ReadingPrompt:
    """The model reads the prompt with ``sources`` passages in it (its
    PromptProgress events follow)."""

    sources: int = 0

    @property
    def text(self) -> str:
        count = self.sources
        if not count:
            return "Reading the prompt…"
        return f"Reading {count} source{'s' if count > 1 else ''}…"


@dataclass(frozen=True)
class Writing:
    """The answer's tokens follow."""

    @property
    def text(self) -> str:
        return "Writing…"


Progress = (
    Status
    | LookingForSources
    | SearchingDocuments
    | WritingSearchQuery
    | SearchingWeb
    | ReadingWebPages
    | ChoosingPassages
    | ReadingPrompt
    | Writing
)
"""What the turn is doing now, for the status line (``event.text``)."""


# ---------------------------------------------------------------- notices


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the answer."""

    text: str


@dataclass(frozen=True)
class SearchRateLimited(Notice):
    """A search engine is limiting requests."""

    retry_in_s: float | None = None  # None: not retrying that engine this turn


@dataclass(frozen=True)
class SearchFallback(Notice):
    """Another search engine was asked instead."""

    provider: str = ""


@dataclass(frozen=True)
class SearchFailed(Notice):
    """No search engine answered: the answer comes from documents or the model alone."""


@dataclass(frozen=True)
class NoSearchResults(Notice):
    """The search found nothing."""


@dataclass(frozen=True)
class PagesUnread(Notice):
    """Some result pages could not be read; their snippets stood in."""

    reasons: tuple[tuple[str, str], ...] = ()  # (url, reason)


@dataclass(frozen=True)
class SourcesDeclined:
    """The context source chose not to use sources of this kind for this turn
    (the question needs none, or the search found no evidence), so the window
    can say so and offer to use them anyway. ``reason`` is for people."""

    kind: SourceKind
    reason: str


# ---------------------------------------------------------------- the turn


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
    # The user message exactly as the model saw it (the question with its
    # numbered sources): what the sources below and the question render to.
    user_content_as_sent: str = ""
    notes: tuple[str, ...] = field(default=())
    # The passages the model was given, numbered [1], [2], … in this order (the
    # same as the turn's Sources event), exactly as sent: store them with the
    # question, and the next turn renders the same bytes and reuses the KV cache.
    sources: tuple[Passage, ...] = field(default=())
    # The prompt's tokens as llama.cpp read them: for checking what the model
    # saw (``ask --show-control-tokens``, the hostile-input tests).
    prompt_tokens: tuple[int, ...] = field(default=(), repr=False)
    # The question as the user wrote it (TurnRequest.user_message).
    question: str = ""


@dataclass(frozen=True)
class Failed:
    error: EngineError
    # What was written before the failure (a server's stream dropped
    # mid-answer), with reason "failed"; None when nothing was.
    partial: Finished | None = None


TurnEvent = (
    Progress | Notice | SourcesDeclined | Sources | PromptProgress | Token | Finished | Failed
)
