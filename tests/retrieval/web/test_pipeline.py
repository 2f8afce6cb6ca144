"""The whole web pipeline against the local site, with a scripted search engine."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from retrieval.web.errors import RateLimited, SearchTimeout
from retrieval.web.events import (
    Fetching,
    PagesUnreadNotice,
    Ranking,
    RateLimitedNotice,
    SearchFailedNotice,
    Searching,
)
from retrieval.web.fetcher import FetchLimits
from retrieval.web.ledger import Ledger
from retrieval.web.need_search import WebMode
from retrieval.web.pipeline import WebSearch, WebSearchSettings
from retrieval.web.resilient_search import Backoff
from retrieval.web.results import SearchResult
from tests.retrieval.web.conftest import ForbiddenProvider, ScriptedProvider
from tests.retrieval.web.site import Site

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
QUICK = Backoff(first_delay_s=0.01, budget_s=0.05, jitter=lambda: 0.5)


def build(provider: Any, embedder: Any, tmp_path: Path, mode: WebMode = WebMode.AUTO) -> WebSearch:
    return WebSearch.build(
        [provider],
        embedder,
        WebSearchSettings(mode=mode, pages_to_fetch=6, allow_local_fetch=True),
        ledger_path=tmp_path / "data" / "ledger.sqlite3",
        cache_path=tmp_path / "cache" / "results.sqlite3",
        local_networks=LOOPBACK,
        fetch_limits=FetchLimits(page_timeout_s=1.5, total_timeout_s=5.0),
        backoff=QUICK,
    )


def run(search: WebSearch, query: str, cancel: threading.Event | None = None):  # type: ignore[no-untyped-def]
    generator = search.run(query, cancel or threading.Event())
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def site_results(site: Site) -> list[SearchResult]:
    return [
        SearchResult("Lighthouse", site.url("/redirect-article"), "A lighthouse article."),
        SearchResult("Recipes", site.url("/hostile"), "Lentil soup recipe."),
        SearchResult("Tides", site.url("/tides.pdf"), "Tide tables."),
        SearchResult(
            "Gone", site.url("/missing"), "The old quay of Velmora has 12 granite bollards."
        ),
        SearchResult("Admin", site.url("/redirect-private"), ""),
        SearchResult("Slow", site.url("/slow"), ""),
    ]


def test_pages_are_fetched_read_ranked_and_logged(
    site: Site, embedder: Any, tmp_path: Path
) -> None:
    provider = ScriptedProvider([site_results(site)], name="DuckDuckGo")
    search = build(provider, embedder, tmp_path)
    events, passages = run(search, "Who built the Velmora lighthouse?")

    assert (
        isinstance(events[0], Searching) and events[0].query == "Who built the Velmora lighthouse?"
    )
    fetching = [e for e in events if isinstance(e, Fetching)]
    assert fetching[-1] == Fetching(6, 6)
    assert any(isinstance(e, Ranking) for e in events)
    unread = next(e for e in events if isinstance(e, PagesUnreadNotice))
    reasons = dict(unread.reasons)
    assert set(reasons) == {site.url("/missing"), site.url("/redirect-private"), site.url("/slow")}
    assert "404" in reasons[site.url("/missing")]
    assert "private network" in reasons[site.url("/redirect-private")]

    best = passages[0]
    assert "Ada Brightwater" in best.text
    assert best.locator.url == site.url("/article")  # the page it redirected to
    assert best.locator.title == "The Harbour Lighthouse"
    every_text = " ".join(p.text for p in passages)
    assert "SCRIPT PAYLOAD" not in every_text

    ledger = Ledger(tmp_path / "data" / "ledger.sqlite3")
    logged = [(e.kind, e.text) for e in reversed(ledger.entries())]
    assert logged[0] == ("query", "Who built the Velmora lighthouse?")
    fetched = {text for kind, text in logged if kind == "fetch"}
    assert fetched == {r.url for r in site_results(site)} | {site.url("/article")}
    assert "http://10.0.0.1/admin" not in fetched  # refused, so never sent


def test_a_url_listed_twice_is_fetched_once(site: Site, embedder: Any, tmp_path: Path) -> None:
    results = [
        SearchResult("Lighthouse", site.url("/article"), "first"),
        SearchResult("Lighthouse again", site.url("/article"), "second"),
    ]
    events, passages = run(build(ScriptedProvider([results]), embedder, tmp_path), "lighthouse")
    assert site.paths() == ["/article"]
    assert [e for e in events if isinstance(e, Fetching)][-1] == Fetching(1, 1)
    assert passages and all(p.locator.url == site.url("/article") for p in passages)


def test_an_unreadable_page_is_replaced_by_its_snippet(
    site: Site, embedder: Any, tmp_path: Path
) -> None:
    search = build(ScriptedProvider([site_results(site)]), embedder, tmp_path)
    _, passages = run(search, "How many granite bollards does the old quay have?")
    assert passages[0].text == "The old quay of Velmora has 12 granite bollards."
    assert passages[0].locator.url == site.url("/missing")
    assert passages[0].locator.title == "Gone"


def test_pdf_results_are_read(site: Site, embedder: Any, tmp_path: Path) -> None:
    search = build(ScriptedProvider([site_results(site)]), embedder, tmp_path)
    _, passages = run(search, "How high is the highest spring tide at Velmora?")
    assert "5.2 metres" in passages[0].text
    assert passages[0].locator.url == site.url("/tides.pdf") + "#page=2"
    assert passages[0].locator.title == "Tides"  # the result's title stands in


def test_with_web_search_off_nothing_is_sent_and_nothing_written(
    embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sockets(self: socket.socket, address: object) -> None:
        pytest.fail(f"a socket was opened to {address!r} with web search off")

    monkeypatch.setattr(socket.socket, "connect", no_sockets)
    monkeypatch.setattr(socket.socket, "connect_ex", no_sockets)
    search = build(ForbiddenProvider(), embedder, tmp_path, mode=WebMode.OFF)
    assert not search.decide("What is the latest news?", [])
    events, passages = run(search, "What is the latest news?")
    assert (events, passages) == ([], [])
    assert not (tmp_path / "data").exists() and not (tmp_path / "cache").exists()


def test_a_rate_limited_search_returns_with_a_visible_note(embedder: Any, tmp_path: Path) -> None:
    provider = ScriptedProvider([RateLimited("DuckDuckGo is limiting requests for now.")])
    events, passages = run(build(provider, embedder, tmp_path), "velmora")
    assert passages == []
    assert any(isinstance(e, RateLimitedNotice) for e in events)
    assert isinstance(events[-1], SearchFailedNotice)
    assert "documents" in events[-1].text


def test_a_search_timeout_returns_with_a_visible_note(embedder: Any, tmp_path: Path) -> None:
    provider = ScriptedProvider([SearchTimeout("DuckDuckGo did not answer in 8 s.")])
    events, passages = run(build(provider, embedder, tmp_path), "velmora")
    assert passages == []
    assert [e.text for e in events if not isinstance(e, Searching)][0] == (
        "DuckDuckGo did not answer in 8 s."
    )
    assert isinstance(events[-1], SearchFailedNotice)


def test_cancel_while_fetching_returns_promptly(site: Site, embedder: Any, tmp_path: Path) -> None:
    results = [SearchResult("Slow", site.url(f"/slow?{i}"), "") for i in range(3)]
    search = build(ScriptedProvider([results]), embedder, tmp_path)
    cancel = threading.Event()
    generator = search.run("velmora", cancel)
    assert isinstance(next(generator), Searching)
    assert next(generator) == Fetching(0, 3)
    started = time.monotonic()
    cancel.set()
    with pytest.raises(StopIteration) as stop:
        while True:
            next(generator)
    assert stop.value.value == []
    assert time.monotonic() - started < 3


def test_the_ledger_has_each_entry_before_it_is_sent(
    site: Site, embedder: Any, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "data" / "ledger.sqlite3")
    seen_at_request: list[tuple[str, bool]] = []

    class CheckingProvider(ScriptedProvider):
        def search(self, query: str, **options: Any) -> list[SearchResult]:
            seen_at_request.append((query, query in [e.text for e in ledger.entries()]))
            return super().search(query, **options)

    def check_fetch(path: str) -> None:
        seen_at_request.append((path, site.url(path) in [e.text for e in ledger.entries()]))

    site.on_request = check_fetch
    results = [SearchResult("Lighthouse", site.url("/redirect-article"), "")]
    run(build(CheckingProvider([results]), embedder, tmp_path), "velmora lighthouse")
    assert [item for item, _ in seen_at_request] == [
        "velmora lighthouse",
        "/redirect-article",
        "/article",
    ]
    assert all(logged for _, logged in seen_at_request)


def test_without_a_writable_ledger_nothing_is_sent(
    site: Site, embedder: Any, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ledger.sqlite3").mkdir()  # a folder where the file should be
    provider = ScriptedProvider([[SearchResult("A", site.url("/article"), "")]])
    events, passages = run(build(provider, embedder, tmp_path), "velmora")
    assert passages == []
    assert provider.calls == [] and site.requests == []
    assert any("privacy ledger" in getattr(e, "text", "") for e in events)


def test_auto_judges_documents_by_their_cosine_to_the_question(
    embedder: Any, tmp_path: Path
) -> None:
    from retrieval.locator import Locator
    from retrieval.passage import RetrievedPassage
    from retrieval.web.ranking import cosine_rescored

    question = "How tall is the harbour lighthouse?"

    def document(text: str) -> list[RetrievedPassage]:
        # As DocumentLibrary.search returns them: scored by MiniLM cosine.
        found = RetrievedPassage(text, Locator(kind="document", path="/notes.md"), "d1", 0.0)
        return cosine_rescored(question, [found], embedder)

    search = build(ForbiddenProvider(), embedder, tmp_path, mode=WebMode.AUTO)
    covered = search.decide(
        question,
        document("The harbour lighthouse stands 41 metres tall on the northern breakwater."),
    )
    assert not covered.use, covered.reason
    unrelated = search.decide(
        question, document("Rye sourdough needs a long, cool fermentation and a hot oven.")
    )
    assert unrelated.use and "do not cover" in unrelated.reason

    # A year counts as recent by the turn's date, not the system clock's.
    dated = "How tall was the harbour lighthouse in 2019?"
    covering = document("The harbour lighthouse stands 41 metres tall on the northern breakwater.")
    assert search.decide(dated, covering, today=date(2020, 5, 1)).use
    assert not search.decide(dated, covering, today=date(2030, 5, 1)).use


def test_an_embedder_that_cannot_load_ends_in_a_notice(site: Site, tmp_path: Path) -> None:
    from retrieval.embedding import Embedder

    broken = Embedder(tmp_path / "no-such-model")
    provider = ScriptedProvider([[SearchResult("Lighthouse", site.url("/article"), "")]])
    events, passages = run(build(provider, broken, tmp_path), "velmora lighthouse")
    assert passages == []
    assert isinstance(events[-1], SearchFailedNotice)
    assert events[-1].text.startswith("Web pages could not be ranked")
