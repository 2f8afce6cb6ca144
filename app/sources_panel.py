"""The numbered sources under an answer, and how a source is opened.

A document row shows the file name, where in it (page, heading or lines) and
a short excerpt; a web row shows the page title, its domain and the full URL,
so the user sees where a click goes before clicking. Clicking a row, or an
inline citation [n] in the answer (a ``cite:n`` link, see
``app.markdown_render``), opens the source: the file with the system's
viewer, the page in the system's browser.
"""

from __future__ import annotations

import html
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from engine.context import Passage

log = logging.getLogger(__name__)

EXCERPT_CHARS = 160
WEB_SCHEMES = frozenset({"http", "https"})
# Which systems' default PDF handlers are given "#page=N". xdg-open (Linux)
# treats a file URL with a fragment as a file that does not exist, so there
# the PDF opens at its first page; elsewhere the viewer may honour it.
PAGE_FRAGMENT_PLATFORMS = frozenset({"darwin", "win32"})


def where_in(location: Mapping[str, Any]) -> str:
    """Where in a document: "p. 3", "Setup › Linux", "lines 10–42", or ""."""
    if location.get("page") is not None:
        return f"p. {location['page']}"
    headings = location.get("heading_path")
    if isinstance(headings, (list, tuple)) and headings:
        return " › ".join(str(h) for h in headings)
    start, end = location.get("line_start"), location.get("line_end")
    if start is not None:
        return f"lines {start}–{end}" if end not in (None, start) else f"line {start}"
    return ""


def source_url(kind: str, location: Mapping[str, Any], platform: str = sys.platform) -> QUrl | None:
    """What opening a source opens; None when there is nothing safe to open
    (a web source whose address is not http(s), a document without a path)."""
    if kind == "web":
        url = str(location.get("url") or "")
        if urlsplit(url).scheme.lower() not in WEB_SCHEMES:
            return None
        return QUrl(url)
    path = str(location.get("path") or "")
    if not path:
        return None
    file_url = QUrl.fromLocalFile(path)
    page = location.get("page")
    if page is not None and path.lower().endswith(".pdf") and platform in PAGE_FRAGMENT_PLATFORMS:
        file_url.setFragment(f"page={int(page)}")
    return file_url


def open_source(source: Passage) -> bool:
    url = source_url(source.kind, source.location)
    if url is None:
        log.info("nothing to open for source %r", source.citation)
        return False
    return bool(QDesktopServices.openUrl(url))


def row_html(number: int, source: Passage) -> str:
    location = source.location
    if source.kind == "web":
        url = str(location.get("url") or "")
        domain = urlsplit(url).hostname or ""
        title = str(location.get("title") or "").strip() or domain or url
        return (
            f'<span style="color:#3b63f0;">[{number}]</span>&nbsp; <b>{html.escape(title)}</b>'
            f'&nbsp; <span style="color:#6b7280;">· {html.escape(domain)} · web page</span><br>'
            f'<span style="color:#3b63f0;">{html.escape(url)}</span>'
        )
    name = Path(str(location.get("path") or "")).name or source.citation
    where = where_in(location)
    excerpt = " ".join(source.text.split())
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
    detail = f'&nbsp; <span style="color:#6b7280;">· {html.escape(where)}</span>' if where else ""
    return (
        f'<span style="color:#3b63f0;">[{number}]</span>&nbsp; <b>{html.escape(name)}</b>{detail}'
        f'<br><span style="color:#6b7280;">{html.escape(excerpt)}</span>'
    )


class SourceRow(QLabel):
    """One source; a click anywhere on it opens it."""

    activated = Signal(int)  # its number

    def __init__(self, number: int, source: Passage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.number = number
        self.source = source
        self.setObjectName("sourceRow")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setText(row_html(number, source))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        url = source_url(source.kind, source.location)
        target = url.toDisplayString() if url is not None else "nothing to open"
        self.setToolTip(f"Open {target}")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(self.number)
        super().mouseReleaseEvent(event)


class SourcesPanel(QFrame):
    """The answer's sources, numbered as the answer cites them."""

    def __init__(self, sources: Sequence[Passage], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesPanel")
        self.setStyleSheet(
            "#sourcesPanel { border-top: 1px solid #e3e6ea; }"
            "#sourcesTitle { color: #6b7280; font-size: 11px; font-weight: 600; }"
            "#sourceRow { font-size: 12px; padding: 2px 0; }"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(6)
        title = QLabel("SOURCES")
        title.setObjectName("sourcesTitle")
        layout.addWidget(title)
        self.sources = list(sources)
        self.rows: list[SourceRow] = []
        for number, source in enumerate(self.sources, start=1):
            row = SourceRow(number, source)
            row.activated.connect(self.open)
            layout.addWidget(row)
            self.rows.append(row)

    def open(self, number: int) -> bool:
        """Open source ``number`` (1-based, as cited); False if there is none."""
        if not 1 <= number <= len(self.sources):
            return False
        return open_source(self.sources[number - 1])
