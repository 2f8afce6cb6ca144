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
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from app.markdown_render import markdown_to_html, parse_blocks


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
