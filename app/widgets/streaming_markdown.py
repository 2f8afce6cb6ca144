"""Render a growing Markdown answer in time proportional to what changed.

Re-rendering the whole answer every tick costs O(length) per tick, so
O(length²) over an answer: a 1,500-token answer spends most of its last
seconds re-parsing its first paragraphs. But once a later top-level block
(paragraph, list, code fence, table, heading) has begun, the blocks before
it can no longer change: appending text only ever extends the last one. So
those are rendered once ("frozen") and only the open tail block is
re-rendered. The finished answer is rendered whole once more at the end,
which also settles what a tail-only parse cannot see (a reference-style
link defined after its use).

A long finished answer is shown in pieces (``display_pieces``): groups of
whole blocks of about ``PIECE_CHARS``, each its own label, laid out a few
per event-loop turn, so neither Markdown nor Qt's rich-text layout holds the
window for seconds. One block too long to lay out at once (a paragraph of
40,000 links) is shown as plain text in slices instead.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field

from app.widgets.markdown_render import markdown_to_html, parse_blocks

# An answer longer than this is shown piece by piece (a few pieces per turn
# of the event loop); shorter ones as one label, so a selection spans it.
LONG_ANSWER_CHARS = 20_000
PIECE_CHARS = 8_000  # whole blocks are grouped into labels of about this size
# One block longer than this is shown as plain text, in slices of this size:
# Qt's rich-text layout of a 1 MB paragraph takes over ten seconds, of a
# 16,000-character one a few tens of milliseconds.
MAX_RICH_BLOCK_CHARS = 16_000


@dataclass(frozen=True)
class Piece:
    """Part of a long answer to show as one label."""

    text: str  # the Markdown source
    rich: bool = True  # False: too long to lay out as rich text; shown plain

    def to_html(self, citations: int) -> str:
        if self.rich:
            return markdown_to_html(self.text, citations=citations)
        return html.escape(self.text).replace("\n", "<br>")


def display_pieces(text: str) -> list[Piece]:
    """``text`` as pieces of whole top-level blocks, in order."""
    offsets = _line_offsets(text)
    bounds = [offsets[line] for line in parse_blocks(text)]
    bounds = [0, *bounds[1:], len(text)] if bounds else [0, len(text)]
    pieces: list[Piece] = []
    start = 0
    for begin, end in itertools.pairwise(bounds):
        if end - begin > MAX_RICH_BLOCK_CHARS:
            if begin > start:
                pieces.append(Piece(text[start:begin]))
            pieces.extend(_plain_slices(text[begin:end]))
            start = end
        elif end - start >= PIECE_CHARS:
            pieces.append(Piece(text[start:end]))
            start = end
    if start < len(text) and text[start:].strip():
        pieces.append(Piece(text[start:]))
    return pieces


def _plain_slices(block: str) -> list[Piece]:
    """A huge block in slices cut at a space or line break where there is one."""
    slices: list[Piece] = []
    while block:
        cut = len(block)
        if cut > MAX_RICH_BLOCK_CHARS:
            space = max(
                block.rfind(" ", 0, MAX_RICH_BLOCK_CHARS),
                block.rfind("\n", 0, MAX_RICH_BLOCK_CHARS),
            )
            cut = space + 1 if space > 0 else MAX_RICH_BLOCK_CHARS
        slices.append(Piece(block[:cut], rich=False))
        block = block[cut:]
    return slices


@dataclass
class StreamedHtml:
    """What changed since the last update."""

    frozen: list[str] = field(default_factory=list)  # HTML of blocks that just became final
    tail: str = ""  # HTML of the block still being written


class StreamingMarkdown:
    def __init__(self) -> None:
        self._frozen_chars = 0  # text[:_frozen_chars] is rendered and final

    def reset(self) -> None:
        self._frozen_chars = 0

    @property
    def frozen_chars(self) -> int:
        return self._frozen_chars

    def update(self, text: str) -> StreamedHtml:
        """``text`` is the whole answer so far (it only ever grows)."""
        tail = text[self._frozen_chars :]
        starts = parse_blocks(tail)
        update = StreamedHtml()
        if len(starts) > 1:
            offsets = _line_offsets(tail)
            # Every block but the last is complete: render each once.
            bounds = [offsets[line] for line in starts]
            for begin, end in itertools.pairwise(bounds):
                update.frozen.append(markdown_to_html(tail[begin:end]))
            self._frozen_chars += bounds[-1]
            tail = tail[bounds[-1] :]
        update.tail = markdown_to_html(tail) if tail.strip() else ""
        return update


def _line_offsets(text: str) -> list[int]:
    """Character offset of the start of each line (and one past the end)."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets
