"""Reading text files of any size and encoding, a block at a time.

The encoding is decided from the first ``SAMPLE_BYTES``: a byte-order mark,
then strict UTF-8 (by far the most common), then charset-normalizer's guess.
A NUL byte or an undecodable sample means binary. The rest of the file is
decoded incrementally with ``errors="replace"``, so a stray bad byte deep in a
2 GB log costs one U+FFFD, not the file, and memory stays flat. Invisible
characters are taken out block by block as they are read
(``invisible.strip_invisible``): a file of text with a 200 MB tail of NULs
then reaches the line scanner as text and a few spaces.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from retrieval.parsing.invisible import strip_invisible

SAMPLE_BYTES = 64 * 1024
READ_BLOCK_BYTES = 1024 * 1024
# A line longer than this (minified code, a log without newlines) is handed on
# in pieces with the same line number, so no single string grows unbounded.
MAX_LINE_CHARS = 16 * 1024
# More than this share of control characters in decoded text means binary.
MAX_CONTROL_CHAR_RATIO = 0.02
# How much more "chaos" (charset-normalizer's mess score) Windows-1252 may
# have than the top guess and still be preferred.
CP1252_CHAOS_MARGIN = 0.05

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v\x1b")


def read_sample(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SAMPLE_BYTES)


def detect_encoding(sample: bytes) -> str | None:
    """The encoding of a file that starts with ``sample``, or None if it is binary."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" in sample:
        return None
    try:
        # final=False: a sample cut inside a multi-byte character is still UTF-8.
        text = codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8" if _looks_like_text(text) else None
    import charset_normalizer

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None or not _looks_like_text(str(best)):
        return None
    for match in matches:
        # charset-normalizer often ranks a rare Latin code page (iso8859_10,
        # cp1250) first for Western European text, turning "élève" into
        # "élčve"; Windows-1252 is what such files nearly always are.
        if match.encoding == "cp1252" and match.chaos <= best.chaos + CP1252_CHAOS_MARGIN:
            return "cp1252"
    return str(best.encoding)


def _looks_like_text(text: str) -> bool:
    if not text:
        return True
    controls = sum(1 for c in text if c < " " and c not in _ALLOWED_CONTROLS)
    return controls <= MAX_CONTROL_CHAR_RATIO * len(text)


def iter_text_blocks(path: Path, encoding: str) -> Iterator[str]:
    """Decoded text of ``path``, ``READ_BLOCK_BYTES`` at a time, without
    invisible characters (carriage returns kept: lines still end at them)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    with path.open("rb") as f:
        while block := f.read(READ_BLOCK_BYTES):
            if text := strip_invisible(decoder.decode(block), keep_cr=True):
                yield text
        if tail := strip_invisible(decoder.decode(b"", final=True), keep_cr=True):
            yield tail


def iter_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line (1-based, newline removed).

    Lines end at ``\\n`` (``\\r\\n`` and lone ``\\r`` too), as editors count
    them, not at every separator ``str.splitlines`` knows. A line longer than
    ``MAX_LINE_CHARS`` comes as several pieces with the same number.
    """
    yield from lines_of(iter_text_blocks(path, encoding))


def lines_of(blocks: Iterator[str]) -> Iterator[tuple[int, str]]:
    number = 1
    carry = ""
    pending_cr = False
    for raw in blocks:
        # Drop the \n of a \r\n split across two blocks (the \r already ended the line).
        block = raw[1:] if pending_cr and raw.startswith("\n") else raw
        pending_cr = block.endswith("\r")
        text = (carry + block).replace("\r\n", "\n").replace("\r", "\n")
        parts = text.split("\n")
        carry = parts.pop()
        for part in parts:
            yield from _pieces(number, part)
            number += 1
        while len(carry) > MAX_LINE_CHARS:
            yield number, carry[:MAX_LINE_CHARS]
            carry = carry[MAX_LINE_CHARS:]
    if carry:
        yield number, carry


def _pieces(number: int, line: str) -> Iterator[tuple[int, str]]:
    if len(line) <= MAX_LINE_CHARS:
        yield number, line
        return
    for start in range(0, len(line), MAX_LINE_CHARS):
        yield number, line[start : start + MAX_LINE_CHARS]
