"""Typed errors of the retrieval layer.

As in ``engine.errors``: every message is written for the person using the
app (what went wrong, what to do), and the technical cause goes in ``detail``.
"""

from __future__ import annotations


class RetrievalError(Exception):
    """Base class for everything the retrieval layer raises on purpose."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class EmbedderUnavailable(RetrievalError):
    """The embedding model's files are missing, damaged or cannot be loaded."""


class IndexUnavailable(RetrievalError):
    """The document index (chromadb / lexical / manifest) cannot be read or written."""


class CollectionNotFound(RetrievalError):
    """No collection has that name."""


class WebSearchError(RetrievalError):
    """A search provider failed (rate limit, timeout, bad answer)."""


class FetchRefused(RetrievalError):
    """A URL the fetcher will not open (scheme, private address, size)."""
