"""Turning files into sections of text with locators (page, headings, lines).

``parse_file`` (in ``retrieval.parsing.worker``) parses in a worker process
with a timeout and a memory cap, for untrusted files; ``iter_sections`` does
the same in this process. ``sniff_kind`` says which parser a file gets.
"""

from retrieval.parsing.parsers import iter_sections
from retrieval.parsing.section import Section
from retrieval.parsing.sniff import FileKind, sniff, sniff_kind

__all__ = ["FileKind", "Section", "iter_sections", "sniff", "sniff_kind"]
