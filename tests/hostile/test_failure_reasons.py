"""Why a file was not indexed, in words a person reads: the sentence first,
the parser's jargon (PdfiumError, XMLSyntaxError, SIGSEGV) only in the detail;
a file of headings says so; UTF-16 without a byte-order mark is text; a
duplicate names the file it duplicates."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.discovery import ExcludeRules, SkippedFile, discover
from retrieval.errors import ParseFailed
from retrieval.parsing.parsers import iter_sections
from retrieval.parsing.sniff import sniff
from retrieval.parsing.worker import ParserPool
from tests.retrieval.make_files import page_text, write_docx, write_text_pdf

JARGON = re.compile(r"Pdfium|XMLSyntax|SIG[A-Z]+|Error\b|Exception|Traceback")


def _failure(path: Path) -> ParseFailed:
    with pytest.raises(ParseFailed) as caught:
        list(iter_sections(path))
    return caught.value


def test_a_pdf_that_breaks_mid_read_is_called_damaged(tmp_path: Path) -> None:
    path = write_text_pdf(tmp_path / "report.pdf", [page_text(1), page_text(2), page_text(3)])
    # The page tree promises 9 pages and holds 3: pdfium fails on page 4.
    path.write_bytes(path.read_bytes().replace(b"/Count 3", b"/Count 9"))

    error = _failure(path)

    assert error.message.startswith("report.pdf: the PDF is damaged and could not be read")
    assert not JARGON.search(error.message), error.message
    assert "PdfiumError" in error.detail  # the jargon is kept, as detail


def test_a_word_file_with_broken_xml_is_called_damaged(tmp_path: Path) -> None:
    source = write_docx(tmp_path / "source.docx")
    damaged = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(damaged, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "word/document.xml":
                data = data[: len(data) // 2]  # cut off mid-element
            zout.writestr(item, data)
    path = tmp_path / "minutes.docx"
    path.write_bytes(damaged.getvalue())

    error = _failure(path)

    assert error.message.startswith("minutes.docx: the Word file is damaged")
    assert not JARGON.search(error.message), error.message
    assert "XMLSyntaxError" in error.detail


def test_a_crash_is_said_in_words_and_the_signal_kept_as_detail(tmp_path: Path) -> None:
    path = tmp_path / "victim.txt"
    path.write_text("text that makes the parser crash\n")
    pool = ParserPool(size=1)
    try:
        with pytest.raises(ParseFailed) as caught:
            list(pool.parse(path, parser="tests.retrieval.hostile_parsers:segfault"))
    finally:
        pool.close()
    error = caught.value
    assert error.message.startswith("victim.txt: the file made Footnote's reader crash")
    assert not JARGON.search(error.message), error.message
    assert "SIGSEGV" in error.detail


@pytest.mark.parametrize("suffix", [".md", ".rst"])
def test_a_file_of_headings_only_says_so(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"outline{suffix}"
    if suffix == ".md":
        path.write_text("# Plan\n\n## Goals\n\n## Risks\n")
    else:
        path.write_text("Plan\n====\n\nGoals\n-----\n\nRisks\n-----\n")

    error = _failure(path)

    assert error.state == "no_text"
    assert error.message == f"outline{suffix}: it has 3 headings but no text under them"


def test_an_empty_markdown_file_is_not_said_to_have_headings(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_text("\n\n")
    assert list(iter_sections(path)) == []  # the indexer calls it empty


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_text(tmp_path: Path, encoding: str) -> None:
    text = "Meeting notes — Zürich\r\nThe heron budget doubled in März.\r\n" * 40
    path = tmp_path / "notes.txt"
    path.write_bytes(text.encode(encoding))  # no BOM, as PowerShell's redirect writes

    kind = sniff(path)

    assert (kind.kind, kind.encoding) == ("text", encoding)
    sections = list(iter_sections(path))
    assert "The heron budget doubled in März." in sections[0].text


def test_binary_with_zero_bytes_is_still_binary(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"".join(n.to_bytes(4, "little") for n in range(20_000)))
    assert sniff(path).kind == "binary"


def _skipped(roots: list[Path]) -> Iterator[SkippedFile]:
    for item in discover(roots, ExcludeRules()):
        if isinstance(item, SkippedFile):
            yield item


def test_a_duplicate_names_the_file_it_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = tmp_path / "a" / "report.md"
    first.write_text("# Report\n\nText.\n")
    os.link(first, tmp_path / "z-copy.md")  # the same file under another name

    (duplicate,) = [s for s in _skipped([tmp_path]) if s.state == "duplicate"]

    assert duplicate.path.name == "z-copy.md"
    assert "a/report.md" in duplicate.reason
