"""HTML: the main text (no menus, scripts or footers) under its headings.

trafilatura finds the main content and writes it as Markdown (headings as
``#``), which the Markdown scanner turns into sections with heading paths.
It needs the whole page in memory and returns nothing for pages it judges to
have no main content (a short note, a bare list), so files over
``TRAFILATURA_MAX_BYTES``, and pages it rejects, go through a streaming
fallback (:mod:`retrieval.parsing.html_text`, which fetched web pages use
too): it drops script/style/navigation/boilerplate elements and keeps
headings and blocks.
Line numbers of the derived text are not lines of the file, so HTML sections
carry heading paths only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from retrieval.parsing.html_text import HtmlText
from retrieval.parsing.markup import markdown_sections
from retrieval.parsing.section import Section
from retrieval.parsing.text_stream import iter_text_blocks, lines_of

# trafilatura builds the whole DOM; past this a page goes to the streaming
# fallback, so a huge page neither holds gigabytes nor stalls past the
# worker's progress timeout (saved web pages are rarely over 2 MB).
TRAFILATURA_MAX_BYTES = 8 * 1024 * 1024


def html_sections(path: Path, encoding: str) -> Iterator[Section]:
    if path.stat().st_size <= TRAFILATURA_MAX_BYTES:
        import trafilatura

        markdown = trafilatura.extract(
            path.read_bytes(),
            output_format="markdown",
            include_tables=True,
            include_comments=False,
            favor_recall=True,  # a saved page is the user's own choice: keep more
        )
        if markdown and markdown.strip():
            for section in markdown_sections(lines_of(iter([markdown]))):
                yield dataclasses.replace(section, line_start=None, line_end=None)
            return
    yield from HtmlText().sections(iter_text_blocks(path, encoding))
