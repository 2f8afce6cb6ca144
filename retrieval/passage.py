"""A passage handed to a chat turn: text plus where it came from.

It satisfies ``engine.context.Passage`` structurally (the engine never
imports retrieval): ``text``, ``citation``, ``kind``, ``location`` (a plain
dict, see :class:`~retrieval.locator.Locator`), ``id`` and ``score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrieval.locator import Locator, SourceKind


@dataclass(frozen=True)
class RetrievedPassage:
    text: str
    locator: Locator
    id: str  # stable: content hash + locator (documents) or URL + chunk (web)
    score: float  # higher is better; comparable within one retrieval call
    # Evidence a relevance gate can use (documents only; web passages keep the
    # defaults). Ranks are 1-based among the search's candidates: None when
    # that retriever did not score the passage (dense) or it matched none of
    # the question's terms (lexical).
    dense_rank: int | None = None
    lexical_rank: int | None = None
    # The question's identifiers (--cid, snake_case, 3.11.2, E1101...) that
    # the passage holds exactly, and the share of the question's content
    # words it holds (0..1): absolute, unlike rank or BM25.
    matched_identifiers: tuple[str, ...] = ()
    term_coverage: float = 0.0

    @property
    def citation(self) -> str:
        return self.locator.citation()

    @property
    def kind(self) -> SourceKind:
        return self.locator.kind

    @property
    def location(self) -> dict[str, Any]:
        return self.locator.to_dict()
