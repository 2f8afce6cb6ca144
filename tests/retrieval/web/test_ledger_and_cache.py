"""The privacy ledger and the search result cache (real SQLite files)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retrieval.web.ledger import Ledger
from retrieval.web.result_cache import RESULT_CACHE_TTL_S, ResultCache
from retrieval.web.results import SearchResult


def test_ledger_lists_newest_first_with_time(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    before = datetime.now(UTC) - timedelta(seconds=1)
    ledger.record("query", "DuckDuckGo", "velmora lighthouse")
    ledger.record("fetch", "fetch", "https://velmora.example/a")
    entries = ledger.entries()
    assert [(e.kind, e.provider, e.text) for e in entries] == [
        ("fetch", "fetch", "https://velmora.example/a"),
        ("query", "DuckDuckGo", "velmora lighthouse"),
    ]
    assert all(e.time >= before and e.time.tzinfo is not None for e in entries)
    assert [e.text for e in ledger.entries(limit=1)] == ["https://velmora.example/a"]


def test_ledger_survives_reopening_and_clears(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).record("query", "SearXNG (searx.example)", "q")
    reopened = Ledger(path)
    assert [e.text for e in reopened.entries()] == ["q"]
    reopened.clear()
    assert reopened.entries() == []


def test_ledger_entries_cannot_be_edited(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).record("query", "DuckDuckGo", "what I asked")
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE ledger SET text = 'something else'")


def test_no_ledger_file_until_something_is_recorded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    assert ledger.entries() == []
    ledger.clear()
    assert not ledger.path.exists()


RESULTS = [SearchResult("Title", "https://velmora.example/a", "snippet")]


def test_cache_returns_fresh_results_and_forgets_old_ones(tmp_path: Path) -> None:
    now = [1_000_000.0]
    cache = ResultCache(tmp_path / "cache.sqlite3", clock=lambda: now[0])
    key = ResultCache.key("DuckDuckGo", "Velmora  Lighthouse", "wt-wt", "moderate", 8)
    cache.put(key, RESULTS)
    assert cache.get(key) == RESULTS
    # Spacing and case do not make a different query.
    assert cache.get(ResultCache.key("DuckDuckGo", "velmora lighthouse", "wt-wt", "moderate", 8))
    now[0] += RESULT_CACHE_TTL_S + 1
    assert cache.get(key) is None


@pytest.mark.parametrize(
    "other",
    [
        ("SearXNG (x)", "velmora lighthouse", "wt-wt", "moderate", 8),
        ("DuckDuckGo", "velmora lighthouse", "de-de", "moderate", 8),
        ("DuckDuckGo", "velmora lighthouse", "wt-wt", "strict", 8),
        ("DuckDuckGo", "velmora lighthouse", "wt-wt", "moderate", 3),
        ("DuckDuckGo", "velmora harbour", "wt-wt", "moderate", 8),
    ],
)
def test_cache_keys_differ_by_provider_region_safesearch_and_count(
    tmp_path: Path, other: tuple[str, str, str, str, int]
) -> None:
    cache = ResultCache(tmp_path / "cache.sqlite3")
    cache.put(ResultCache.key("DuckDuckGo", "velmora lighthouse", "wt-wt", "moderate", 8), RESULTS)
    assert cache.get(ResultCache.key(*other)) is None


def test_a_damaged_cache_is_a_miss_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    cache = ResultCache(path)
    assert cache.get("anything") is None
    cache.put("anything", RESULTS)  # silently not cached
