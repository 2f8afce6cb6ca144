"""The numbered sources under an answer, and how a source is opened.

A document row shows the file name, where in it (page, heading or lines) and
a short excerpt; a web row shows the page title, its domain and the full URL,
so the user sees where a click goes before clicking. Clicking a row, or an
inline citation [n] in the answer (a ``cite:n`` link, see
``app.widgets.markdown_render``), opens the source: the file with the system's
viewer, the page in the system's browser. Rows take keyboard focus (Tab) and
open with Enter or Space. A PDF opens at the cited page where the viewer can
be told (``app.widgets.pdf_viewer`` on Linux, the ``#page=`` fragment elsewhere), and
what happened is said (``source_notes()``): a source nothing could open is
never a silent click. A passage from a collection on a Chroma server whose
file this computer cannot reach (another machine's path, no path mapping)
is shown whole in its row instead.
"""

from __future__ import annotations

import html
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QObject, QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from app.style import colors
from app.widgets.pdf_viewer import Viewer, default_pdf_viewer, page_command
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


@dataclass(frozen=True)
class OpenOutcome:
    """What opening a source did, in a sentence for the status line."""

    ok: bool
    message: str
    # Nothing opened, but the passage itself can be shown (a server's file
    # that is not reachable from here).
    show_passage: bool = False


class _SourceNotes(QObject):
    said = Signal(str, bool)  # the sentence, whether the source opened


@lru_cache(maxsize=1)
def source_notes() -> _SourceNotes:
    """Where every source opening is reported (the window shows it: the status
    line when it opened, the banner when it could not)."""
    return _SourceNotes()


@lru_cache(maxsize=1)
def _pdf_viewer() -> Viewer | None:
    # The desktop's default rarely changes while Footnote runs; asking costs
    # a process start, so it is asked once, on the first PDF opened at a page.
    return default_pdf_viewer()


def _launch(command: list[str]) -> bool:
    return bool(QProcess.startDetached(command[0], command[1:]))


def _open_url(url: QUrl) -> bool:
    return bool(QDesktopServices.openUrl(url))


def open_source(
    source: Passage,
    *,
    platform: str = sys.platform,
    viewer: Callable[[], Viewer | None] | None = None,
    launch: Callable[[list[str]], bool] | None = None,
    open_url: Callable[[QUrl], bool] | None = None,
) -> OpenOutcome:
    """Open a source and say what happened. (The keywords are for tests: no
    real viewer is started by them; by default, this module's functions,
    looked up at each call.)"""
    viewer = viewer or _pdf_viewer
    launch = launch or _launch
    open_url = open_url or _open_url
    url = source_url(source.kind, source.location, platform)
    if url is None:
        log.info("nothing to open for source %r", source.citation)
        return OpenOutcome(False, f"There is nothing to open for {source.citation}.")
    if source.kind == "web":
        if open_url(url):
            return OpenOutcome(True, f"Opened {url.toDisplayString()} in your browser.")
        return OpenOutcome(
            False,
            f"No web browser could be started to open {url.toDisplayString()}. "
            "Copy the address from the source and open it yourself.",
        )
    return _open_document(source, url, platform, viewer=viewer, launch=launch, open_url=open_url)


def _open_document(
    source: Passage,
    url: QUrl,
    platform: str,
    *,
    viewer: Callable[[], Viewer | None],
    launch: Callable[[list[str]], bool],
    open_url: Callable[[QUrl], bool],
) -> OpenOutcome:
    path = str(source.location.get("path") or "")
    name = Path(path).name or path
    server = source.location.get("server")
    if server and not Path(path).exists():
        return OpenOutcome(
            False,
            f"{name} was indexed on {server} and this computer cannot reach it at {path}, so "
            "its passage is shown in full; a path mapping on the Documents page lets it open.",
            show_passage=True,
        )
    if not Path(path).exists():
        return OpenOutcome(
            False,
            f"{name} is no longer at {path} (moved or deleted). "
            "Index its folder again on the Documents page to cite it from its new place.",
        )
    page = source.location.get("page")
    at_page = page is not None and path.lower().endswith(".pdf") and platform.startswith("linux")
    if at_page:
        found = viewer()
        command = page_command(found, path, int(str(page))) if found is not None else None
        if found is not None and command is not None and launch(command):
            return OpenOutcome(True, f"Opened {name} at page {page} in {found.name}.")
    if not open_url(url):
        return OpenOutcome(
            False,
            f"No program on this computer could open {name}. Install a viewer for this "
            f"kind of file, or open it yourself: {path}",
        )
    if at_page:
        return OpenOutcome(
            True,
            f"Opened {name}; your PDF viewer cannot be told the page, so go to page {page}.",
        )
    return OpenOutcome(True, f"Opened {name}.")


def row_html(number: int, source: Passage, *, whole: bool = False) -> str:
    location = source.location
    scheme = colors.current()
    accent, muted = scheme["accent_text"], scheme["muted"]
    if source.kind == "web":
        url = str(location.get("url") or "")
        domain = urlsplit(url).hostname or ""
        title = str(location.get("title") or "").strip() or domain or url
        return (
            f'<span style="color:{accent};">[{number}]</span>&nbsp; <b>{html.escape(title)}</b>'
            f'&nbsp; <span style="color:{muted};">· {html.escape(domain)} · web page</span><br>'
            f'<span style="color:{accent};">{html.escape(url)}</span>'
        )
    name = Path(str(location.get("path") or "")).name or source.citation
    where = where_in(location)
    excerpt = " ".join(source.text.split())
    if len(excerpt) > EXCERPT_CHARS and not whole:
        excerpt = excerpt[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
    detail = f'&nbsp; <span style="color:{muted};">· {html.escape(where)}</span>' if where else ""
    return (
        f'<span style="color:{accent};">[{number}]</span>&nbsp; <b>{html.escape(name)}</b>{detail}'
        f'<br><span style="color:{muted};">{html.escape(excerpt)}</span>'
    )


def row_name(number: int, source: Passage) -> str:
    """What a screen reader says for a row: "Source 2: guide.pdf, p. 4"."""
    location = source.location
    if source.kind == "web":
        url = str(location.get("url") or "")
        title = str(location.get("title") or "").strip() or urlsplit(url).hostname or url
        return f"Source {number}: {title}, web page"
    name = Path(str(location.get("path") or "")).name or source.citation
    where = where_in(location)
    return f"Source {number}: {name}" + (f", {where}" if where else "")


class SourceRow(QLabel):
    """One source; a click anywhere on it, or Enter/Space while it has
    keyboard focus, opens it."""

    activated = Signal(int)  # its number

    def __init__(self, number: int, source: Passage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.number = number
        self.source = source
        self.whole = False  # the whole passage is shown (its file could not be opened)
        self.setObjectName("sourceRow")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setText(row_html(number, source))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        url = source_url(source.kind, source.location)
        target = url.toDisplayString() if url is not None else "nothing to open"
        self.setToolTip(f"Open {target}")
        self.setAccessibleName(row_name(number, source))
        self.setAccessibleDescription(f"Press Enter to open {target}")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(self.number)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.activated.emit(self.number)
            return
        super().keyPressEvent(event)


class SourcesPanel(QFrame):
    """The answer's sources, numbered as the answer cites them."""

    def __init__(self, sources: Sequence[Passage], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesPanel")  # its look: assets/style.qss
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(6)
        title = QLabel("SOURCES")
        title.setObjectName("sourcesTitle")
        title.setAccessibleName(f"Sources ({len(sources)})")
        layout.addWidget(title)
        self.sources = list(sources)
        self.rows: list[SourceRow] = []
        for number, source in enumerate(self.sources, start=1):
            row = SourceRow(number, source)
            row.activated.connect(self.open)
            layout.addWidget(row)
            self.rows.append(row)

    def restyle(self) -> None:
        """The theme changed: the rows' inline colours are rendered again."""
        for row in self.rows:
            row.setText(row_html(row.number, row.source, whole=row.whole))

    def open(self, number: int) -> bool:
        """Open source ``number`` (1-based, as cited) and say what happened
        (``source_notes``); False if there is none or it could not be opened."""
        if not 1 <= number <= len(self.sources):
            return False
        outcome = open_source(self.sources[number - 1])
        if outcome.show_passage:
            row = self.rows[number - 1]
            row.whole = True
            row.setText(row_html(number, row.source, whole=True))
        source_notes().said.emit(outcome.message, outcome.ok)
        return outcome.ok
