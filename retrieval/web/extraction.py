"""Readable text out of a fetched page: HTML and XHTML through trafilatura
(main content with its headings; navigation, ads, scripts and styles left
out), plain text as is, PDFs page by page through the documents' parser
(``retrieval.parsing``, in its worker process).

Text from the web is untrusted data. It is extracted as text and nothing
else: a page's "ignore previous instructions" stays a sentence in a quoted
passage, and the engine tells the model that sources are data, not
instructions. Scripts and styles never become text, on either path.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from retrieval.parsing.html_text import page_sections
from retrieval.web.http_fetch import FetchedPage

MAX_PDF_PAGES = 200  # a long PDF's first pages; ranking only needs a few passages
PDF_PARSE_TIMEOUT_S = 10.0  # longest wait for the parser's next batch of pages
_PDF_PARSER = "retrieval.parsing.pdf_pages:pdf_sections"
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
MAX_EXTRACT_HTML_CHARS = 600_000
_NON_TEXT_OPEN = re.compile(r"<(script|style|svg|noscript|template)\b", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)


@dataclass(frozen=True)
class TextBlock:
    text: str
    heading_path: tuple[str, ...] = ()  # the headings above it, outermost first
    page: int | None = None  # 1-based, PDFs only


@dataclass(frozen=True)
class ExtractedPage:
    url: str  # the final URL (after redirects)
    title: str
    blocks: tuple[TextBlock, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


def extract(page: FetchedPage) -> ExtractedPage:
    """Text of ``page``, possibly with no blocks (nothing readable)."""
    if page.content_type == "application/pdf":
        return _extract_pdf(page)
    text = _decode(page)
    if page.content_type == "text/plain":
        blocks = [TextBlock(p.strip()) for p in re.split(r"\n\s*\n", text) if p.strip()]
        return ExtractedPage(page.final_url, "", tuple(blocks))
    return _extract_html(page.final_url, text)


def _decode(page: FetchedPage) -> str:
    if page.charset:
        try:
            return page.body.decode(page.charset, errors="replace")
        except LookupError:
            pass  # an unknown charset name: detect instead
    from charset_normalizer import from_bytes

    best = from_bytes(page.body[:200_000]).best()
    encoding = best.encoding if best is not None else "utf-8"
    return page.body.decode(encoding, errors="replace")


def _extract_html(url: str, html: str) -> ExtractedPage:
    import trafilatura

    # Scripts and styles are most of a heavy page's bytes and never text: drop
    # them before parsing, then bound what the parser gets (3 MB of HTML takes
    # trafilatura seconds, and ranking reads only a page's first chunks).
    html = _strip_non_text(html)[:MAX_EXTRACT_HTML_CHARS]
    document = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        with_metadata=True,  # a front matter with the title: one parse, not two
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
    )
    title, markdown = _split_front_matter(document or "")
    if markdown.strip():
        return ExtractedPage(url, title or _html_title(html), tuple(_markdown_blocks(markdown)))
    # No main text found (a short note, a bare list): all visible text.
    fallback_title, sections = page_sections(html)
    blocks = [
        TextBlock(paragraph, section.heading_path)
        for section in sections
        for paragraph in section.text.split("\n\n")
    ]
    return ExtractedPage(url, title or fallback_title, tuple(blocks))


def _strip_non_text(html: str) -> str:
    """``html`` without script/style/svg/noscript/template elements, in one
    linear pass (a regex with a lazy ``.*?`` would rescan the rest of the page
    for every unclosed tag a hostile page opens). An unclosed one runs to the
    end of the page, as it does in a browser."""
    lower = html.lower()
    kept: list[str] = []
    position = 0
    while match := _NON_TEXT_OPEN.search(html, position):
        kept.append(html[position : match.start()])
        end = lower.find(f"</{match.group(1).lower()}", match.end())
        if end < 0:
            return " ".join(kept)
        close = lower.find(">", end)
        position = len(html) if close < 0 else close + 1
        kept.append(" ")
    kept.append(html[position:])
    return "".join(kept)


def _split_front_matter(document: str) -> tuple[str, str]:
    """``(title, markdown)`` from trafilatura's "---\\ntitle: …\\n---" header."""
    if not document.startswith("---\n"):
        return "", document
    header, separator, body = document[4:].partition("\n---\n")
    if not separator:
        return "", document
    title = ""
    for line in header.split("\n"):
        key, _, value = line.partition(": ")
        if key == "title":
            title = value.strip().strip("'\"")
    return title, body


def _html_title(html: str) -> str:
    match = _TITLE.search(html)
    return " ".join(match.group(1).split()) if match else ""


def _markdown_blocks(markdown: str) -> list[TextBlock]:
    """Paragraphs with the heading path above each; headings themselves are
    kept as context, not as blocks."""
    blocks: list[TextBlock] = []
    headings: list[tuple[int, str]] = []
    for paragraph in re.split(r"\n\s*\n", markdown):
        lines = [line for line in paragraph.strip().split("\n") if line.strip()]
        body: list[str] = []
        for line in lines:
            match = _HEADING.match(line)
            if match:
                level = len(match.group(1))
                headings = [h for h in headings if h[0] < level] + [(level, match.group(2))]
            else:
                body.append(line.strip())
        if body:
            blocks.append(TextBlock(" ".join(body), tuple(h[1] for h in headings)))
    return blocks


def _extract_pdf(page: FetchedPage) -> ExtractedPage:
    """Through the documents' parser, in its worker process with a timeout and
    a memory cap: a PDF from the web is the most untrusted file Footnote
    opens, and pdfium hanging or crashing must not take the app with it."""
    from retrieval.errors import ParseFailed
    from retrieval.parsing.worker import parse_file

    with tempfile.TemporaryDirectory(prefix="footnote-web-") as folder:
        path = Path(folder) / "page.pdf"
        path.write_bytes(page.body)
        try:
            # islice: leaving early stops the worker on a very long PDF.
            sections = list(
                islice(
                    parse_file(path, timeout_s=PDF_PARSE_TIMEOUT_S, parser=_PDF_PARSER),
                    MAX_PDF_PAGES,
                )
            )
        except ParseFailed:
            return ExtractedPage(page.final_url, "", ())
    blocks = [
        TextBlock(" ".join(s.text.split()), s.heading_path, s.page)
        for s in sections
        if s.text.strip()
    ]
    # No title: the parser gives text only; the search result's title stands in.
    return ExtractedPage(page.final_url, "", tuple(blocks))
