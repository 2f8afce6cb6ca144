"""What an answer may cite: the :class:`Passage` protocol and its concrete form.

Its own module because both the turn's events (``engine.events``) and the
context seam (``engine.context``) speak of passages, and the context seam
speaks of events: with passages here, neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SourceKind = Literal["document", "web"]


class Passage(Protocol):
    """A piece of text the answer may cite."""

    @property
    def text(self) -> str: ...

    @property
    def citation(self) -> str:
        """Where it comes from, for people: "report.pdf, p. 3", a page title + URL."""
        ...

    @property
    def kind(self) -> SourceKind:
        """ "document" (the user's files) or "web" (a fetched page: untrusted)."""
        ...

    @property
    def location(self) -> Mapping[str, Any]:
        """Where it comes from, for machines: path/page/heading_path/line_start/
        line_end for documents, url/title for web pages (JSON-serializable)."""
        ...

    @property
    def id(self) -> str:
        """Stable identity: the same passage found twice has the same id."""
        ...

    @property
    def score(self) -> float:
        """Relevance, higher is better. The planner keeps the best ones when the
        prompt is short of room, so scores of documents and web pages should be
        on one scale (e.g. the same embedding's cosine similarity)."""
        ...


@dataclass(frozen=True)
class SourcePassage:
    """A concrete :class:`Passage`: what the engine makes when it shortens a
    passage to fit, and what the history gives back for a stored answer."""

    text: str
    citation: str
    kind: SourceKind
    location: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    score: float = 0.0

    @classmethod
    def of(cls, passage: Passage, *, text: str | None = None) -> SourcePassage:
        return cls(
            text=passage.text if text is None else text,
            citation=passage.citation,
            kind=passage.kind,
            location=dict(passage.location),
            id=passage.id,
            score=passage.score,
        )
