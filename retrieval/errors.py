"""Typed errors of the retrieval layer.

As in ``engine.errors``: every message is written for the person using the
app (what went wrong, what to do), and the technical cause goes in ``detail``.
"""

from __future__ import annotations

from typing import Literal

# Why a file yielded no text; recorded per file in the manifest.
ParseState = Literal[
    "failed", "encrypted", "no_text", "timeout", "binary", "unreadable", "too_large_memory"
]


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


class SearchBackendUnavailable(RetrievalError):
    """The vector store's library (chromadb) cannot be imported. Not a damaged
    index: the stored vectors are fine and must not be set aside or rebuilt."""


class CollectionNotFound(RetrievalError):
    """No collection has that name."""


class WebSearchError(RetrievalError):
    """A search provider failed (rate limit, timeout, bad answer)."""


class FetchRefused(RetrievalError):
    """A URL the fetcher will not open (scheme, private address, size)."""


class BadExcludePattern(RetrievalError):
    """An exclude pattern that is not valid ``.gitignore`` syntax."""


class ParserUnavailable(RetrievalError):
    """The document parser's worker process cannot start: no file can be
    parsed until that is fixed, so indexing should stop and say so."""


class ParseFailed(RetrievalError):
    """A document could not be turned into text (see ``retrieval.parsing``).

    ``state`` is what the manifest and the Documents page record: "failed",
    "encrypted", "no_text", "timeout", "binary", "unreadable" or
    "too_large_memory". ``message`` is one line naming the file.
    """

    def __init__(self, state: ParseState, message: str, *, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        self.state: ParseState = state


class ChromaServerError(RetrievalError):
    """A Chroma server holding a shared collection failed or refused; the
    message names the server and what to do. Nothing local is lost."""


class ServerUnreachable(ChromaServerError):
    """The server did not answer: down, refused the connection, timed out."""


class ServerDenied(ChromaServerError):
    """The server answered 401 or 403: a missing or wrong access token."""


class ServerCollectionMissing(ChromaServerError):
    """The server has no collection by that name."""


class ServerCollectionMismatch(ChromaServerError):
    """The server's collection was built by another embedding model (or not
    by Footnote), so its vectors cannot be compared with this one's."""
