"""Cutting parsed sections into chunks that fit the embedder, each with a locator.

Structure first: a chunk never spans two pages or two headings, since its
locator names exactly one. Within a run of sections that share a page and a
heading path, text is cut at paragraphs (blank lines), then sentences, then
lines, then words, and only as a last resort inside a word; the pieces are
then packed greedily into chunks of at most ``max_tokens``, measured with the
embedder's own tokenizer (``count_tokens``, special tokens included).
all-MiniLM-L6-v2 silently drops everything past 256 word pieces, so a longer
chunk would be indexed by its beginning only; ``CHUNK_MAX_TOKENS`` leaves a
margin below that.

Consecutive chunks of one run overlap by up to ``overlap_tokens`` of whole
pieces (usually one sentence), so a fact cut at a boundary is still whole in
one of them.

The heading path is written at the top of each chunk ("Install › Linux"):
"Run the installer." alone says nothing about what is installed; with its
headings it matches the question and reads well as a cited passage. The file
name is *not* written in: a renamed file then keeps the same chunk texts (and
content hashes), and names like "final_v2 (3).docx" are noise to an embedder.

Counting is cheap: each piece is tokenized once, a chunk's size is the sum of
its pieces (exact for WordPiece, which never merges across whitespace), and
each finished chunk is verified with one more call; the rare chunk over the
limit gives back its last piece.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from retrieval.locator import Locator
from retrieval.parsing.section import Section

CHUNK_MAX_TOKENS = 224  # with [CLS] and [SEP]; all-MiniLM-L6-v2 truncates at 256
CHUNK_OVERLAP_TOKENS = 32
HEADING_SEPARATOR = " › "
# A section far longer than this many characters per allowed token is split
# without first asking the tokenizer whether it fits (it cannot).
_MAX_CHARS_PER_TOKEN = 12

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! ? … (and closing quotes/brackets) before whitespace
# and a capital, digit or opening quote: "e.g. this" and "3.5 GB" stay whole.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])")
_LINE_BREAK = re.compile(r"\n")
_WORD_BREAK = re.compile(r"[ \t]+")
_SPLITTERS = (_PARAGRAPH_BREAK, _SENTENCE_BREAK, _LINE_BREAK, _WORD_BREAK)


@dataclass(frozen=True)
class Chunk:
    text: str
    locator: Locator
    content_hash: str  # sha256 hex of text

    @property
    def id(self) -> str:
        """Stable across runs: the same text at the same place is the same id."""
        where = json.dumps(self.locator.to_dict(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256((self.content_hash + where).encode()).hexdigest()[:32]


def content_hash(text: str) -> str:
    # surrogatepass: text from a damaged file may hold lone surrogates.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def count_tokens_with(tokenizer: Any) -> Callable[[str], int]:
    """``count_tokens`` for a Hugging Face tokenizer (``transformers`` or
    ``tokenizers``), special tokens included, as the embedder sees the text."""
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "to_str"):  # tokenizers.Tokenizer
        # MiniLM's tokenizer.json truncates at 128 and pads: a copy without
        # either, or every long text would count as exactly 128.
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(tokenizer.to_str())
        plain.no_truncation()
        plain.no_padding()
        return lambda text: len(plain.encode(text, add_special_tokens=True).ids)
    # transformers tokenizers do not truncate unless asked to.
    return lambda text: len(tokenizer.encode(text, add_special_tokens=True))


@dataclass
class _Piece:
    """A span of one section's text that fits a chunk on its own."""

    tokens: int  # without special tokens
    section: int  # index of its section in the run
    start: int  # character offsets in that section's text
    end: int


def chunk_sections(
    path: Path,
    sections: Iterable[Section],
    count_tokens: Callable[[str], int],
    max_tokens: int = CHUNK_MAX_TOKENS,
    overlap_tokens: int = CHUNK_OVERLAP_TOKENS,
) -> Iterator[Chunk]:
    """Chunks of ``sections`` (from one file at ``path``), in document order,
    each at most ``max_tokens`` by ``count_tokens``."""
    special = count_tokens("")  # [CLS] + [SEP] for BERT-style tokenizers
    if max_tokens - special < 8:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for text")
    file_path = str(Path(path).absolute())
    for (page, heading_path), run in groupby(sections, key=lambda s: (s.page, s.heading_path)):
        chunker = _RunChunker(
            file_path, page, heading_path, count_tokens, special, max_tokens, overlap_tokens
        )
        yield from chunker.chunks(run)


class _RunChunker:
    """Chunks for consecutive sections that share a page and heading path."""

    def __init__(  # noqa: PLR0917
        self,
        path: str,
        page: int | None,
        heading_path: tuple[str, ...],
        count_tokens: Callable[[str], int],
        special: int,
        max_tokens: int,
        overlap_tokens: int,
    ) -> None:
        self.path, self.page, self.heading_path = path, page, heading_path
        self.count_tokens, self.special, self.max_tokens = count_tokens, special, max_tokens
        self.overlap_tokens = overlap_tokens
        self.prefix = self._prefix()
        self.budget = max_tokens - special - self._tokens(self.prefix)

    def _tokens(self, text: str) -> int:
        return max(0, self.count_tokens(text) - self.special) if text else 0

    def _prefix(self) -> str:
        """The heading path for the top of each chunk, kept to a quarter of it."""
        limit = (self.max_tokens - self.special) // 4
        for headings in (self.heading_path, self.heading_path[-1:]):
            if not headings:
                return ""
            prefix = HEADING_SEPARATOR.join(headings) + "\n"
            if self._tokens(prefix) <= limit:
                return prefix
        words = self.heading_path[-1].split()
        while words and self._tokens(" ".join(words) + "…\n") > limit:
            words = words[: len(words) // 2]
        return " ".join(words) + "…\n" if words else ""

    def chunks(self, run: Iterable[Section]) -> Iterator[Chunk]:
        """Pack the run's pieces into chunks as they arrive: only the pieces of
        the chunk being built (and their sections) are held, so a 2 GB text
        file, which is one long run, streams in constant memory."""
        self.run: dict[int, Section] = {}
        self.newlines: dict[int, list[int]] = {}
        window: list[_Piece] = []  # the chunk being built
        carried = 0  # how many of its first pieces overlap the previous chunk
        for piece in self._pieces(run):
            total = sum(p.tokens for p in window)
            while window and total + piece.tokens > self.budget:
                if len(window) == carried:
                    # Only overlap left and no room for the new piece: shed it.
                    total -= window.pop(0).tokens
                    carried -= 1
                    continue
                window, carried = yield from self._emit(window, carried)
                total = sum(p.tokens for p in window)
            window.append(piece)
            self._forget_before(window[0].section)
        while len(window) > carried:
            window, carried = yield from self._emit(window, carried)

    def _pieces(self, run: Iterable[Section]) -> Iterator[_Piece]:
        for index, section in enumerate(run):
            self.run[index] = section
            if section.line_start is not None:
                self.newlines[index] = [m.start() for m in _LINE_BREAK.finditer(section.text)]
            yield from self._split(index, section.text, 0, 0)

    def _forget_before(self, section: int) -> None:
        for index in [i for i in self.run if i < section]:
            del self.run[index]
            self.newlines.pop(index, None)

    def _emit(
        self, window: list[_Piece], carried: int
    ) -> Generator[Chunk, None, tuple[list[_Piece], int]]:
        """Yield a chunk from the front of ``window``; return the next window
        (the overlap, then any pieces given back) and its overlap count."""
        start, end = 0, len(window)
        text = self._text(window[start:end])
        # The sum of piece counts is an estimate: verify it once, and give
        # back pieces (never all new ones) or drop the overlap while over.
        while end - start > 1 and self.count_tokens(text) > self.max_tokens:
            if end - 1 > max(start, carried):
                end -= 1
            else:
                start = max(start, carried) if carried > start else start + 1
            text = self._text(window[start:end])
        yield self._chunk(text, window[start:end])
        back, total = end, 0
        while back - 1 > max(start, carried - 1) and (
            total + window[back - 1].tokens <= self.overlap_tokens
        ):
            back -= 1
            total += window[back].tokens
        return window[back:], end - back

    def _split(self, section: int, text: str, offset: int, level: int) -> Iterator[_Piece]:
        """``text`` (at ``offset`` in its section) as pieces within the budget,
        cut at the coarsest boundary that makes them fit."""
        if not text.strip():
            return
        if len(text) <= self.budget * _MAX_CHARS_PER_TOKEN:
            tokens = self._tokens(text)
            if tokens <= self.budget:
                yield _Piece(tokens, section, offset, offset + len(text))
                return
        if level >= len(_SPLITTERS):
            yield from self._hard_split(section, text, offset)
            return
        position = 0
        for match in _SPLITTERS[level].finditer(text):
            if match.start() > position:
                yield from self._split(
                    section, text[position : match.start()], offset + position, level + 1
                )
            position = match.end()
        yield from self._split(section, text[position:], offset + position, level + 1)

    def _hard_split(self, section: int, text: str, offset: int) -> Iterator[_Piece]:
        """A single "word" longer than a chunk (a hash dump, base64): cut by
        characters, shrinking the cut until the tokenizer agrees it fits."""
        position = 0
        while position < len(text):
            size = max(1, self.budget)
            while True:
                part = text[position : position + size]
                tokens = self._tokens(part)
                if tokens <= self.budget or size == 1:
                    break
                size = max(1, size // 2)
            yield _Piece(tokens, section, offset + position, offset + position + len(part))
            position += len(part)

    def _text(self, pieces: list[_Piece]) -> str:
        """The original text from the first piece to the last (its own spacing
        and line breaks kept). Sections of the run are joined by as many line
        breaks as separate them in the file, or a blank line if unknown."""
        text = ""
        previous: _Piece | None = None
        for section, group in groupby(pieces, key=lambda p: p.section):
            members = list(group)
            part = self.run[section].text[members[0].start : members[-1].end]
            part = part.lstrip("\n").rstrip()  # keep the first line's indent
            if previous is not None:
                gap = 2
                before, after = (
                    self._lines(previous, start=False),
                    self._lines(members[0], start=True),
                )
                if before is not None and after is not None and after > before:
                    gap = after - before
                text += "\n" * gap
            text += part
            previous = members[-1]
        return self.prefix + text

    def _chunk(self, text: str, pieces: list[_Piece]) -> Chunk:
        line_start, line_end = (
            self._lines(pieces[0], start=True),
            self._lines(pieces[-1], start=False),
        )
        locator = Locator(
            kind="document",
            path=self.path,
            page=self.page,
            heading_path=self.heading_path,
            line_start=line_start,
            line_end=line_end,
        )
        return Chunk(text, locator, content_hash(text))

    def _lines(self, piece: _Piece, *, start: bool) -> int | None:
        """The file line of the piece's first (or last) visible character."""
        section = self.run[piece.section]
        if section.line_start is None:
            return None
        body = section.text[piece.start : piece.end]
        if start:
            at = piece.start + len(body) - len(body.lstrip())
        else:
            at = max(piece.start, piece.start + len(body.rstrip()) - 1)
        return section.line_start + bisect.bisect_left(self.newlines[piece.section], at)
