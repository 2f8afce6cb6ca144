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

from retrieval.web.html_text import html_to_text
from retrieval.web.http_fetch import FetchedPage

MAX_PDF_PAGES = 200  # a long PDF's first pages; ranking only needs a few passages
PDF_PARSE_TIMEOUT_S = 10.0  # longest wait for the parser's next batch of pages
_PDF_PARSER = "retrieval.parsing.pdf_pages:pdf_sections"
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


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

    markdown = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
    )
    fallback_title, fallback_text = html_to_text(html)
    metadata = trafilatura.extract_metadata(html, default_url=url)
    title = (metadata.title if metadata is not None and metadata.title else "") or fallback_title
    if markdown and markdown.strip():
        return ExtractedPage(url, title, tuple(_markdown_blocks(markdown)))
    blocks = [TextBlock(line) for line in fallback_text.split("\n") if line.strip()]
    return ExtractedPage(url, title, tuple(blocks))


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
