"""Concurrent fetching: time boxes, cancel, and the ledger entry per URL."""

from __future__ import annotations

import ipaddress
import threading
import time

from retrieval.web.fetcher import Fetcher, FetchFailure, FetchLimits
from retrieval.web.http_fetch import FetchedPage
from retrieval.web.ledger import Ledger
from tests.retrieval.web.site import Site

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def make_fetcher(ledger: Ledger, **limits: float) -> Fetcher:
    return Fetcher(ledger, limits=FetchLimits(**limits), allow_local=True, local_networks=LOOPBACK)


def run(generator):  # type: ignore[no-untyped-def]
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_every_url_gets_an_outcome_and_a_ledger_entry(
    site: Site, ledger: Ledger, cancel: threading.Event
) -> None:
    urls = [
        site.url(p) for p in ("/article", "/hostile", "/missing", "/tides.pdf", "/redirect-private")
    ]
    events, outcomes = run(make_fetcher(ledger).fetch_all(urls, cancel))
    assert set(outcomes) == set(urls)
    assert isinstance(outcomes[site.url("/article")], FetchedPage)
    assert isinstance(outcomes[site.url("/tides.pdf")], FetchedPage)
    assert "404" in outcomes[site.url("/missing")].reason  # type: ignore[union-attr]
    assert "private network" in outcomes[site.url("/redirect-private")].reason  # type: ignore[union-attr]
    assert events[0].done == 0 and events[-1].done == events[-1].total == len(urls)
    logged = [e.text for e in ledger.entries() if e.kind == "fetch"]
    assert sorted(logged) == sorted(urls)  # the private hop was never sent, so not logged


def test_a_slow_page_does_not_hold_up_the_others_past_its_time_box(
    site: Site, ledger: Ledger, cancel: threading.Event
) -> None:
    urls = [site.url("/slow"), site.url("/article")]
    started = time.monotonic()
    _, outcomes = run(make_fetcher(ledger, page_timeout_s=1.0).fetch_all(urls, cancel))
    elapsed = time.monotonic() - started
    assert isinstance(outcomes[site.url("/article")], FetchedPage)
    slow = outcomes[site.url("/slow")]
    assert isinstance(slow, FetchFailure) and "too long" in slow.reason
    assert elapsed < 6  # the server would hold the slow page for 30 s


def test_the_overall_time_box_ends_everything(
    site: Site, ledger: Ledger, cancel: threading.Event
) -> None:
    urls = [site.url("/slow"), site.url("/slow?2"), site.url("/slow?3")]
    started = time.monotonic()
    _, outcomes = run(
        make_fetcher(ledger, page_timeout_s=30.0, total_timeout_s=1.0).fetch_all(urls, cancel)
    )
    assert time.monotonic() - started < 6
    assert all(isinstance(o, FetchFailure) for o in outcomes.values())


def test_cancel_cuts_blocked_reads(site: Site, ledger: Ledger) -> None:
    cancel = threading.Event()
    fetcher = make_fetcher(ledger, page_timeout_s=30.0, total_timeout_s=30.0)
    generator = fetcher.fetch_all([site.url("/slow")], cancel)
    next(generator)  # Fetching(0, 1): the worker is on its way
    started = time.monotonic()
    cancel.set()
    _, outcomes = run(generator)
    assert time.monotonic() - started < 3
    assert isinstance(outcomes[site.url("/slow")], FetchFailure)


def test_the_size_cap_applies(site: Site, ledger: Ledger, cancel: threading.Event) -> None:
    _, outcomes = run(
        make_fetcher(ledger, max_page_bytes=100_000).fetch_all([site.url("/huge")], cancel)
    )
    page = outcomes[site.url("/huge")]
    assert isinstance(page, FetchedPage) and page.truncated and len(page.body) == 100_000


def test_closing_the_generator_early_stops_the_workers(site: Site, ledger: Ledger) -> None:
    fetcher = make_fetcher(ledger, page_timeout_s=30.0, total_timeout_s=30.0)
    generator = fetcher.fetch_all([site.url("/slow"), site.url("/slow?b")], threading.Event())
    next(generator)
    started = time.monotonic()
    generator.close()  # e.g. the app's turn was dropped
    assert time.monotonic() - started < 3  # the pool is shut down, its sockets cut
