"""HTML → text without a DOM: the one fallback both saved pages
(:mod:`retrieval.parsing.html_page`) and fetched web pages
(:mod:`retrieval.web.extraction`) use when trafilatura gives no main text
(a short note, a bare list, unusual markup) or the page is too big for it.

It runs on the standard library's incremental ``HTMLParser``, so a huge page
streams through in blocks. It keeps visible text only: the contents of
scripts, styles and other elements that are never rendered as text never
become text, and neither does page furniture (navigation, header, footer,
forms). Headings become the sections' heading paths; paragraphs are
separated by blank lines. The ``<title>`` is kept apart (``title``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser

from retrieval.parsing.line_sections import TEXT_SECTION_CHARS, TEXT_SECTION_HARD_CHARS
from retrieval.parsing.markup import HeadingStack
from retrieval.parsing.section import Section

# Elements whose content is never shown as text, or is page furniture.
_SKIPPED_TAGS = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "svg", "canvas",
     "head", "nav", "header", "footer", "aside", "form", "button", "select", "textarea"}
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "br", "tr", "section", "article", "main", "pre", "blockquote",
     "table", "ul", "ol", "dd", "dt", "hr", "figcaption", "td", "th"}
)  # fmt: skip
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
# Elements that never have an end tag: one must not open a skipped region.
_VOID_TAGS = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr", "source"}
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


class HtmlText(HTMLParser):
    """Feed HTML in pieces with :meth:`sections`; read ``title`` after."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._headings = HeadingStack()
        self._skip_depth = 0
        self._in_title = False
        self._title: list[str] = []
        self._heading_level: int | None = None
        self._heading_text: list[str] = []
        self._text: list[str] = []
        self._size = 0
        self._ready: list[Section] = []

    @property
    def title(self) -> str:
        return _SPACES.sub(" ", "".join(self._title)).strip()

    def sections(self, blocks: Iterable[str]) -> Iterator[Section]:
        """Sections of the page fed in ``blocks``, as soon as each is complete
        (at a heading, or past ``TEXT_SECTION_CHARS`` at a block's end)."""
        for block in blocks:
            self.feed(block)
            yield from self._drain()
        self.close()
        self._flush()
        yield from self._drain()

    def _drain(self) -> Iterator[Section]:
        ready, self._ready = self._ready, []
        yield from ready

    def _flush(self) -> None:
        raw = "".join(self._text)
        self._text, self._size = [], 0
        paragraphs = (_SPACES.sub(" ", p).strip() for p in raw.split("\n"))
        text = "\n\n".join(p for p in paragraphs if p)
        if text:
            self._ready.append(Section(text, heading_path=self._headings.path))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag == "title":
            self._in_title = True
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag in _HEADING_TAGS:
            self._heading_level = _HEADING_TAGS[tag]
            self._heading_text = []
        elif tag in _BLOCK_TAGS:
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif self._skip_depth:
            return
        elif tag in _HEADING_TAGS and self._heading_level is not None:
            title = " ".join("".join(self._heading_text).split())
            level, self._heading_level = self._heading_level, None
            if title:
                self._flush()
                self._headings.push(level, title)
        elif tag in _BLOCK_TAGS:
            self._text.append("\n")
            if self._size >= TEXT_SECTION_CHARS:
                self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:  # inside <head>, which is skipped for text
            self._title.append(data)
            return
        if self._skip_depth:
            return
        if self._heading_level is not None:
            self._heading_text.append(data)
            return
        # One enormous element is cut (at spaces) rather than held whole.
        while self._size + len(data) > TEXT_SECTION_HARD_CHARS:
            room = TEXT_SECTION_HARD_CHARS - self._size
            cut = data.rfind(" ", 0, room) + 1 or room
            self._text.append(data[:cut])
            self._flush()
            data = data[cut:]
        self._text.append(data)
        self._size += len(data)


def page_sections(html: str) -> tuple[str, list[Section]]:
    """``(title, sections)`` of a page held in memory."""
    parser = HtmlText()
    sections = list(parser.sections([html]))
    return parser.title, sections


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)``: the sections' text, headings left out, one blank
    line between paragraphs."""
    title, sections = page_sections(html)
    return title, "\n\n".join(section.text for section in sections)
