"""Ordered migrations with the newer-version guard, as both databases use them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage.sqlite_schema import NewerSchema, migrate, schema_version

STEPS = (
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
    # A ";" inside a string and a last statement without one: split correctly.
    """
    INSERT INTO notes (text) VALUES ('first; still the first');
    CREATE INDEX notes_by_text ON notes(text)
    """,
)


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def upgrade(db: sqlite3.Connection, steps: tuple[object, ...]) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        version = migrate(db, steps)  # type: ignore[arg-type]
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return version


def test_steps_run_once_in_order_and_the_version_counts_them(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.sqlite3")
    assert upgrade(db, STEPS[:1]) == 1
    assert upgrade(db, STEPS) == 2
    assert upgrade(db, STEPS) == 2  # nothing left to do
    assert db.execute("SELECT text FROM notes").fetchall() == [("first; still the first",)]

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE notes ADD COLUMN tag TEXT")

    assert upgrade(db, (*STEPS, add_column)) == 3
    assert schema_version(db) == 3


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.sqlite3")
    with pytest.raises(sqlite3.OperationalError):
        upgrade(db, (STEPS[0], "INSERT INTO missing VALUES (1);"))
    assert schema_version(db) == 0
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.sqlite3")
    db.execute("PRAGMA user_version = 5")
    with pytest.raises(NewerSchema, match=r"schema version 5, .* knows up to 2") as raised:
        upgrade(db, STEPS)
    assert (raised.value.found, raised.value.known) == (5, 2)
    assert schema_version(db) == 5
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
