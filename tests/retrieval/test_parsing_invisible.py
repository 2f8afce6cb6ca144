"""Invisible characters are taken out of text before it is chunked: what a
reader cannot see, search cannot use and a cited passage should not show."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.parsing.invisible import strip_invisible
from retrieval.parsing.parsers import iter_sections

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with a ZWNJ


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("col1\x00col2", "col1 col2"),  # a run of controls is one space
        ("a" + "\x00" * 10_000 + "b", "a b"),
        ("bell\x07\x08\x7f\x85here", "bell here"),
        ("in\u200bvisible wo\u2060rd\ufeff", "invisible word"),  # zero-width: removed
        ("soft\u00adhyphen", "softhyphen"),
        ("\u202eevil\u202c text", "evil text"),  # direction overrides
        ("\x1b[31mERROR\x1b[0m disk full", "ERROR disk full"),  # terminal colours
        ("\ufffd\ufffd\ufffd\ufffd broken", "\ufffd broken"),  # one mark stays
        (PERSIAN, PERSIAN),  # one joiner spells the word: kept
        ("\u200c\u200d\u200c", "\u200c"),  # a run of joiners: one
        ("tab\tand\nnewline", "tab\tand\nnewline"),  # kept: indentation, line numbers
        ("plain text", "plain text"),
    ],
)
def test_invisible_characters_are_removed_or_collapsed(raw: str, clean: str) -> None:
    assert strip_invisible(raw) == clean
    assert strip_invisible(clean) == clean  # idempotent


def test_carriage_returns_stay_for_a_reader_that_splits_lines_on_them() -> None:
    assert strip_invisible("one\r\ntwo\x00", keep_cr=True) == "one\r\ntwo "
    assert strip_invisible("one\rtwo") == "one two"


def test_unchanged_text_is_not_copied() -> None:
    text = "nothing to strip here " * 100
    assert strip_invisible(text) is text


def test_the_text_reader_strips_as_it_reads(tmp_path: Path) -> None:
    """Line numbers are those of the file: only characters inside lines go."""
    path = tmp_path / "log.txt"
    head = b"The first line of a log that is plain text.\n" * 2000  # past the sniffer's sample
    path.write_bytes(head + b"noise\x00\x00\x00here\r\n\x1b[1mbold\x1b[0m\xe2\x80\x8b end\n")
    (*_, last) = iter_sections(path)
    assert last.text.endswith("noise here\nbold end")
    assert last.line_end == 2002
