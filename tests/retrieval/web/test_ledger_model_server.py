"""Prompts sent to a model server are ledger entries too, also in a ledger
written before there were such entries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from retrieval.web.ledger import Ledger

# The ledger's table as Footnote wrote it before model-server entries.
OLD_SCHEMA = """
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('query', 'fetch')),
    provider TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
INSERT INTO ledger (time_utc, kind, provider, text)
    VALUES ('2025-01-02T03:04:05.000+00:00', 'query', 'DuckDuckGo', 'old question');
"""


def test_a_model_server_send_is_recorded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.record("model", "http://gpu-box:8000", "phi3-small: the conversation and 2 sources")
    (entry,) = ledger.entries()
    assert (entry.kind, entry.provider) == ("model", "http://gpu-box:8000")


def test_an_older_ledger_keeps_its_entries_and_takes_model_entries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    ledger = Ledger(path)
    ledger.record("model", "http://gpu-box:8000", "phi3-small: the conversation")
    assert [(e.kind, e.text) for e in ledger.entries()] == [
        ("model", "phi3-small: the conversation"),
        ("query", "old question"),
    ]
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE ledger SET text = 'rewritten'")
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "ledger_before_models" not in tables
