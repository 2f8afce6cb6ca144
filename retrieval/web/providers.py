"""The configured search providers, in the order they are asked.

DuckDuckGo (through ddgs) needs no setup, so it is the default; a SearXNG
instance URL adds a second provider that takes over when DuckDuckGo is rate
limiting or failing (or the first one, for self-hosters who prefer it).
"""

from __future__ import annotations

from typing import Literal

from retrieval.web.ddgs_provider import DdgsProvider
from retrieval.web.results import SearchProvider
from retrieval.web.searxng_provider import SearxngProvider

Preferred = Literal["ddgs", "searxng"]


def make_providers(
    *,
    searxng_url: str | None = None,
    prefer: Preferred = "ddgs",
    ddgs_backend: str = "duckduckgo",
) -> list[SearchProvider]:
    """Raises :class:`~retrieval.web.errors.ProviderMisconfigured` for a
    SearXNG URL that cannot be one."""
    ddgs: SearchProvider = DdgsProvider(ddgs_backend)
    if not (searxng_url and searxng_url.strip()):
        return [ddgs]
    searxng: SearchProvider = SearxngProvider(searxng_url)
    return [searxng, ddgs] if prefer == "searxng" else [ddgs, searxng]
