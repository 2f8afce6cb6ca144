"""A short-lived local cache of search results (SQLite in the cache folder).

Asking the same question twice in a few minutes (an edited query re-run, a
regenerated answer) should neither send the query again nor spend the search
engine's patience: DuckDuckGo rate-limits quickly. Entries live
``RESULT_CACHE_TTL_S`` and are keyed by provider + query + region + safe-search
+ result count, so a different setting never returns another setting's results.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from retrieval.web.results import SearchResult

RESULT_CACHE_TTL_S = 15 * 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    results TEXT NOT NULL
)
"""


class ResultCache:
    """Thread-safe: every call opens its own short connection (the pipeline
    runs on a worker thread, the app may clear the cache from another)."""

    def __init__(
        self,
        path: Path,
        *,
        ttl_s: float = RESULT_CACHE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._ttl_s = ttl_s
        self._clock = clock

    @staticmethod
    def key(provider: str, query: str, region: str, safesearch: str, max_results: int) -> str:
        normalized = " ".join(query.split()).lower()
        raw = json.dumps([provider, normalized, region, safesearch, max_results])
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, key: str) -> list[SearchResult] | None:
        if not self._path.exists():
            return None
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT stored_at, results FROM results WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error:
            return None  # a damaged cache is only a missed shortcut
        if row is None or self._clock() - row[0] > self._ttl_s:
            return None
        return [SearchResult(**item) for item in json.loads(row[1])]

    def put(self, key: str, results: list[SearchResult]) -> None:
        payload = json.dumps([r.__dict__ for r in results])
        now = self._clock()
        try:
            with self._connect() as db:
                db.execute("DELETE FROM results WHERE stored_at < ?", (now - self._ttl_s,))
                db.execute(
                    "INSERT OR REPLACE INTO results (key, stored_at, results) VALUES (?, ?, ?)",
                    (key, now, payload),
                )
        except sqlite3.Error:
            pass  # not caching is always safe

    def clear(self) -> None:
        if self._path.exists():
            with self._connect() as db:
                db.execute("DELETE FROM results")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self._path, timeout=5)) as db, db:
            db.execute(_SCHEMA)
            yield db
