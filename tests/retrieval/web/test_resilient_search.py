"""Backoff, cache, fallback and visible notices, with scripted providers."""

from __future__ import annotations

import threading
from pathlib import Path

from retrieval.errors import WebSearchError
from retrieval.web.errors import RateLimited, SearchTimeout
from retrieval.web.events import (
    FallbackNotice,
    NoResultsNotice,
    RateLimitedNotice,
    SearchFailedNotice,
    Searching,
    WebNotice,
)
from retrieval.web.ledger import Ledger
from retrieval.web.resilient_search import Backoff, ResilientSearch
from retrieval.web.result_cache import ResultCache
from retrieval.web.results import SearchResult
from tests.retrieval.web.conftest import ScriptedProvider

RESULTS = [SearchResult("Velmora", "https://velmora.example/", "The harbour town.")]
QUICK = Backoff(first_delay_s=0.01, budget_s=0.1, jitter=lambda: 0.5)


def run(search: ResilientSearch, cancel: threading.Event | None = None, query: str = "velmora"):  # type: ignore[no-untyped-def]
    generator = search.search(
        query, cancel or threading.Event(), region="wt-wt", safesearch="moderate", max_results=8
    )
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_backoff_grows_with_jitter_within_its_budget() -> None:
    delays = Backoff(first_delay_s=1.0, budget_s=8.0, jitter=lambda: 0.5).delays()
    assert delays == [1.0, 2.0, 4.0]
    low = Backoff(first_delay_s=1.0, budget_s=8.0, jitter=lambda: 0.0).delays()
    assert low == [0.5, 1.0, 2.0, 4.0]
    assert sum(Backoff(first_delay_s=1.0, budget_s=8.0, jitter=lambda: 0.99).delays()) <= 8.0


def test_a_rate_limit_is_retried_visibly_then_succeeds(ledger: Ledger) -> None:
    provider = ScriptedProvider([RateLimited("slow down"), RateLimited("slow down"), RESULTS])
    events, results = run(ResilientSearch([provider], ledger, backoff=QUICK))
    assert results == RESULTS
    notices = [e for e in events if isinstance(e, RateLimitedNotice)]
    assert len(notices) == 2 and all(n.retry_in_s for n in notices)
    assert "limiting requests" in notices[0].text
    # Each attempt left the machine, so each is in the ledger.
    assert [e.text for e in ledger.entries()] == ["velmora"] * 3


def test_a_lasting_rate_limit_falls_back_to_the_other_provider(ledger: Ledger) -> None:
    ddg = ScriptedProvider([RateLimited("DuckDuckGo is limiting requests.")], name="DuckDuckGo")
    searx = ScriptedProvider([RESULTS], name="SearXNG (searx.example)")
    events, results = run(ResilientSearch([ddg, searx], ledger, backoff=QUICK))
    assert results == RESULTS
    assert len(ddg.calls) == len(QUICK.delays()) + 1  # bounded retries, then give up
    fallback = [e for e in events if isinstance(e, FallbackNotice)]
    assert fallback and fallback[0].provider == "SearXNG (searx.example)"
    assert any(isinstance(e, RateLimitedNotice) and e.retry_in_s is None for e in events)
    providers = {e.provider for e in ledger.entries()}
    assert providers == {"DuckDuckGo", "SearXNG (searx.example)"}


def test_timeouts_and_errors_end_in_a_visible_failure_not_silence(ledger: Ledger) -> None:
    ddg = ScriptedProvider([SearchTimeout("DuckDuckGo did not answer in 8 s.")], name="DuckDuckGo")
    searx = ScriptedProvider([WebSearchError("Cannot reach SearXNG.")], name="SearXNG (x)")
    events, results = run(ResilientSearch([ddg, searx], ledger, backoff=QUICK))
    assert results == []
    texts = [e.text for e in events if isinstance(e, WebNotice)]
    assert "DuckDuckGo did not answer in 8 s." in texts
    assert "Cannot reach SearXNG." in texts
    assert isinstance(events[-1], SearchFailedNotice)
    assert len(ddg.calls) == 1  # a timeout is not retried on the same provider


def test_an_empty_answer_tries_the_fallback_and_says_so(ledger: Ledger) -> None:
    ddg = ScriptedProvider([[]], name="DuckDuckGo")
    searx = ScriptedProvider([[]], name="SearXNG (x)")
    events, results = run(ResilientSearch([ddg, searx], ledger, backoff=QUICK))
    assert results == []
    assert len([e for e in events if isinstance(e, NoResultsNotice)]) == 2
    assert isinstance(events[-1], SearchFailedNotice)


def test_cached_results_are_not_sent_again(ledger: Ledger, tmp_path: Path) -> None:
    provider = ScriptedProvider([RESULTS], name="DuckDuckGo")
    search = ResilientSearch([provider], ledger, ResultCache(tmp_path / "cache.sqlite3"))
    first_events, first = run(search)
    second_events, second = run(search, query="  Velmora ")
    assert first == second == RESULTS
    assert len(provider.calls) == 1
    assert any(isinstance(e, Searching) for e in first_events)
    assert not any(isinstance(e, Searching) for e in second_events)
    assert len(ledger.entries()) == 1  # the cached answer sent nothing


def test_failures_are_not_cached(ledger: Ledger, tmp_path: Path) -> None:
    provider = ScriptedProvider([SearchTimeout("t"), RESULTS], name="DuckDuckGo")
    search = ResilientSearch([provider], ledger, ResultCache(tmp_path / "cache.sqlite3"))
    assert run(search)[1] == []
    assert run(search)[1] == RESULTS


def test_cancel_during_backoff_stops_waiting(ledger: Ledger) -> None:
    cancel = threading.Event()
    provider = ScriptedProvider([RateLimited("slow down")])
    search = ResilientSearch(
        [provider], ledger, backoff=Backoff(first_delay_s=60, budget_s=600, jitter=lambda: 0.5)
    )
    generator = search.search(
        "velmora", cancel, region="wt-wt", safesearch="moderate", max_results=8
    )
    assert isinstance(next(generator), Searching)
    assert isinstance(next(generator), RateLimitedNotice)  # about to wait 60 s
    cancel.set()
    assert list(generator) == []  # no further notices: the user stopped it
    assert len(provider.calls) == 1


def test_a_provider_bug_becomes_a_notice_and_the_fallback_answers(ledger: Ledger) -> None:
    class Broken:
        name = "Broken"

        def search(self, query: str, **options: object) -> list[SearchResult]:
            raise KeyError("href")  # e.g. the engine changed its page layout

    searx = ScriptedProvider([RESULTS], name="SearXNG (x)")
    events, results = run(ResilientSearch([Broken(), searx], ledger, backoff=QUICK))
    assert results == RESULTS
    assert any("Broken failed unexpectedly" in getattr(e, "text", "") for e in events)
