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

Bounded whatever the bytes. Tokens alone do not bound a chunk: MiniLM counts
whitespace, combining marks and control characters as nothing and a 100-letter
"word" as one [UNK], so a chunk is also held to ``max_chars`` characters
(``CHUNK_MAX_CHARS_PER_TOKEN`` per token; real text runs 4 to 6), and pieces
the embedder sees as nothing (no token, or no letter or digit) are never
packed: they cannot start, end or make up a chunk. Invisible characters are
stripped first (``chunk_runs.clean_sections``). Every piece is then at most
``max_chars`` long and every window at most ``max_tokens`` pieces, so the work
is linear in the input. As a last guard, ``stall_timeout_s`` stops a file
whose chunking yields no chunk for that long (time the consumer holds the
generator suspended does not count).

Which sections make a run, and tiny sections merged into the next run, are
``chunk_runs``'s business. ``CHUNKER_VERSION`` names what this module and the
parsers make of a file: the index records it, and a new version re-chunks
every file on the next run.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from retrieval.chunk_runs import CHUNK_MIN_TOKENS, clean_sections, has_content, runs
from retrieval.discovery import display_path
from retrieval.errors import ParseFailed
from retrieval.locator import Locator
from retrieval.parsing.section import Section

# Bump when parsing or chunking changes the chunks a file gives: the index
# records the version that cut it, and the next run re-chunks every file
# (chunk texts that come out the same keep their vectors, by content hash).
# 2: invisible characters stripped, a character cap, labels, tables of
# contents, front matter and link-only lists dropped, tiny sections merged.
CHUNKER_VERSION = 2
CHUNK_MAX_TOKENS = 224  # with [CLS] and [SEP]; all-MiniLM-L6-v2 truncates at 256
CHUNK_OVERLAP_TOKENS = 32
# Characters a chunk may hold per token of its limit (1,792 for 224 tokens).
# Prose and code run 4 to 6 characters per MiniLM token (at most 1,225
# characters in 6,000 chunks of this repository, numpy and JSON schemas).
CHUNK_MAX_CHARS_PER_TOKEN = 8
# A file whose chunking yields no chunk for this long is skipped. Real text
# yields one every few milliseconds; the parser's own timeout (30 s without a
# batch of sections) fires first when the parser is what is stuck.
CHUNK_STALL_TIMEOUT_S = 60.0
HEADING_SEPARATOR = " › "
# Line breaks between two sections of a chunk: as many as in the file (code
# keeps its two blank lines between functions), but no more than this, so a
# million blank lines in a file are not a megabyte of chunk.
_JOIN_CHARS = 4

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
    # characters between the previous piece and this one in a chunk's text:
    # the skipped spacing inside a section, the join between two sections
    gap: int = _JOIN_CHARS


def chunk_sections(
    path: Path,
    sections: Iterable[Section],
    count_tokens: Callable[[str], int],
    max_tokens: int = CHUNK_MAX_TOKENS,
    overlap_tokens: int = CHUNK_OVERLAP_TOKENS,
    *,
    max_chars: int | None = None,
    min_tokens: int = CHUNK_MIN_TOKENS,
    stall_timeout_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Chunk]:
    """Chunks of ``sections`` (from one file at ``path``), in document order,
    each at most ``max_tokens`` by ``count_tokens`` and ``max_chars``
    characters (default ``CHUNK_MAX_CHARS_PER_TOKEN`` per token).

    ``stall_timeout_s``: raise ``ParseFailed("timeout")`` when no chunk
    comes for that long, by ``clock``; ``None`` never does."""
    special = count_tokens("")  # [CLS] + [SEP] for BERT-style tokenizers
    if max_tokens - special < 8:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for text")
    limits = _Limits(
        count_tokens,
        special,
        max_tokens,
        max_chars or max_tokens * CHUNK_MAX_CHARS_PER_TOKEN,
        overlap_tokens,
    )
    file_path = str(Path(path).absolute())
    watchdog = _Watchdog(display_path(Path(path).name), stall_timeout_s, clock)
    sections = clean_sections(watchdog.checked(s) for s in sections)
    for (page, heading_path), run in runs(sections, limits.body_tokens, min_tokens):
        chunker = _RunChunker(file_path, page, heading_path, limits, watchdog)
        for chunk in chunker.chunks(run):
            yield chunk
            watchdog.restart()  # a chunk is progress; time suspended in yield is not work


@dataclass(frozen=True)
class _Limits:
    count_tokens: Callable[[str], int]
    special: int  # tokens count_tokens("") gives: [CLS] and [SEP]
    max_tokens: int
    max_chars: int
    overlap_tokens: int

    def body_tokens(self, text: str) -> int:
        """Tokens of ``text`` without the special ones."""
        return max(0, self.count_tokens(text) - self.special) if text else 0


class _Watchdog:
    """Stops a file's chunking when no chunk has come for ``timeout_s``."""

    def __init__(self, name: str, timeout_s: float | None, clock: Callable[[], float]) -> None:
        self.name, self.timeout_s, self.clock = name, timeout_s, clock
        self.since = clock()

    def restart(self) -> None:
        self.since = self.clock()

    def check(self) -> None:
        if self.timeout_s is not None and self.clock() - self.since > self.timeout_s:
            raise ParseFailed(
                "timeout",
                f"{self.name}: cutting it into passages made no progress for "
                f"{self.timeout_s:g} s (it may hold little but unreadable characters); skipped",
                detail="chunking watchdog",
            )

    def checked(self, section: Section) -> Section:
        self.check()
        return section


class _RunChunker:
    """Chunks for consecutive sections that share a page and heading path."""

    def __init__(
        self,
        path: str,
        page: int | None,
        heading_path: tuple[str, ...],
        limits: _Limits,
        watchdog: _Watchdog,
    ) -> None:
        self.path, self.page, self.heading_path = path, page, heading_path
        self.limits, self.watchdog = limits, watchdog
        self.count_tokens, self.max_tokens = limits.count_tokens, limits.max_tokens
        self.prefix = self._prefix()
        self.budget = limits.max_tokens - limits.special - self._tokens(self.prefix)
        self.char_budget = limits.max_chars - len(self.prefix)

    def _tokens(self, text: str) -> int:
        return self.limits.body_tokens(text)

    def _prefix(self) -> str:
        """The heading path for the top of each chunk, kept to a quarter of it
        (in tokens and in characters)."""
        limit = (self.max_tokens - self.limits.special) // 4
        char_limit = self.limits.max_chars // 4

        def fits(prefix: str) -> bool:
            return len(prefix) <= char_limit and self._tokens(prefix) <= limit

        for headings in (self.heading_path, self.heading_path[-1:]):
            if not headings:
                return ""
            prefix = HEADING_SEPARATOR.join(headings) + "\n"
            if fits(prefix):
                return prefix
        words = self.heading_path[-1].split()
        while words and not fits(" ".join(words) + "…\n"):
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
            self.watchdog.check()
            while window and not self._fits(window, piece):
                if len(window) == carried:
                    # Only overlap left and no room for the new piece: shed it.
                    window.pop(0)
                    carried -= 1
                    continue
                window, carried = yield from self._emit(window, carried)
            window.append(piece)
            self._forget_before(window[0].section)
        while len(window) > carried:
            window, carried = yield from self._emit(window, carried)

    def _fits(self, window: list[_Piece], piece: _Piece) -> bool:
        """Whether ``piece`` may join ``window`` (at most ``max_tokens``
        pieces, since every piece has a token: cheap to sum)."""
        tokens = sum(p.tokens for p in window) + piece.tokens
        chars = sum(p.end - p.start + p.gap for p in window) - window[0].gap
        return tokens <= self.budget and chars + piece.gap + piece.end - piece.start <= (
            self.char_budget
        )

    def _pieces(self, run: Iterable[Section]) -> Iterator[_Piece]:
        for index, section in enumerate(run):
            self.run[index] = section
            if section.line_start is not None:
                self.newlines[index] = [m.start() for m in _LINE_BREAK.finditer(section.text)]
            previous_end: int | None = None
            for piece in self._split(index, section.text, 0, 0):
                if previous_end is not None:
                    piece.gap = piece.start - previous_end
                previous_end = piece.end
                yield piece
            if previous_end is None:  # nothing in it to pack: do not hold it
                del self.run[index]
                self.newlines.pop(index, None)

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
        # The sums of piece counts are estimates: verify them once, and give
        # back pieces (never all new ones) or drop the overlap while over.
        while end - start > 1 and (
            len(text) > self.limits.max_chars or self.count_tokens(text) > self.max_tokens
        ):
            if end - 1 > max(start, carried):
                end -= 1
            else:
                start = max(start, carried) if carried > start else start + 1
            text = self._text(window[start:end])
        yield self._chunk(text, window[start:end])
        back, total = end, 0
        while back - 1 > max(start, carried - 1) and (
            total + window[back - 1].tokens <= self.limits.overlap_tokens
        ):
            back -= 1
            total += window[back].tokens
        return window[back:], end - back

    def _split(self, section: int, text: str, offset: int, level: int) -> Iterator[_Piece]:
        """``text`` (at ``offset`` in its section) as pieces within the budget,
        cut at the coarsest boundary that makes them fit. A piece the embedder
        would see as nothing (no token, or no letter or digit) is left out."""
        if not text.strip():
            return
        if len(text) <= self.char_budget:
            tokens = self._tokens(text)
            if tokens <= self.budget:
                if tokens and has_content(text):
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
            self.watchdog.check()
            size = max(1, min(self.budget, self.char_budget))
            while True:
                part = text[position : position + size]
                tokens = self._tokens(part)
                if tokens <= self.budget or size == 1:
                    break
                size = max(1, size // 2)
            if tokens and has_content(part):
                yield _Piece(tokens, section, offset + position, offset + position + len(part))
            position += len(part)

    def _text(self, pieces: list[_Piece]) -> str:
        """The original text from the first piece to the last (its own spacing
        and line breaks kept). Sections of the run are joined by as many line
        breaks as separate them in the file (at most ``_JOIN_CHARS``), or a
        blank line if unknown."""
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
                    gap = min(after - before, _JOIN_CHARS)
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
