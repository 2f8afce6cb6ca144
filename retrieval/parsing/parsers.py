"""``iter_sections``: a file's sections, in this process, by the right parser.

Every way a file can fail comes out as ``ParseFailed`` with a state and a
one-line message naming the file, so the worker process and in-process callers
(tests, benchmarks) report the same thing for the same file.
"""

from __future__ import annotations

import stat
import traceback
from collections.abc import Iterator
from pathlib import Path

from retrieval.discovery import display_path
from retrieval.errors import ParseFailed
from retrieval.parsing.section import Section
from retrieval.parsing.sniff import KNOWN_BINARY_SUFFIXES, FileKind, sniff
from retrieval.parsing.text_stream import iter_lines

READABLE_FORMATS = "PDF, Word (.docx), Markdown, reStructuredText, HTML, source code and text"


def iter_sections(path: Path, kind: FileKind | None = None) -> Iterator[Section]:
    """The sections of ``path``; raises ``ParseFailed`` when there are none to give."""
    path = Path(path)
    name = display_path(path.name)
    file_kind = kind
    try:
        _check_regular_file(path, name)
        file_kind = kind if kind is not None else sniff(path)
        yield from _parse(path, file_kind, name)
    except ParseFailed:
        raise
    except FileNotFoundError as exc:
        raise ParseFailed(
            "unreadable",
            f"{name}: the file was moved or deleted before it could be read",
            detail=str(exc),
        ) from exc
    except PermissionError as exc:
        raise ParseFailed(
            "unreadable",
            f"{name}: permission denied; Footnote may not read this file",
            detail=str(exc),
        ) from exc
    except MemoryError as exc:
        raise ParseFailed(
            "too_large_memory",
            f"{name}: reading it needs more memory than a document may use",
            detail="MemoryError",
        ) from exc
    except OSError as exc:
        raise ParseFailed(
            "unreadable", f"{name}: cannot be read ({exc.strerror or exc})", detail=str(exc)
        ) from exc
    except Exception as exc:
        raise ParseFailed(
            "failed",
            f"{name}: {_failure_sentence(path, file_kind)}",
            detail="".join(traceback.format_exception(exc)),
        ) from exc


def _check_regular_file(path: Path, name: str) -> None:
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise ParseFailed("unreadable", f"{name}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        # Opening a named pipe would block until someone writes to it.
        raise ParseFailed("unreadable", f"{name}: not a regular file (a pipe, socket or device)")


def _parse(path: Path, kind: FileKind, name: str) -> Iterator[Section]:
    if kind.kind == "pdf":
        from retrieval.parsing.pdf_pages import pdf_sections

        yield from pdf_sections(path)
    elif kind.kind == "docx":
        from retrieval.parsing.docx_file import docx_sections

        yield from docx_sections(path)
    elif kind.kind == "binary":
        suffix = path.suffix.lower()
        if suffix in KNOWN_BINARY_SUFFIXES:
            message = (
                f"{name}: Footnote cannot read {suffix} files yet; it reads {READABLE_FORMATS}"
            )
        else:
            message = f"{name}: not a text file (binary content); it reads {READABLE_FORMATS}"
        raise ParseFailed("binary", message)
    else:
        encoding = kind.encoding or "utf-8"
        if kind.kind == "html":
            from retrieval.parsing.html_page import html_sections

            yield from html_sections(path, encoding)
            return
        from retrieval.parsing import line_sections, markup

        lines = iter_lines(path, encoding)
        if kind.kind in ("markdown", "rst"):
            headings = markup.HeadingStack()
            read = markup.markdown_sections if kind.kind == "markdown" else markup.rst_sections
            any_text = False
            for section in read(lines, headings):
                any_text = True
                yield section
            if not any_text and headings.pushed:
                titles = "heading" if headings.pushed == 1 else "headings"
                raise ParseFailed(
                    "no_text",
                    f"{name}: it has {headings.pushed} {titles} but no text under them",
                )
        elif kind.kind == "code":
            yield from line_sections.code_sections(lines)
        else:
            yield from line_sections.text_sections(lines)


# What a parser's exception means to a person, by the kind of file: the
# sentence first, the library in plain words after it; the exception's name
# and traceback go to the detail (the log, "Copy details"), not the reason.
_DAMAGED_SENTENCES = {
    "pdf": "the PDF is damaged and could not be read (pdfium could not open all of it); "
    "open and re-save it, then retry",
    "docx": "the Word file is damaged and could not be read (its contents are not valid "
    "Word XML); open and re-save it in Word, then retry",
    "html": "the web page file could not be read (its HTML is too broken to parse)",
}


def _failure_sentence(path: Path, kind: FileKind | None) -> str:
    name: str | None = kind.kind if kind is not None else None
    if name is None:
        suffix = path.suffix.lower()
        name = {".pdf": "pdf", ".docx": "docx"}.get(suffix)
        name = name or ("html" if suffix in (".html", ".htm", ".xhtml") else None)
    return _DAMAGED_SENTENCES.get(
        name or "",
        "Footnote could not read this file: its reader stopped on an unexpected problem "
        "(the details are in the log)",
    )
