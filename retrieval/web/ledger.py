"""The privacy ledger: every search query and every URL that leaves the
machine, with the time, in an append-only SQLite table in the data folder.

Entries are written *before* the request is sent (a request that then fails
still left the machine, or may have), by the only two places that send:
:class:`~retrieval.web.resilient_search.ResilientSearch` and
:class:`~retrieval.web.fetcher.Fetcher`, which cannot be built without a
ledger. The file is created by the first entry, so with web search off there
is no ledger file at all.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from retrieval.web.errors import LedgerUnavailable

LedgerKind = Literal["query", "fetch"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('query', 'fetch')),
    provider TEXT NOT NULL,
    text TEXT NOT NULL
);
-- Append-only: an entry, once written, is never edited (clear() removes all).
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
"""


@dataclass(frozen=True)
class LedgerEntry:
    time: datetime  # UTC, timezone-aware
    kind: LedgerKind
    provider: str  # the search engine, or "fetch" for a page request
    text: str  # the query text, or the URL


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
            raise LedgerUnavailable(
                f"Footnote cannot write its privacy ledger ({self.path}), so it sent nothing "
                "to the web. Check that the data folder is writable and the disk has space.",
                detail=repr(exc),
            ) from exc

    def entries(self, limit: int | None = None) -> list[LedgerEntry]:
        """Newest first."""
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT time_utc, kind, provider, text FROM ledger ORDER BY id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [
            LedgerEntry(datetime.fromisoformat(t), kind, provider, text)
            for t, kind, provider, text in rows
        ]

    def clear(self) -> None:
        if self.path.exists():
            with self._lock, self._connect() as db:
                db.execute("DELETE FROM ledger")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=5)) as db, db:
            db.executescript(_SCHEMA)
            yield db
