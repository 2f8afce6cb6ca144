"""The configured search providers, in the order they are asked.

DuckDuckGo (through ddgs) needs no setup, so it is always there. A SearXNG
instance URL (Settings → Web search, ``--searxng``) is the user's own choice of
engine, often self-hosted, so it is asked first and DuckDuckGo becomes the
fallback for when it is down or rate limiting (``ResilientSearch`` moves on).
"""

from __future__ import annotations

from retrieval.web.ddgs_provider import DdgsProvider
from retrieval.web.results import SearchProvider
from retrieval.web.searxng_provider import SearxngProvider


def configured_providers(searxng_url: str = "") -> list[SearchProvider]:
    """SearXNG first when a URL is set, then DuckDuckGo. Raises
    :class:`~retrieval.web.errors.ProviderMisconfigured` for a SearXNG URL
    that cannot be one."""
    providers: list[SearchProvider] = []
    if searxng_url.strip():
        providers.append(SearxngProvider(searxng_url))
    providers.append(DdgsProvider())
    return providers
