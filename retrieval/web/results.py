"""What a search provider returns, and the Protocol every provider satisfies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# DuckDuckGo's and SearXNG's three levels; each provider maps them to its own.
SafeSearch = Literal["off", "moderate", "strict"]
# "wt-wt" is DuckDuckGo's "no region"; other values look like "us-en", "de-de".
NO_REGION = "wt-wt"


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str  # the engine's own summary; stands in when the page cannot be read


class SearchProvider(Protocol):
    """A web search engine. Implementations raise :class:`~retrieval.web.errors.
    RateLimited`, :class:`~retrieval.web.errors.SearchTimeout` or another
    :class:`~retrieval.errors.WebSearchError`; an empty list means the engine
    really found nothing."""

    @property
    def name(self) -> str:
        """Short human name for messages and the privacy ledger ("DuckDuckGo")."""
        ...

    def search(
        self,
        query: str,
        *,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float,
    ) -> list[SearchResult]: ...
