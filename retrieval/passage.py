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

    @property
    def citation(self) -> str:
        return self.locator.citation()

    @property
    def kind(self) -> SourceKind:
        return self.locator.kind

    @property
    def location(self) -> dict[str, Any]:
        return self.locator.to_dict()
