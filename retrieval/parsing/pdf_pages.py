"""PDF: one section per page, with its 1-based page number, via pypdfium2.

pdfium loads pages lazily, so a 2,000-page PDF streams page by page; each page
and its text page are closed at once, keeping memory flat. An encrypted file
is refused with its own state, and a PDF in which no page has a text layer is
reported as scanned (Footnote does no OCR) instead of silently giving nothing.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from retrieval.discovery import display_path
from retrieval.errors import ParseFailed
from retrieval.parsing.section import Section

# pdfium marks soft hyphens and unmapped glyphs with control characters.
_PDFIUM_JUNK = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\ufffe\uffff]")
# Bookmarks read at most; a hostile outline cannot make the TOC the slow part.
MAX_OUTLINE_ENTRIES = 10_000
MAX_OUTLINE_DEPTH = 8


def pdf_sections(path: Path) -> Iterator[Section]:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]
    import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

    name = display_path(path.name)
    # A file object, not the path: pdfium's own path handling cannot open
    # names that are not valid UTF-8.
    with path.open("rb") as handle:
        try:
            document = pdfium.PdfDocument(handle)
        except pdfium.PdfiumError as exc:
            if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
                raise ParseFailed(
                    "encrypted",
                    f"{name}: the PDF is encrypted; Footnote cannot read password-protected files",
                    detail=str(exc),
                ) from exc
            raise ParseFailed(
                "failed",
                f"{name}: the PDF is damaged or not a PDF; open and re-save it, then retry",
                detail=str(exc),
            ) from exc
        try:
            pages_with_text = 0
            page_count = len(document)
            headings = _outline_by_page(document, page_count)
            for index in range(page_count):
                page = document[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        raw = textpage.get_text_bounded()
                    finally:
                        textpage.close()
                finally:
                    page.close()
                text = _clean(raw)
                if text:
                    pages_with_text += 1
                    yield Section(text, page=index + 1, heading_path=headings(index))
        finally:
            document.close()
    if page_count == 0:
        raise ParseFailed("no_text", f"{name}: the PDF has no pages")
    if pages_with_text == 0:
        raise ParseFailed(
            "no_text",
            f"{name}: no page has a text layer; it looks scanned, and Footnote does not do OCR",
            detail=f"{page_count} pages, none with text",
        )


def _clean(raw: str) -> str:
    # pdfium writes a word hyphenated at a line end as "docu\x02\r\nment":
    # join it, then normalize line ends and drop the other marker characters.
    text = raw.replace("\x02\r\n", "").replace("\r\n", "\n").replace("\r", "\n")
    return _PDFIUM_JUNK.sub("", text).strip()


def _outline_by_page(document: Any, page_count: int) -> Callable[[int], tuple[str, ...]]:
    """The PDF's bookmarks (its table of contents) as a heading path per page:
    a page is under the last bookmark that starts on or before it. Chunks
    then carry "Chapter 2 › Results" like a DOCX would, while citations keep
    the page. A damaged outline only costs the headings, never the file."""
    starts: list[tuple[int, int, tuple[str, ...]]] = []  # (page index, order, path)
    stack: list[str] = []
    try:
        for order, bookmark in enumerate(document.get_toc(max_depth=MAX_OUTLINE_DEPTH)):
            if order >= MAX_OUTLINE_ENTRIES:
                break
            del stack[bookmark.level :]
            stack.append(" ".join((bookmark.get_title() or "").split()) or "…")
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and 0 <= index < page_count:
                starts.append((index, order, tuple(stack)))
    except Exception:  # noqa: BLE001  (an unreadable outline is not a failed file)
        starts = []
    starts.sort()
    first_pages = [start[0] for start in starts]

    def headings(page_index: int) -> tuple[str, ...]:
        at = bisect.bisect_right(first_pages, page_index)
        return starts[at - 1][2] if at else ()

    return headings
