"""One guarded page request against a real server on 127.0.0.1.

The server is on loopback, so these tests allow local fetching for
127.0.0.0/8 only (``LOOPBACK``): a redirect from it to 10.0.0.1 is still
refused, before anything is sent there.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

import pytest

from retrieval.errors import FetchRefused
from retrieval.web.errors import PageUnavailable
from retrieval.web.http_fetch import MAX_REDIRECTS, USER_AGENT, FetchedPage, fetch_page
from tests.retrieval.web.site import HUGE_PAGE_BYTES, Site

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def fetch(url: str, *, page_s: float = 5.0, **options: Any) -> tuple[FetchedPage, list[str]]:
    recorded: list[str] = []
    options.setdefault("allow_local", True)
    options.setdefault("local_networks", LOOPBACK)
    options.setdefault("cancel", threading.Event())
    page = fetch_page(url, record=recorded.append, deadline=time.monotonic() + page_s, **options)
    return page, recorded


def test_an_article_arrives_with_its_type_and_charset(site: Site) -> None:
    page, recorded = fetch(site.url("/article"))
    assert page.content_type == "text/html"
    assert page.charset == "utf-8"
    assert b"Ada Brightwater" in page.body
    assert not page.truncated
    assert recorded == [site.url("/article")]


def test_no_cookies_and_a_plain_user_agent(site: Site) -> None:
    fetch(site.url("/article"))  # the server sets a cookie here
    fetch(site.url("/redirect-article"))
    for _path, headers in site.requests:
        assert "Cookie" not in headers
        assert headers["User-Agent"] == USER_AGENT


def test_the_loopback_server_is_refused_without_allow_local(site: Site) -> None:
    with pytest.raises(FetchRefused, match="loopback"):
        fetch(site.url("/article"), allow_local=False)
    assert site.requests == []  # refused before any connection


def test_redirects_are_followed_and_every_hop_recorded(site: Site) -> None:
    page, recorded = fetch(site.url("/redirect-article"))
    assert page.final_url == site.url("/article")
    assert page.url == site.url("/redirect-article")
    assert recorded == [site.url("/redirect-article"), site.url("/article")]


def test_a_redirect_to_a_private_address_is_refused_before_it_is_sent(site: Site) -> None:
    recorded: list[str] = []
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.1 is a private network address"):
        fetch_page(
            site.url("/redirect-private"),
            record=recorded.append,
            deadline=time.monotonic() + 5,
            cancel=threading.Event(),
            allow_local=True,
            local_networks=LOOPBACK,
        )
    # The first hop went out (and is in the ledger); the private one never did.
    assert recorded == [site.url("/redirect-private")]
    assert site.paths() == ["/redirect-private"]


def test_redirect_loops_stop(site: Site) -> None:
    with pytest.raises(PageUnavailable, match=f"more than {MAX_REDIRECTS} times"):
        fetch(site.url("/redirect-loop"))
    assert len(site.requests) == MAX_REDIRECTS + 1


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, by the guard; the socket
    connects to that address, so a second, different DNS answer cannot be used."""
    answers = iter([["127.0.0.1"]])

    def resolve(host: str, port: int) -> list[str]:
        assert host == "news.example"
        return next(answers)  # a second lookup would raise StopIteration

    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host: object, *args: Any, **kwargs: Any) -> Any:
        if host == "news.example":
            pytest.fail("the name was resolved again, after the check")
        return real_getaddrinfo(host, *args, **kwargs)  # the checked IP literal

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    page, _ = fetch(f"http://news.example:{site.port}/article", resolve=resolve)
    assert b"Velmora" in page.body
    assert site.requests[0][1]["Host"] == f"news.example:{site.port}"


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/missing", "HTTP 404"), ("/broken", "HTTP 500"), ("/image.png", "image/png")],
)
def test_errors_and_non_pages_are_reasons(site: Site, path: str, reason: str) -> None:
    with pytest.raises(PageUnavailable, match=reason):
        fetch(site.url(path))


def test_a_huge_page_is_cut_at_the_cap(site: Site) -> None:
    cap = 256 * 1024
    page, _ = fetch(site.url("/huge"), max_bytes=cap)
    assert page.truncated
    assert len(page.body) == cap < HUGE_PAGE_BYTES


def test_a_slow_page_is_time_boxed(site: Site) -> None:
    started = time.monotonic()
    with pytest.raises(PageUnavailable, match=r"took too long|connection failed"):
        fetch(site.url("/slow"), page_s=0.5)
    # Bounded by the deadline, not by the server (which would hold on for 30 s).
    assert time.monotonic() - started < 10


def test_a_gzip_page_is_decoded(site: Site) -> None:
    page, _ = fetch(site.url("/gzip"))
    assert b"Ada Brightwater" in page.body


def test_cancel_stops_before_sending(site: Site) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(PageUnavailable, match="Stopped"):
        fetch(site.url("/article"), cancel=cancelled)
    assert site.requests == []
