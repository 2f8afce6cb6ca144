"""``--allow-local-fetch`` opens loopback and private pages, never link-local
(the cloud metadata service), reserved, broadcast, 0.0.0.0/8 or multicast;
and not through a redirect either: every hop is checked."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from retrieval.errors import FetchRefused
from retrieval.web.address_guard import address_problem
from retrieval.web.http_fetch import fetch_page
from tests.hostile.redirect_server import redirect_server

NEVER_EVEN_WITH_LOCAL_FETCH = [
    "169.254.169.254",  # cloud metadata service
    "169.254.0.1",
    "fe80::1",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "0.1.2.3",  # "this network"
    "255.255.255.255",  # broadcast
    "240.0.0.1",  # reserved
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "224.0.0.251",
    "ff02::1",
]
LOCAL_WITH_LOCAL_FETCH = ["127.0.0.1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "::1", "fd00::5"]


@pytest.mark.parametrize("address", NEVER_EVEN_WITH_LOCAL_FETCH)
def test_local_fetch_never_allows_special_ranges(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_local=True) is not None


@pytest.mark.parametrize("address", LOCAL_WITH_LOCAL_FETCH)
def test_local_fetch_allows_loopback_and_private(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_local=True) is None


@pytest.mark.parametrize(
    "where",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/",
        "http://0.0.0.1:8080/",
        "http://255.255.255.255/",
    ],
)
def test_a_redirect_to_metadata_is_refused_with_local_fetch_on(where: str) -> None:
    recorded: list[str] = []
    with redirect_server() as server:
        server.redirects["/result"] = where
        with pytest.raises(FetchRefused, match="Not opening"):
            fetch_page(
                server.url("/result"),
                record=recorded.append,
                deadline=time.monotonic() + 10,
                cancel=threading.Event(),
                allow_local=True,  # as --allow-local-fetch does, no narrowing
            )
    assert server.requests == ["/result"]
    assert recorded == [server.url("/result")]  # nothing was sent to the metadata address


def test_local_fetch_still_follows_a_redirect_on_this_computer() -> None:
    with redirect_server() as server:
        server.redirects["/result"] = "/page"
        page = fetch_page(
            server.url("/result"),
            record=lambda _url: None,
            deadline=time.monotonic() + 10,
            cancel=threading.Event(),
            allow_local=True,
        )
    assert page.final_url == server.url("/page")
    assert b"A page on this computer" in page.body
