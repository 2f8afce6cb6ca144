"""Ordered SQLite schema migrations, numbered by ``PRAGMA user_version``.

Each Footnote database (conversations: ``engine.history``; the document
index: ``retrieval.document_db``) lists its migrations in order, append only:
``user_version`` is how many have been applied. Opening a database upgrades
it step by step. A database written by a newer Footnote (a higher version
than this one knows) is refused with :class:`NewerSchema` rather than used:
its tables may mean something this version would corrupt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence

# A step: SQL statements (run one by one) or a function of the connection.
Migration = str | Callable[[sqlite3.Connection], None]


class NewerSchema(Exception):
    """The database's schema is newer than this program's migrations."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(f"schema version {found}, this version of Footnote knows up to {known}")
        self.found = found
        self.known = known


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations ``db`` has not had yet; returns the new version.

    Run it inside the caller's write transaction (``BEGIN IMMEDIATE``: it
    takes the lock before the version is read, so two processes opening the
    file at once cannot both upgrade it) on a connection that does not commit
    by itself (``isolation_level=None``): either every pending step and the
    version are stored, or none. Raises :class:`NewerSchema` for a database
    from a newer Footnote, before changing anything.
    """
    version = schema_version(db)
    if version > len(migrations):
        raise NewerSchema(version, len(migrations))
    for number, migration in enumerate(migrations[version:], start=version + 1):
        if isinstance(migration, str):
            run_script(db, migration)
        else:
            migration(db)
        db.execute(f"PRAGMA user_version = {number}")
    return len(migrations)


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one at a time: ``executescript`` would commit the
    caller's transaction first, and a migration must be atomic."""
    for statement in _statements(script):
        db.execute(statement)


def _statements(script: str) -> Iterator[str]:
    # complete_statement, not split(";"): a ";" may sit in a string or a trigger.
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
