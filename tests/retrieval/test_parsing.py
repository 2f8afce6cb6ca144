"""Parsers, in this process: locators (pages, headings, lines) and the reason
every bad file gives."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from retrieval.errors import ParseFailed
from retrieval.parsing import (
    Section,
    html_page,
    iter_sections,
    line_sections,
    sniff,
    sniff_kind,
    text_stream,
)
from tests.retrieval.make_files import (
    LATIN1_TEXT,
    code_text,
    page_text,
    write_bytes,
    write_non_utf8_name,
    write_outlined_pdf,
    write_text_pdf,
)


def sections(path: Path) -> list[Section]:
    return list(iter_sections(path))


def failure(path: Path) -> ParseFailed:
    with pytest.raises(ParseFailed) as caught:
        list(iter_sections(path))
    return caught.value


def test_pdf_sections_carry_their_page_numbers(good_files: dict[str, Path]) -> None:
    found = sections(good_files["pdf"])
    assert [s.page for s in found] == [1, 2, 3]
    for section in found:
        assert f"zebra{section.page}." in section.text
        assert section.heading_path == () and section.line_start is None
    # The whole page's words are there, in order.
    assert " ".join(found[1].text.split()) == page_text(2)


def test_pdf_pages_without_text_are_skipped_but_others_kept(tmp_path: Path) -> None:
    path = write_text_pdf(tmp_path / "gap.pdf", [page_text(1), " ", page_text(3)])
    assert [s.page for s in sections(path)] == [1, 3]


def test_bad_pdfs_say_why(bad_files: dict[str, Path]) -> None:
    encrypted = failure(bad_files["encrypted"])
    assert encrypted.state == "encrypted"
    assert encrypted.message == (
        "secret.pdf: the PDF is encrypted; Footnote cannot read password-protected files"
    )
    scanned = failure(bad_files["scanned"])
    assert scanned.state == "no_text"
    assert scanned.message == (
        "scan.pdf: no page has a text layer; it looks scanned, and Footnote does not do OCR"
    )
    for name in ("corrupt_pdf", "truncated_pdf"):
        damaged = failure(bad_files[name])
        assert damaged.state == "failed"
        assert "the PDF is damaged" in damaged.message
        assert "PDFium" in damaged.detail


def test_docx_headings_and_tables(good_files: dict[str, Path]) -> None:
    found = sections(good_files["docx"])
    assert [(s.heading_path, s.text) for s in found] == [
        (("Quarterly report",), "This report covers the third quarter."),
        (("Quarterly report", "Summary"), "Revenue grew by twelve percent over the summer."),
        (("Quarterly report", "Results"), "The details follow below."),
        (
            ("Quarterly report", "Results", "Numbers"),
            "Region | Sales\nNorth | 120\nSouth | 95\n\nNumbers are in thousands of euros.",
        ),
        (("Quarterly report", "Outlook"), "We expect steady growth next quarter."),
    ]


def test_docx_headings_by_outline_level_in_a_localized_word(tmp_path: Path) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    style = document.styles.add_style("Überschrift 1", WD_STYLE_TYPE.PARAGRAPH)
    outline = OxmlElement("w:outlineLvl")
    outline.set(qn("w:val"), "0")
    style.element.get_or_add_pPr().append(outline)
    document.add_paragraph("Einleitung", style="Überschrift 1")
    document.add_paragraph("Der Text der Einleitung.")
    document.save(str(tmp_path / "bericht.docx"))

    found = sections(tmp_path / "bericht.docx")
    assert [(s.heading_path, s.text) for s in found] == [
        (("Einleitung",), "Der Text der Einleitung.")
    ]


def test_markdown_heading_paths_and_line_ranges(good_files: dict[str, Path]) -> None:
    found = sections(good_files["markdown"])
    assert [(s.heading_path, s.line_start, s.line_end) for s in found] == [
        (("Install guide",), 3, 3),
        (("Install guide", "Linux"), 7, 8),
        (("Install guide", "Linux", "Wayland"), 12, 12),
        (("Install guide", "Setext title"), 17, 22),
        (("Usage",), 26, 26),
    ]
    lines = good_files["markdown"].read_text().splitlines()
    for section in found:
        assert section.line_start is not None and section.line_end is not None
        assert section.text == "\n".join(lines[section.line_start - 1 : section.line_end])
    # A "#" line inside a fenced code block is code, not a heading.
    assert "# this is a comment, not a heading" in found[3].text


def test_rst_titles_with_levels_in_order_of_appearance(good_files: dict[str, Path]) -> None:
    found = sections(good_files["rst"])
    assert [(s.heading_path, s.text, s.line_start) for s in found] == [
        (("User docs",), "Intro paragraph of the user docs.", 5),
        (("User docs", "Installing"), "Run the installer.", 10),
        (("User docs", "Installing", "From source"), "Clone and build.", 15),
        (("User docs", "Using"), "Open the app.", 20),
    ]


@pytest.mark.parametrize("streaming", [False, True], ids=["trafilatura", "streaming-fallback"])
def test_html_main_text_under_headings(
    good_files: dict[str, Path], streaming: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if streaming:
        monkeypatch.setattr(html_page, "TRAFILATURA_MAX_BYTES", 0)
    found = sections(good_files["html"])
    assert [s.heading_path for s in found] == [
        ("Widget handbook",),
        ("Widget handbook", "Cleaning"),
        ("Widget handbook", "Storage"),
    ]
    text = "\n".join(s.text for s in found)
    assert "dry cloth once a week" in text
    for boilerplate in ("tracking", "color: red", "About us menu", "Copyright footer"):
        assert boilerplate not in text
    assert all(s.line_start is None for s in found)


def test_code_sections_have_exact_line_ranges(good_files: dict[str, Path]) -> None:
    found = sections(good_files["code"])
    lines = code_text().splitlines()
    assert len(found) >= 2
    for section in found:
        assert section.line_start is not None and section.line_end is not None
        assert section.text == "\n".join(lines[section.line_start - 1 : section.line_end])
    # Cuts fall before a top-level definition, not inside one.
    assert all(s.text.startswith(('"""', "def ")) for s in found)
    assert found[-1].line_end == len(code_text().rstrip().splitlines())


def test_legacy_encodings_are_detected_and_decoded(
    good_files: dict[str, Path], tmp_path: Path
) -> None:
    kind = sniff(good_files["latin1"])
    assert (kind.kind, kind.encoding) == ("text", "cp1252")
    assert sections(good_files["latin1"])[0].text.splitlines()[0] == LATIN1_TEXT.splitlines()[0]

    utf16 = write_bytes(
        tmp_path / "wide.txt", codecs.BOM_UTF16_LE + "Grüße aus Köln\n".encode("utf-16-le")
    )
    assert [s.text for s in sections(utf16)] == ["Grüße aus Köln"]
    cyrillic = "Это текст в старой кодировке Windows для проверки. " * 10
    legacy = write_bytes(tmp_path / "ru.txt", cyrillic.encode("cp1251"))
    assert sections(legacy)[0].text.strip() == cyrillic.strip()


def test_empty_files_give_no_sections_and_no_error(bad_files: dict[str, Path]) -> None:
    assert sections(bad_files["empty"]) == []


def test_binary_files_are_refused_even_when_named_txt(
    bad_files: dict[str, Path], tmp_path: Path
) -> None:
    assert sniff_kind(bad_files["binary"]) == "binary"
    refused = failure(bad_files["binary"])
    assert refused.state == "binary"
    assert refused.message.startswith("photo.txt: not a text file (binary content)")
    sheet = write_bytes(tmp_path / "budget.xlsx", b"PK\x03\x04" + bytes(200))
    assert failure(sheet).message.startswith("budget.xlsx: Footnote cannot read .xlsx files yet")


def test_unreadable_paths_fail_without_blocking(bad_files: dict[str, Path], tmp_path: Path) -> None:
    folder = failure(bad_files["folder_named_txt"])
    assert (folder.state, folder.message) == ("unreadable", "notes.txt: is a folder, not a file")
    pipe = failure(bad_files["fifo"])  # opening it for reading would block forever
    assert pipe.state == "unreadable" and "not a regular file" in pipe.message
    gone = tmp_path / "gone.md"
    gone.write_text("# soon deleted\n")
    gone.unlink()  # between discovery and parsing
    vanished = failure(gone)
    assert vanished.state == "unreadable"
    assert vanished.message == "gone.md: the file was moved or deleted before it could be read"


def test_non_utf8_file_names_parse_and_print(tmp_path: Path) -> None:
    path = write_non_utf8_name(tmp_path)
    assert [s.text for s in sections(path)] == ["Bytes in the name are not UTF-8."]
    path.unlink()
    message = failure(path).message
    assert message.startswith("caf\ufffd.txt:")
    message.encode("utf-8")  # printable: no lone surrogates


def test_sniffing_prefers_content_over_names(good_files: dict[str, Path], tmp_path: Path) -> None:
    disguised = write_bytes(tmp_path / "report.txt", good_files["pdf"].read_bytes())
    assert sniff_kind(disguised) == "pdf"
    assert (
        sniff_kind(write_bytes(tmp_path / "page", b"<!DOCTYPE html><html><p>x</p></html>"))
        == "html"
    )
    assert sniff_kind(write_bytes(tmp_path / "run", b"#!/bin/sh\necho hi\n")) == "code"
    assert sniff_kind(write_bytes(tmp_path / "Makefile", b"all:\n\techo hi\n")) == "code"
    assert sniff_kind(write_bytes(tmp_path / "README", b"Just words.\n")) == "text"
    assert sniff_kind(good_files["docx"]) == "docx"


def test_lines_stream_across_block_edges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_stream, "READ_BLOCK_BYTES", 7)
    monkeypatch.setattr(text_stream, "MAX_LINE_CHARS", 10)
    data = "one\r\ntwo\rthree\nä long line that goes on\nlast"
    path = write_bytes(tmp_path / "t.txt", data.encode())
    lines = list(text_stream.iter_lines(path, "utf-8"))
    assert lines == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (4, "ä long lin"),
        (4, "e that goe"),
        (4, "s on"),
        (5, "last"),
    ]
    # Pieces of one long line come back together in one section.
    assert [(s.text, s.line_start, s.line_end) for s in sections(path)] == [
        ("one\ntwo\nthree\nä long line that goes on\nlast", 1, 5)
    ]


@pytest.mark.parametrize("suffix", [".txt", ".md", ".rst", ".js"])
def test_a_file_without_line_breaks_still_comes_in_bounded_sections(
    tmp_path: Path, suffix: str
) -> None:
    line = "word " * 40_000  # 200 KB on line 1, like minified code or a log without newlines
    path = write_bytes(tmp_path / f"one-line{suffix}", line.encode())
    found = sections(path)
    assert len(found) >= 5
    assert all(len(s.text) <= 2 * line_sections.TEXT_SECTION_HARD_CHARS for s in found)
    assert all((s.line_start, s.line_end) == (1, 1) for s in found)
    assert "".join(s.text for s in found).split() == line.split()


def test_streaming_html_cuts_one_enormous_element(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html_page, "TRAFILATURA_MAX_BYTES", 0)
    body = "<p>" + "word " * 40_000 + "</p>"
    path = write_bytes(tmp_path / "big.html", f"<html><h1>Big</h1>{body}</html>".encode())
    found = sections(path)
    assert len(found) >= 5
    assert all(s.heading_path == ("Big",) for s in found)
    assert " ".join(s.text for s in found).split() == ["word"] * 40_000


def test_bad_word_files_say_why(tmp_path: Path) -> None:
    # Word stores a password-protected .docx in an OLE compound file.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    locked = failure(write_bytes(tmp_path / "locked.docx", ole))
    assert (locked.state, locked.message) == (
        "encrypted",
        "locked.docx: the Word file is password-protected; Footnote cannot read it",
    )
    damaged = failure(write_bytes(tmp_path / "damaged.docx", b"PK\x03\x04 not really a zip"))
    assert damaged.state == "failed"
    assert damaged.message.startswith("damaged.docx: the Word file is damaged or not a .docx")


def test_pdf_bookmarks_give_pages_their_heading_paths(tmp_path: Path) -> None:
    outline = [(1, 0, "Introduction"), (2, 0, "Methods"), (2, 1, "Sampling"), (4, 0, "Results")]
    path = write_outlined_pdf(tmp_path / "paper.pdf", outline, pages=5)
    found = sections(path)
    assert [(s.page, s.heading_path) for s in found] == [
        (1, ("Introduction",)),
        (2, ("Methods", "Sampling")),
        (3, ("Methods", "Sampling")),
        (4, ("Results",)),
        (5, ("Results",)),
    ]
    assert "zebra3." in found[2].text
