"""`python -m app ledger` on a damaged privacy ledger: the entries that can be
read, how many could not, one sentence and a non-zero exit; never a traceback."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from app.cli import commands as cli
from app.wiring.grounding import ledger_path
from retrieval.web.ledger import Ledger

ENTRIES = 400
PAGE_BYTES = 4096
_TABLE_LEAF = 0x0D  # the first byte of a SQLite table b-tree leaf page


def _ledger_file(home: Path) -> Path:
    path = ledger_path(home / "data")
    ledger = Ledger(path)
    for n in range(ENTRIES):
        ledger.record("query", "duckduckgo", f"question number {n} " + "x" * 60)
    return path


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def _smash_a_middle_leaf(path: Path) -> None:
    """Overwrite one table leaf page in the middle of the file with garbage, as
    a disk error would: the pages before and after it stay intact."""
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    pages = len(data) // page_size
    leaves = [p for p in range(2, pages - 1) if data[p * page_size] == _TABLE_LEAF]
    assert len(leaves) > 3, "the test ledger should span several pages"
    victim = leaves[len(leaves) // 2]
    data[victim * page_size : (victim + 1) * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))


def test_a_damaged_page_shows_the_rest_and_counts_the_lost(
    footnote_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ledger_file(footnote_home)
    _smash_a_middle_leaf(path)

    code, out = _run("ledger", "-n", "1000")

    err = capsys.readouterr().err
    shown = out.splitlines()
    assert code != 0
    assert "Traceback" not in err
    assert 0 < len(shown) < ENTRIES
    assert f"question number {ENTRIES - 1} " in shown[0]  # newest first, still readable
    lost = ENTRIES - len(shown)
    assert f"{lost} entries could not be read" in err
    assert len(err.strip().splitlines()) == 1


def test_a_ledger_that_is_not_a_database_is_one_sentence(
    footnote_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ledger_file(footnote_home)
    path.write_bytes(b"\x00garbage" * 2000)

    code, out = _run("ledger")

    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert "Traceback" not in err
    assert err.startswith("footnote: error: The privacy ledger") and "damaged" in err
    assert len(err.strip().splitlines()) == 1

    # --clear then starts a new, empty one
    code, out = _run("ledger", "--clear")
    assert code == 0
    code, out = _run("ledger")
    assert code == 0 and out.startswith("Nothing has left this computer")
