"""DOCX: paragraphs and tables in document order, under their heading paths.

A heading is a paragraph whose style is a built-in heading ("Heading 1" …
"Heading 9", "Title") or that has an outline level, directly or through its
style's base styles; the outline level catches headings in documents written
with a localized Word, whose style names are not English. Tables become rows
of ``cell | cell`` text. DOCX has no fixed pages (they depend on rendering),
so sections carry heading paths only.

python-docx reads the whole document.xml with lxml; a DOCX is a compressed
archive whose text is rarely more than a few MB, and the worker's memory cap
bounds a hostile one.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.discovery import display_path
from retrieval.errors import ParseFailed
from retrieval.parsing.line_sections import TEXT_SECTION_CHARS
from retrieval.parsing.markup import HeadingStack
from retrieval.parsing.section import Section

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_BODY_TEXT_OUTLINE_LEVEL = 9  # w:outlineLvl 9 means "body text"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: encrypted Office, .doc


def docx_sections(path: Path) -> Iterator[Section]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from lxml.etree import XMLSyntaxError  # type: ignore[import-untyped]

    name = display_path(path.name)
    with path.open("rb") as handle:
        if handle.read(len(_OLE_MAGIC)) == _OLE_MAGIC:
            # Word saves a password-protected .docx inside an OLE container.
            raise ParseFailed(
                "encrypted",
                f"{name}: the Word file is password-protected; Footnote cannot read it",
            )
        handle.seek(0)
        try:
            document = docx.Document(handle)
        except (
            PackageNotFoundError,
            zipfile.BadZipFile,
            KeyError,
            ValueError,
            XMLSyntaxError,  # a broken document.xml or styles.xml inside the archive
        ) as exc:
            raise ParseFailed(
                "failed",
                f"{name}: the Word file is damaged or not a .docx; open and re-save it, then retry",
                detail=repr(exc),
            ) from exc
    headings = HeadingStack()
    parts: list[str] = []
    size = 0

    def flush() -> Iterator[Section]:
        nonlocal parts, size
        text = "\n\n".join(parts).strip()
        parts, size = [], 0
        if text:
            yield Section(text, heading_path=headings.path)

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            text = _table_text(block)
        else:
            text = block.text.strip()
            level = _heading_level(block)
            if level is not None and text:
                yield from flush()
                headings.push(level, re.sub(r"\s+", " ", text))
                continue
        if text:
            parts.append(text)
            size += len(text)
            if size >= TEXT_SECTION_CHARS:
                yield from flush()
    yield from flush()


def _heading_level(paragraph: Any) -> int | None:
    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    if name.lower() == "title":
        return 0
    if match := _HEADING_STYLE.match(name):
        return int(match.group(1))
    level = _outline_level(paragraph._p)
    while level is None and style is not None:
        level = _outline_level(style.element)
        style = style.base_style
    if level is None or level >= _BODY_TEXT_OUTLINE_LEVEL:
        return None
    return level + 1


def _outline_level(element: Any) -> int | None:
    found = element.find(f"{{{_W_NS}}}pPr/{{{_W_NS}}}outlineLvl")
    if found is None:
        return None
    try:
        return int(found.get(f"{{{_W_NS}}}val"))
    except (TypeError, ValueError):
        return None


def _table_text(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if seen and seen[-1] is cell._tc:
                continue
            seen.append(cell._tc)
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
