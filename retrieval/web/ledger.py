"""The privacy ledger: every search query and every URL that leaves the
machine, and every prompt sent to a model server, with the time, in an
append-only SQLite table in the data folder.

Entries are written *before* the request is sent (a request that then fails
still left the machine, or may have), by the only two places that send:
:class:`~retrieval.web.resilient_search.ResilientSearch` and
:class:`~retrieval.web.fetcher.Fetcher`, which cannot be built without a
ledger; and, with a model server set, the app before each prompt goes to
it (kind "model": the server and what the prompt held, never the prompt
itself). The file is created by the first entry, so with web search off
and no server there is no ledger file at all.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from retrieval.web.errors import LedgerDamaged, LedgerUnavailable

log = logging.getLogger(__name__)

LedgerKind = Literal["query", "fetch", "model"]
_KINDS = frozenset({"query", "fetch", "model"})

_TABLE = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('query', 'fetch', 'model')),
    provider TEXT NOT NULL,
    text TEXT NOT NULL
);
"""
# Append-only: an entry, once written, is never edited (clear() removes all).
_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
"""


@dataclass(frozen=True)
class LedgerEntry:
    time: datetime  # UTC, timezone-aware
    kind: LedgerKind
    provider: str  # the search engine, "fetch" for a page, the server's URL for "model"
    text: str  # the query text, the URL, or what a prompt to the server held


@dataclass(frozen=True)
class LedgerRead:
    entries: list[LedgerEntry]  # newest first
    unreadable: int  # entries on damaged pages, or with damaged fields


def _parse_rows(rows: list[tuple[object, ...]]) -> LedgerRead:
    entries: list[LedgerEntry] = []
    unreadable = 0
    for time_utc, kind, provider, text in rows:
        try:
            if kind not in _KINDS or not isinstance(provider, str) or not isinstance(text, str):
                raise ValueError(f"bad entry {kind!r}")
            when = datetime.fromisoformat(str(time_utc))
        except ValueError:
            unreadable += 1
            continue
        entries.append(LedgerEntry(when, kind, provider, text))  # type: ignore[arg-type]
    return LedgerRead(entries, unreadable)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # fetch workers record concurrently

    def record(self, kind: LedgerKind, provider: str, text: str) -> None:
        """Write one entry, or raise :class:`LedgerUnavailable`: the caller
        then does not send (an unrecorded request is worse than none)."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            with self._lock, self._connect() as db:
                db.execute(
                    "INSERT INTO ledger (time_utc, kind, provider, text) VALUES (?, ?, ?, ?)",
                    (stamp, kind, provider, text),
                )
        except (sqlite3.Error, OSError) as exc:
            where = "the model server" if kind == "model" else "the web"
            raise LedgerUnavailable(
                f"Footnote cannot write its privacy ledger ({self.path}), so it sent nothing "
                f"to {where}. Check that the data folder is writable and the disk has space.",
                detail=repr(exc),
            ) from exc

    def entries(self, limit: int | None = None) -> list[LedgerEntry]:
        """Newest first; the entries that can be read (see :meth:`read`)."""
        return self.read(limit).entries

    def read(self, limit: int | None = None) -> LedgerRead:
        """The newest ``limit`` entries, newest first, and how many entries
        could not be read. A damaged file (a disk error, a crash of the disk,
        an editor) still shows what is intact; raises :class:`LedgerDamaged`
        when nothing at all can be read."""
        if not self.path.exists():
            return LedgerRead([], 0)
        try:
            # Read-only: reading must never try to "repair" (or create) anything.
            with closing(
                sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
            ) as db:
                try:
                    # All of it (a ledger is small), so damage anywhere is counted.
                    rows = db.execute(
                        "SELECT time_utc, kind, provider, text FROM ledger ORDER BY id DESC"
                    ).fetchall()
                except sqlite3.DatabaseError:
                    # A damaged page stops the scan: look the entries up one by one.
                    return self._salvage(db, limit)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        read = _parse_rows(rows)
        return LedgerRead(read.entries[:limit], read.unreadable)

    def _salvage(self, db: sqlite3.Connection, limit: int | None) -> LedgerRead:
        """Each entry by its id, newest first: the ones on intact pages are
        read, the others counted. The highest id ever given comes from
        AUTOINCREMENT's own table, so a damaged newest page is counted too."""
        try:
            (newest,) = db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'ledger'"
            ).fetchone() or (0,)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        entries: list[LedgerEntry] = []
        unreadable = 0
        for entry_id in range(int(newest), 0, -1):
            try:
                rows = db.execute(
                    "SELECT time_utc, kind, provider, text FROM ledger WHERE id = ?", (entry_id,)
                ).fetchall()
            except sqlite3.DatabaseError:
                unreadable += 1
                continue
            read = _parse_rows(rows)
            unreadable += read.unreadable
            if limit is None or len(entries) < limit:
                entries.extend(read.entries)
        if not entries and unreadable:
            raise self._damaged(sqlite3.DatabaseError(f"{unreadable} entries unreadable"))
        return LedgerRead(entries, unreadable)

    def _damaged(self, exc: Exception) -> LedgerDamaged:
        return LedgerDamaged(
            f"The privacy ledger ({self.path}) is damaged and none of it could be read; "
            "“python -m app ledger --clear” (or Clear on the Privacy page) starts a new one.",
            detail=repr(exc),
        )

    def clear(self) -> None:
        if not self.path.exists():
            return
        try:
            with self._lock, self._connect() as db:
                db.execute("DELETE FROM ledger")
        except sqlite3.DatabaseError:
            # Damaged beyond SQL: forgetting the list is removing the file.
            log.warning("the privacy ledger %s is damaged; removing it to clear it", self.path)
            self.path.unlink(missing_ok=True)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=5)) as db, db:
            _migrate(db)
            db.executescript(_TABLE + _TRIGGER)
            yield db


def _migrate(db: sqlite3.Connection) -> None:
    """A ledger from before model-server entries: the same entries (ids
    kept) in a table whose CHECK allows them (SQLite cannot alter a CHECK)."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ledger'")
    found = row.fetchone()
    if found is None or "'model'" in str(found[0]):
        return
    db.execute("ALTER TABLE ledger RENAME TO ledger_before_models")
    db.executescript(_TABLE)
    db.execute(
        "INSERT INTO ledger (id, time_utc, kind, provider, text) "
        "SELECT id, time_utc, kind, provider, text FROM ledger_before_models"
    )
    db.execute("DROP TABLE ledger_before_models")  # its trigger goes with it
