"""The document library and the embedding model, opened the same way by the
window and the command line (no Qt).

The embedding model is all-MiniLM-L6-v2 from the installed package; set
``FOOTNOTE_EMBEDDING_MODEL`` to a sentence-transformers folder to use another
(collections built by the previous model are rebuilt on their next index).

Collections on a Chroma server: each server's access token comes from the
system keyring, else ``FOOTNOTE_CHROMA_TOKEN`` (``app/wiring/chroma_tokens.py``;
a local ``chroma run`` wants none); every question searched there is written
to the privacy ledger first, and not sent when the ledger cannot be written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from app.paths import AppPaths
from app.wiring.chroma_tokens import chroma_token
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder, QueryEmbedder
from retrieval.errors import ChromaServerError
from retrieval.file_reader import EmbedderLike

EMBEDDING_MODEL_ENV = "FOOTNOTE_EMBEDDING_MODEL"


def new_embedder() -> Embedder:
    """The embedding model (``FOOTNOTE_EMBEDDING_MODEL`` or the bundled one);
    it loads its weights on first use."""
    return Embedder(os.environ.get(EMBEDDING_MODEL_ENV, "").strip() or None)


def new_query_embedder() -> QueryEmbedder:
    """The embedder of a one-off ``search``: the query is embedded with numpy
    alone (no torch import, ~10 s on the 2-core VM), to the same vector."""
    return QueryEmbedder(os.environ.get(EMBEDDING_MODEL_ENV, "").strip() or None)


def open_library(
    paths: AppPaths, embedder: Callable[[], EmbedderLike] = new_embedder
) -> DocumentLibrary:
    """``embedder``: made on first use (pass ``SharedEmbedder.get`` to share
    one model with the web search)."""
    return DocumentLibrary(
        paths.documents,
        embedder,
        server_token=chroma_token,
        before_server_query=ServerQueryLedger(paths.data),
    )


class ServerQueryLedger:
    """Writes "this question went to that Chroma server" before it goes (its
    embedding and its words, for the server's full-text filters). The ledger's
    modules are imported on the first such question: a search of local
    collections (``python -m app search``, started lean) never loads them."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    def __call__(self, url: str, question: str) -> None:
        from app.wiring.grounding import ledger_path
        from retrieval.web.errors import LedgerUnavailable
        from retrieval.web.ledger import Ledger

        ledger = Ledger(ledger_path(self._data_dir))
        try:
            ledger.record("query", server_provider(url), question)
        except LedgerUnavailable as exc:
            raise ChromaServerError(
                f"Footnote cannot write its privacy ledger ({ledger.path}), so it sent "
                f"nothing to the Chroma server at {url}; check that the data folder is "
                "writable and the disk has space.",
                detail=exc.detail,
            ) from exc


def server_provider(url: str) -> str:
    """How the ledger names a Chroma server."""
    return f"Chroma server {url}"
