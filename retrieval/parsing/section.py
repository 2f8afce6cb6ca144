"""The unit every parser yields: a run of text and where in the file it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None  # 1-based PDF page
    heading_path: tuple[str, ...] = ()  # enclosing headings, outermost first
    line_start: int | None = None  # 1-based, inclusive, in the file as stored
    line_end: int | None = None

    def as_tuple(self) -> tuple[str, int | None, tuple[str, ...], int | None, int | None]:
        """Compact form for the worker's pipe (pickles faster than the dataclass)."""
        return (self.text, self.page, self.heading_path, self.line_start, self.line_end)

    @classmethod
    def from_tuple(
        cls, values: tuple[str, int | None, tuple[str, ...], int | None, int | None]
    ) -> Section:
        return cls(*values)
