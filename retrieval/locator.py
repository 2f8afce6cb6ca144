"""Where a passage comes from, for machines (open it) and for people (cite it).

A locator travels with every chunk and passage: the chat turn shows its
``citation()`` and the app opens ``path`` at ``page`` or ``url``. It is plain
data (``to_dict``/``from_dict``) so it can be stored with an answer and read
back when the conversation is reopened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Literal
from urllib.parse import urlsplit

SourceKind = Literal["document", "web"]


@dataclass(frozen=True)
class Locator:
    kind: SourceKind
    # Documents
    path: str | None = None  # absolute path of the file
    page: int | None = None  # 1-based PDF page
    # Markdown/DOCX/HTML headings (PDF bookmarks), outermost first
    heading_path: tuple[str, ...] = field(default=())
    line_start: int | None = None  # 1-based, inclusive (code and plain text)
    line_end: int | None = None
    # The Chroma server that holds the passage (a shared collection): its
    # file may not be reachable from this computer (see server_collections).
    server: str | None = None
    # Web
    url: str | None = None
    title: str | None = None

    def citation(self) -> str:
        """A short human citation: "report.pdf, p. 3", "notes.md › Setup",
        "main.py, lines 10–42", "Page title — example.org"."""
        if self.kind == "web":
            domain = urlsplit(self.url or "").hostname or ""
            title = (self.title or "").strip() or domain or (self.url or "web page")
            return f"{title} — {domain}" if domain and domain not in title else title
        name = PurePath(self.path or "").name or "document"
        if self.page is not None:
            return f"{name}, p. {self.page}"
        if self.heading_path:
            return f"{name} › {' › '.join(self.heading_path)}"
        if self.line_start is not None:
            if self.line_end is not None and self.line_end != self.line_start:
                return f"{name}, lines {self.line_start}–{self.line_end}"
            return f"{name}, line {self.line_start}"
        return name

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        if self.heading_path:
            data["heading_path"] = list(self.heading_path)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Locator:
        values = dict(data)
        values["heading_path"] = tuple(values.get("heading_path") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})
