"""Typed errors of web search, under :class:`retrieval.errors.WebSearchError`
so callers can catch one class for "the web did not help this time"."""

from __future__ import annotations

from retrieval.errors import WebSearchError


class RateLimited(WebSearchError):
    """The search engine is refusing requests for now (HTTP 429/202, captcha)."""


class SearchTimeout(WebSearchError):
    """The search engine did not answer in time."""


class ProviderMisconfigured(WebSearchError):
    """The provider cannot work as configured (bad SearXNG URL, JSON disabled)."""


class PageUnavailable(WebSearchError):
    """A result page could not be read (HTTP error, timeout, not a web page);
    its search snippet stands in for it."""


class LedgerUnavailable(WebSearchError):
    """The privacy ledger cannot be written, so nothing is sent."""


class LedgerDamaged(WebSearchError):
    """The privacy ledger file is damaged beyond reading any entry."""
