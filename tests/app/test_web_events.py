"""Retrieval's web progress becomes the engine's typed events, each with its
one wording: the window and the CLI react to the type and show the text."""

from __future__ import annotations

from app.wiring.grounding import web_event_to_engine
from engine.events import (
    ChoosingPassages,
    NoSearchResults,
    Notice,
    PagesUnread,
    ReadingWebPages,
    SearchFailed,
    SearchFallback,
    SearchingWeb,
    SearchRateLimited,
)
from retrieval.web.events import (
    FallbackNotice,
    Fetching,
    NoResultsNotice,
    PagesUnreadNotice,
    Ranking,
    RateLimitedNotice,
    SearchFailedNotice,
    Searching,
    WebNotice,
)


def test_every_event_has_words_for_the_status_line() -> None:
    searching = web_event_to_engine(Searching("velmora tides", "DuckDuckGo"))
    assert searching == SearchingWeb("velmora tides", "DuckDuckGo")
    assert searching.text == "Searching the web for “velmora tides” (DuckDuckGo)…"
    fetching = web_event_to_engine(Fetching(2, 5))
    assert fetching == ReadingWebPages(2, 5)
    assert fetching.text == "Reading web pages… 2 of 5"
    ranking = web_event_to_engine(Ranking(3))
    assert ranking == ChoosingPassages(3) and "3 web pages" in ranking.text
    limited = web_event_to_engine(RateLimitedNotice("DuckDuckGo is limiting requests.", 60.0))
    assert limited == SearchRateLimited("DuckDuckGo is limiting requests.", 60.0)
    assert limited.text == "DuckDuckGo is limiting requests."


def test_notices_keep_their_kind_and_facts() -> None:
    assert web_event_to_engine(FallbackNotice("Asking SearXNG.", provider="SearXNG")) == (
        SearchFallback("Asking SearXNG.", "SearXNG")
    )
    assert isinstance(web_event_to_engine(SearchFailedNotice("No answer.")), SearchFailed)
    assert isinstance(web_event_to_engine(NoResultsNotice("Nothing found.")), NoSearchResults)
    unread = web_event_to_engine(PagesUnreadNotice("1 of 3 unread.", reasons=(("u", "r"),)))
    assert unread == PagesUnread("1 of 3 unread.", (("u", "r"),))
    # Every notice is a Notice: shown as one, whatever its kind.
    plain = web_event_to_engine(WebNotice("Something."))
    assert type(plain) is Notice and plain.text == "Something."
    assert all(
        isinstance(web_event_to_engine(n), Notice)
        for n in (FallbackNotice("a"), SearchFailedNotice("b"), PagesUnreadNotice("c"))
    )
