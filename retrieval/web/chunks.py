"""Sentence-aware chunks of page text, each within a token limit.

Web pages arrive as blocks (paragraphs under headings, PDF pages). Sentences
of consecutive blocks under the same heading (or on the same PDF page) are
packed into chunks of at most ``max_tokens`` embedder tokens; a chunk never
straddles a heading or a page, so its locator stays true. A sentence longer
than the limit is cut at word boundaries.

This is the web's own chunker: the documents' ``retrieval.chunking`` works on
files and parsed sections, and page blocks are simpler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from retrieval.web.extraction import TextBlock

# A sentence ends at . ! ? (and their closing quotes/brackets) followed by space
# and something that can start a sentence. Abbreviations occasionally split;
# that only makes a chunk boundary less pretty.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])")


@dataclass(frozen=True)
class PageChunk:
    text: str
    heading_path: tuple[str, ...]
    page: int | None


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _pieces(sentence: str, count_tokens: Callable[[str], int], max_tokens: int) -> Iterator[str]:
    """The sentence itself, or word-boundary pieces of it that fit."""
    if count_tokens(sentence) <= max_tokens:
        yield sentence
        return
    words = sentence.split()
    piece: list[str] = []
    for word in words:
        candidate = " ".join([*piece, word])
        if piece and count_tokens(candidate) > max_tokens:
            yield " ".join(piece)
            piece = [word]
        else:
            piece.append(word)
    if piece:
        yield " ".join(piece)


def chunk_blocks(
    blocks: Iterable[TextBlock],
    count_tokens: Callable[[str], int],
    max_tokens: int,
) -> list[PageChunk]:
    chunks: list[PageChunk] = []
    current: list[str] = []
    current_tokens = 0
    where: tuple[tuple[str, ...], int | None] | None = None

    def flush() -> None:
        nonlocal current, current_tokens
        if current and where is not None:
            chunks.append(PageChunk(" ".join(current), where[0], where[1]))
        current, current_tokens = [], 0

    for block in blocks:
        if (block.heading_path, block.page) != where:
            flush()
            where = (block.heading_path, block.page)
        for sentence in split_sentences(block.text):
            for piece in _pieces(sentence, count_tokens, max_tokens):
                # +1: the space joining pieces may add a token.
                tokens = count_tokens(piece) + (1 if current else 0)
                if current and current_tokens + tokens > max_tokens:
                    flush()
                    tokens -= 1
                current.append(piece)
                current_tokens += tokens
    flush()
    return chunks
