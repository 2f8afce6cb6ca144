"""Turning files into sections of text with locators (page, headings, lines).

``parse_file`` (in ``retrieval.parsing.worker``) parses in a worker process
with a progress timeout and a memory cap, for untrusted files;
``iter_sections`` does the same in this process (tests, benchmarks).
``sniff`` / ``sniff_kind`` say which parser a file gets: PDF (a section per
page, headings from its bookmarks), DOCX and Markdown/RST/HTML (sections under
heading paths), code and plain text (sections with line ranges), anything
else by content (text in its detected encoding, binary refused).

A file that yields nothing raises ``retrieval.errors.ParseFailed`` with a
``state`` for the manifest: "encrypted", "no_text" (scanned PDF), "binary",
"unreadable" (missing, a folder, a pipe, no permission), "timeout",
"too_large_memory" or "failed" (damaged, or the parser crashed), and a
one-line ``message`` that names the file. An empty file yields no sections
and no error.
"""

from retrieval.parsing.parsers import iter_sections
from retrieval.parsing.section import Section
from retrieval.parsing.sniff import FileKind, sniff, sniff_kind

__all__ = ["FileKind", "Section", "iter_sections", "sniff", "sniff_kind"]
