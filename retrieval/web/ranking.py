"""Rank page text against the query with the documents' embedder.

Chunks of every page are embedded in one batch with the same model that
indexes the user's documents, so a web passage's score (cosine similarity of
normalized embeddings) means the same as a document passage's, and the budget
planner can weigh the two fairly. The best chunks are kept, skipping
near-duplicates (cosine above ``DUPLICATE_COSINE``: mirrors and syndicated
copies of one article) and capping how many come from one site.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from retrieval.chunking import chunk_sections
from retrieval.locator import Locator
from retrieval.parsing.section import Section
from retrieval.passage import RetrievedPassage
from retrieval.web.extraction import ExtractedPage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Smaller than the documents' chunks: ~500 characters, as chat-ui's web search
# used; many pages compete for a few passages, so each should be one point.
WEB_CHUNK_MAX_TOKENS = 128  # special tokens included
WEB_CHUNK_OVERLAP_TOKENS = 16
MAX_CHUNKS_PER_PAGE = 60  # bounds embedding time for very long pages
TOP_PASSAGES = 8
MAX_PASSAGES_PER_DOMAIN = 3
DUPLICATE_COSINE = 0.95


class Embedder(Protocol):
    """What ranking needs of ``retrieval.embedding.Embedder``."""

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalized row per text."""
        ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """One L2-normalized vector."""
        ...


@dataclass(frozen=True)
class RankLimits:
    top_passages: int = TOP_PASSAGES
    per_domain: int = MAX_PASSAGES_PER_DOMAIN
    duplicate_cosine: float = DUPLICATE_COSINE
    chunk_max_tokens: int = WEB_CHUNK_MAX_TOKENS
    chunk_overlap_tokens: int = WEB_CHUNK_OVERLAP_TOKENS
    max_chunks_per_page: int = MAX_CHUNKS_PER_PAGE


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


@dataclass(frozen=True)
class _Candidate:
    page: ExtractedPage
    text: str
    heading_path: tuple[str, ...]
    pdf_page: int | None


# The shared chunker builds document locators from a file path; web chunks keep
# only its text, page and headings, so any path will do.
_NO_FILE = Path("web-page")


def _page_candidates(
    page: ExtractedPage, embedder: Embedder, limits: RankLimits, max_tokens: int
) -> list[_Candidate]:
    """Sentence-aware chunks by ``retrieval.chunking`` (the documents' chunker:
    never across a heading or a PDF page, heading path at the top)."""
    sections = (Section(b.text, page=b.page, heading_path=b.heading_path) for b in page.blocks)
    chunks = chunk_sections(
        _NO_FILE, sections, embedder.count_tokens, max_tokens, limits.chunk_overlap_tokens
    )
    return [
        _Candidate(page, c.text, c.locator.heading_path, c.locator.page)
        for c in islice(chunks, limits.max_chunks_per_page)
    ]


def _passage(candidate: _Candidate, score: float) -> RetrievedPassage:
    page = candidate.page
    url = page.url
    if candidate.pdf_page is not None:  # browsers open a PDF at #page=N
        url = f"{url.split('#')[0]}#page={candidate.pdf_page}"
    locator = Locator(
        kind="web",
        url=url,
        title=page.title or None,
        heading_path=candidate.heading_path,
        page=candidate.pdf_page,
    )
    digest = hashlib.sha256(f"{url}\n{candidate.text}".encode()).hexdigest()[:16]
    return RetrievedPassage(text=candidate.text, locator=locator, id=f"web:{digest}", score=score)


def rank_pages(
    query: str,
    pages: Sequence[ExtractedPage],
    embedder: Embedder,
    cancel: threading.Event,
    limits: RankLimits | None = None,
) -> list[RetrievedPassage]:
    """The best passages, best first, scored by cosine similarity to ``query``."""
    import numpy as np

    limits = limits or RankLimits()
    max_tokens = min(limits.chunk_max_tokens, embedder.max_tokens)
    candidates: list[_Candidate] = []
    for page in pages:
        if cancel.is_set():
            return []
        candidates += _page_candidates(page, embedder, limits, max_tokens)
    if not candidates or cancel.is_set():
        return []
    vectors = embedder.embed_documents([c.text for c in candidates])
    if cancel.is_set():
        return []
    scores = vectors @ embedder.embed_query(query)
    kept: list[int] = []
    per_domain: dict[str, int] = {}
    for index in np.argsort(-scores, kind="stable"):
        domain = _domain(candidates[int(index)].page.url)
        if per_domain.get(domain, 0) >= limits.per_domain:
            continue
        if kept and float(np.max(vectors[kept] @ vectors[index])) > limits.duplicate_cosine:
            continue
        kept.append(int(index))
        per_domain[domain] = per_domain.get(domain, 0) + 1
        if len(kept) >= limits.top_passages:
            break
    return [_passage(candidates[i], float(scores[i])) for i in kept]


def cosine_rescored(
    query: str, passages: Sequence[RetrievedPassage], embedder: Embedder
) -> list[RetrievedPassage]:
    """``passages`` with their score replaced by the cosine similarity of their
    text to ``query`` (same order). Document search returns fused rank scores
    (RRF, ~0.01-0.03, comparable only within one call); this puts them on the
    web passages' scale, for the Auto rule and for weighing the two together."""
    if not passages:
        return []
    vectors = embedder.embed_documents([p.text for p in passages])
    scores = vectors @ embedder.embed_query(query)
    return [replace(p, score=float(s)) for p, s in zip(passages, scores, strict=True)]
