"""Markdown and reStructuredText: sections under their heading paths.

A small line scanner rather than a full Markdown/RST parser: it needs only
where headings are and which lines belong under them, it streams (one line of
lookahead), and it keeps line numbers, which an AST renderer would lose.
Markdown: ATX (``## Title``) and setext (``Title`` over ``===``/``---``)
headings; headings inside fenced code blocks are code, not headings. RST:
titles underlined (optionally overlined) with a punctuation character; as in
docutils, levels follow the order in which adornment styles first appear.

Markup without content (``markup_noise``: front matter, labels and targets,
``toctree``/``contents`` blocks, link-only lists, badges) is dropped outside
code blocks. A dropped line ends the section being collected, so every
section's text is still the file's own consecutive lines (its line numbers
stay exact); the chunker joins the pieces again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from retrieval.parsing import markup_noise
from retrieval.parsing.line_sections import LineBuffer
from retrieval.parsing.section import Section

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")


class HeadingStack:
    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self.pushed = 0  # headings seen so far (a file of headings only says so)

    def push(self, level: int, title: str) -> None:
        self.pushed += 1
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)


_HEADING_ATTRIBUTES = re.compile(r"\s*\{[#.:][^{}]*\}\s*$")  # "Title {#custom-id}"


def _clean_title(title: str) -> str:
    title = _HEADING_ATTRIBUTES.sub("", title)
    title = re.sub(r"[*_`]+", "", title).strip()
    return re.sub(r"\s+", " ", title)


class _Body:
    """Lines under the current heading, flushed as sections."""

    def __init__(self) -> None:
        self.buffer = LineBuffer()

    def flush(self, path: tuple[str, ...]) -> Iterator[Section]:
        if section := self.buffer.take(path):
            yield section

    def add(self, number: int, text: str, path: tuple[str, ...]) -> Iterator[Section]:
        # Long bodies stream as several sections, cut between paragraphs.
        if self.buffer.full(number, text):
            yield from self.flush(path)
        self.buffer.add(number, text)


def markdown_sections(
    lines: Iterable[tuple[int, str]], headings: HeadingStack | None = None
) -> Iterator[Section]:
    headings = headings if headings is not None else HeadingStack()
    body = _Body()
    fence: str | None = None  # inside a fenced code block: its fence
    noise = markup_noise.MarkdownNoise()
    previous: tuple[int, str] | None = None  # held back: it may be a setext title

    def emit(item: tuple[int, str]) -> Iterator[Section]:
        yield from body.add(item[0], item[1], headings.path)

    def cut() -> Iterator[Section]:
        """A line is dropped here: end the section before it."""
        nonlocal previous
        if previous is not None:
            yield from emit(previous)
            previous = None
        yield from body.flush(headings.path)

    for number, text in markup_noise.without_front_matter(lines):
        if fence is None and noise.drops(text):
            yield from cut()
            continue
        if fence is not None:
            if text.lstrip().startswith(fence):
                fence = None
        elif (match := _FENCE.match(text)) is not None:
            fence = match.group(1)
        elif (match := _ATX.match(text)) is not None:
            if previous is not None:
                yield from emit(previous)
                previous = None
            yield from body.flush(headings.path)
            headings.push(len(match.group(1)), _clean_title(match.group(2) or ""))
            continue
        elif (
            previous is not None
            and previous[1].strip()
            and not previous[1].startswith(("    ", "\t"))
            and not _FENCE.match(previous[1])
            and _SETEXT.match(text)
        ):
            yield from body.flush(headings.path)
            headings.push(1 if text.strip()[0] == "=" else 2, _clean_title(previous[1]))
            previous = None
            continue
        if previous is not None:
            yield from emit(previous)
        previous = (number, text)
    if previous is not None:
        yield from emit(previous)
    yield from body.flush(headings.path)


def rst_sections(
    lines: Iterable[tuple[int, str]], headings: HeadingStack | None = None
) -> Iterator[Section]:
    headings = headings if headings is not None else HeadingStack()
    levels: list[tuple[str, bool]] = []  # adornment styles in order of first use
    body = _Body()
    held: list[tuple[int, str]] = []  # up to two lines: [overline?, title?]
    dropped_indent: int | None = None  # inside dropped explicit markup: its indent

    for number, text in lines:
        if dropped_indent is not None:
            if not text.strip() or markup_noise.indent_of(text) > dropped_indent:
                continue
            dropped_indent = None
        block = markup_noise.rst_markup_block(text)
        if block is not None or markup_noise.is_navigation_item(text):
            # End the section before the dropped lines (held ones go first).
            for item in held:
                yield from body.add(*item, headings.path)
            held = []
            yield from body.flush(headings.path)
            dropped_indent = block
            continue
        adornment = _RST_ADORNMENT.match(text)
        if adornment is not None and held:
            title_line = held[-1][1]
            overline = len(held) == 2 and held[0][1].strip() == text.strip()
            before_title = held[0][1] if len(held) == 2 else ""
            if (
                title_line.strip()
                and not title_line[0].isspace()
                and not _RST_ADORNMENT.match(title_line)
                and len(text.rstrip()) >= len(title_line.rstrip())
                and (overline or not before_title.strip() or _RST_ADORNMENT.match(before_title))
            ):
                if len(held) == 2 and not overline:
                    yield from body.add(*held[0], headings.path)
                yield from body.flush(headings.path)
                style = (adornment.group(1), overline)
                if style not in levels:
                    levels.append(style)
                headings.push(levels.index(style) + 1, _clean_title(title_line))
                held = []
                continue
        held.append((number, text))
        if len(held) > 2:
            yield from body.add(*held.pop(0), headings.path)
    for item in held:
        yield from body.add(*item, headings.path)
    yield from body.flush(headings.path)
