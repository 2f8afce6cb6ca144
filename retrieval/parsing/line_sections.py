"""Grouping numbered lines into sections: plain text and source code.

Sections are bounded (``TEXT_SECTION_CHARS``, ``CODE_SECTION_LINES``) so a huge
file streams as many modest sections; the chunker then cuts them to the
embedder's size. Cuts fall at blank lines where possible (paragraphs), and for
code before a top-level line that follows a blank line (usually a new
function or class), so a section rarely splits a definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from retrieval.parsing.section import Section

TEXT_SECTION_CHARS = 8 * 1024  # cut at the next blank line after this much text
TEXT_SECTION_HARD_CHARS = 32 * 1024  # cut here even inside a paragraph
CODE_SECTION_LINES = 60  # cut before the next top-level definition after this
CODE_SECTION_HARD_LINES = 200


class LineBuffer:
    """Lines collected for one section, with their numbers."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.lines: list[str] = []
        self.first: int | None = None
        self.last: int | None = None
        self.chars = 0

    def add(self, number: int, text: str) -> None:
        if self.first is None:
            self.first = number
        if number == self.last:
            # A long line arrives in pieces with one number: glue, do not break.
            self.lines[-1] += text
        else:
            self.lines.append(text)
        self.last = number
        self.chars += len(text) + 1

    def full(self, number: int, text: str) -> bool:
        """Whether to start a new section before this line: past
        ``TEXT_SECTION_CHARS`` at a blank line, or past
        ``TEXT_SECTION_HARD_CHARS`` anywhere, even inside one enormous line,
        so that a file without line breaks still streams."""
        if self.chars >= TEXT_SECTION_HARD_CHARS:
            return True
        return self.chars >= TEXT_SECTION_CHARS and not text.strip() and number != self.last

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def ends_blank(self) -> bool:
        return bool(self.lines) and not self.lines[-1].strip()

    def take(self, heading_path: tuple[str, ...] = ()) -> Section | None:
        """The collected lines as a section (blank edges trimmed), then empty."""
        lines, first = self.lines, self.first
        self._reset()
        if first is None:
            return None
        start, end = 0, len(lines)
        while start < end and not lines[start].strip():
            start += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if start == end:
            return None
        return Section(
            "\n".join(lines[start:end]),
            heading_path=heading_path,
            line_start=first + start,
            line_end=first + end - 1,
        )


def text_sections(
    lines: Iterable[tuple[int, str]], heading_path: tuple[str, ...] = ()
) -> Iterator[Section]:
    """Plain text: sections of about ``TEXT_SECTION_CHARS``, cut between paragraphs."""
    buffer = LineBuffer()
    for number, text in lines:
        if buffer.full(number, text) and (section := buffer.take(heading_path)):
            yield section
        buffer.add(number, text)
    if section := buffer.take(heading_path):
        yield section


def code_sections(lines: Iterable[tuple[int, str]]) -> Iterator[Section]:
    """Source code: sections of about ``CODE_SECTION_LINES``, cut before a
    top-level line that follows a blank line, or at a blank line when long."""
    buffer = LineBuffer()
    for number, text in lines:
        if _is_cut(buffer, number, text) and (section := buffer.take()):
            yield section
        buffer.add(number, text)
    if section := buffer.take():
        yield section


def _is_cut(buffer: LineBuffer, number: int, text: str) -> bool:
    if buffer.chars >= TEXT_SECTION_HARD_CHARS:
        return True  # even inside one huge line (minified code)
    if number == buffer.last:
        return False  # the next piece of a long line
    count = len(buffer)
    if count >= CODE_SECTION_HARD_LINES:
        return True
    top_level = bool(text) and not text[0].isspace() and text.strip() not in ("}", "end", ")")
    if count >= CODE_SECTION_LINES and buffer.ends_blank and top_level:
        return True
    return count >= 2 * CODE_SECTION_LINES and not text.strip()
