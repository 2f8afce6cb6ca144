"""Sections grouped into the runs the chunker cuts: one page and heading path each.

Before grouping, every section loses its invisible characters
(``parsing.invisible``) and a section left without a letter or digit is
dropped: a table rule, a row of asterisks, a megabyte of NULs is not a
passage anyone can be shown.

A run whose text is tiny (under ``min_tokens`` word pieces: "See below.",
"Contents:", the stub under a chapter heading) would make a chunk that is
mostly its heading, and such a chunk matches any question about the heading
while answering none. It is carried into the next run instead, when that run
lies under it (same page, and its heading path extends the tiny one's: "A",
then "A › B"). The merged chunk takes the deeper heading path, A › B, for its
locator and its heading line, because a chunk's locator names one heading and
nearly all of the merged text is B's; the line range still starts at A's
line, so opening the citation shows A's lines too. A tiny run followed by a
sibling or an unrelated heading stays a chunk of its own: attached there its
locator would name a heading it is not under.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, groupby

from retrieval.parsing.invisible import strip_invisible
from retrieval.parsing.section import Section

# Below this many word pieces of text (special tokens not counted), a run
# merges into the run under it. About one short sentence: "Wayland needs no
# extra setup." (7) stays a passage of its own when it cannot merge.
CHUNK_MIN_TOKENS = 8
# A run longer than this is not tiny whatever its tokens: the check then
# never holds more than this much text back from the chunker.
_TINY_MAX_CHARS = 256

_HAS_WORD = re.compile(r"[^\W_]")  # a letter or digit, in any script

RunKey = tuple[int | None, tuple[str, ...]]  # page, heading path


def has_content(text: str) -> bool:
    """Whether ``text`` holds a letter or a digit."""
    return _HAS_WORD.search(text) is not None


def clean_sections(sections: Iterable[Section]) -> Iterator[Section]:
    """``sections`` without invisible characters; those left without content dropped."""
    for section in sections:
        text = strip_invisible(section.text)
        if not has_content(text):
            continue
        yield section if text is section.text else dataclasses.replace(section, text=text)


def runs(
    sections: Iterable[Section], body_tokens: Callable[[str], int], min_tokens: int
) -> Iterator[tuple[RunKey, Iterator[Section]]]:
    """Consecutive sections that share a page and a heading path, tiny runs
    carried into the run under them. Each run must be consumed before the
    next is asked for (as with ``itertools.groupby``)."""
    pending: tuple[RunKey, list[Section]] | None = None
    for key, group in groupby(sections, key=lambda s: (s.page, s.heading_path)):
        run: Iterator[Section] = group
        if pending is not None:
            tiny_key, tiny = pending
            pending = None
            if _lies_under(key, tiny_key):
                run = chain((dataclasses.replace(s, heading_path=key[1]) for s in tiny), run)
            else:
                yield tiny_key, iter(tiny)
        head, ended = _peek(run, _TINY_MAX_CHARS)
        if ended and body_tokens("\n\n".join(s.text for s in head)) < min_tokens:
            pending = (key, head)
            continue
        yield key, chain(head, run)
    if pending is not None:
        yield pending[0], iter(pending[1])


def _lies_under(key: RunKey, parent: RunKey) -> bool:
    (page, path), (parent_page, parent_path) = key, parent
    return (
        page == parent_page
        and len(path) > len(parent_path)
        and path[: len(parent_path)] == parent_path
    )


def _peek(run: Iterator[Section], max_chars: int) -> tuple[list[Section], bool]:
    """The run's first sections, up to just past ``max_chars`` of text, and
    whether that was all of it."""
    head: list[Section] = []
    chars = 0
    for section in run:
        head.append(section)
        chars += len(section.text)
        if chars > max_chars:
            return head, False
    return head, True
