"""The document library and the embedding model, opened the same way by the
window and the command line (no Qt).

The embedding model is all-MiniLM-L6-v2 from the installed package; set
``FOOTNOTE_EMBEDDING_MODEL`` to a sentence-transformers folder to use another
(collections built by the previous model are rebuilt on their next index).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from app.paths import AppPaths
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder, QueryEmbedder
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
    return DocumentLibrary(paths.documents, embedder)
