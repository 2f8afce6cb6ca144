"""HTML: the main text (no menus, scripts or footers) under its headings.

trafilatura finds the main content and writes it as Markdown (headings as
``#``), which the Markdown scanner turns into sections with heading paths.
It needs the whole page in memory and returns nothing for pages it judges to
have no main content (a short note, a bare list), so files over
``TRAFILATURA_MAX_BYTES``, and pages it rejects, go through a streaming
fallback on the standard library's incremental ``HTMLParser``: it drops
script/style/navigation/boilerplate elements and keeps headings and blocks.
Line numbers of the derived text are not lines of the file, so HTML sections
carry heading paths only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from retrieval.parsing.line_sections import TEXT_SECTION_CHARS, TEXT_SECTION_HARD_CHARS
from retrieval.parsing.markup import HeadingStack, markdown_sections
from retrieval.parsing.section import Section
from retrieval.parsing.text_stream import iter_text_blocks, lines_of

# trafilatura builds the whole DOM; past this a page goes to the streaming
# fallback, so a huge page neither holds gigabytes nor stalls past the
# worker's progress timeout (saved web pages are rarely over 2 MB).
TRAFILATURA_MAX_BYTES = 8 * 1024 * 1024

_SKIPPED_TAGS = frozenset(
    {"script", "style", "noscript", "template", "nav", "header", "footer", "aside",
     "svg", "form", "button", "select", "iframe", "head"}
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "br", "tr", "section", "article", "main", "pre", "blockquote",
     "table", "ul", "ol", "dd", "dt", "hr", "figcaption", "td", "th"}
)  # fmt: skip
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})


def html_sections(path: Path, encoding: str) -> Iterator[Section]:
    if path.stat().st_size <= TRAFILATURA_MAX_BYTES:
        import trafilatura

        markdown = trafilatura.extract(
            path.read_bytes(),
            output_format="markdown",
            include_tables=True,
            include_comments=False,
            favor_recall=True,  # a saved page is the user's own choice: keep more
        )
        if markdown and markdown.strip():
            for section in markdown_sections(lines_of(iter([markdown]))):
                yield dataclasses.replace(section, line_start=None, line_end=None)
            return
    yield from _StreamingExtractor().sections(iter_text_blocks(path, encoding))


class _StreamingExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings = HeadingStack()
        self.skip_depth = 0
        self.heading_level: int | None = None
        self.heading_text: list[str] = []
        self.text: list[str] = []
        self.size = 0
        self.ready: list[Section] = []

    def sections(self, blocks: Iterator[str]) -> Iterator[Section]:
        for block in blocks:
            self.feed(block)
            yield from self._drain()
        self.close()
        self._flush()
        yield from self._drain()

    def _drain(self) -> Iterator[Section]:
        ready, self.ready = self.ready, []
        yield from ready

    def _flush(self) -> None:
        raw = "".join(self.text)
        self.text, self.size = [], 0
        paragraphs = [re.sub(r"[ \t\r\f\v]+", " ", p).strip() for p in raw.split("\n")]
        text = "\n\n".join(p for p in paragraphs if p)
        if text:
            self.ready.append(Section(text, heading_path=self.headings.path))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self.skip_depth += 1
        elif self.skip_depth:
            return
        elif tag in _HEADING_TAGS:
            self.heading_level = _HEADING_TAGS[tag]
            self.heading_text = []
        elif tag in _BLOCK_TAGS:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif self.skip_depth:
            return
        elif tag in _HEADING_TAGS and self.heading_level is not None:
            title = " ".join("".join(self.heading_text).split())
            level, self.heading_level = self.heading_level, None
            if title:
                self._flush()
                self.headings.push(level, title)
        elif tag in _BLOCK_TAGS:
            self.text.append("\n")
            if self.size >= TEXT_SECTION_CHARS:
                self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.heading_level is not None:
            self.heading_text.append(data)
        else:
            # One enormous element is cut (at spaces) rather than held whole.
            while self.size + len(data) > TEXT_SECTION_HARD_CHARS:
                room = TEXT_SECTION_HARD_CHARS - self.size
                cut = data.rfind(" ", 0, room) + 1 or room
                self.text.append(data[:cut])
                self._flush()
                data = data[cut:]
            self.text.append(data)
            self.size += len(data)
