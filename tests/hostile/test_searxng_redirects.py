"""The SearXNG provider never carries the query to a server the privacy ledger
does not name: a redirect to another host is refused (and said), while a
redirect on the same server is followed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from retrieval.web.errors import ProviderMisconfigured
from retrieval.web.searxng_provider import SearxngProvider, same_server
from tests.hostile.redirect_server import redirect_server


def _search(provider: SearxngProvider) -> list[str]:
    results = provider.search(
        "where is my query going",
        region="wt-wt",
        safesearch="moderate",
        max_results=5,
        timeout_s=10,
    )
    return [r.url for r in results]


def test_a_redirect_to_another_host_is_refused_and_the_query_stays_home() -> None:
    with redirect_server() as instance, redirect_server() as elsewhere:
        port = urlsplit(elsewhere.base).port
        # "localhost" is another host name than the instance's 127.0.0.1
        instance.redirects["/search"] = f"http://localhost:{port}/search?q=leaked"
        with pytest.raises(ProviderMisconfigured) as caught:
            _search(SearxngProvider(instance.base))
    assert elsewhere.requests == []
    assert "redirected the search to localhost" in caught.value.message
    assert "leaked" not in caught.value.message  # the message names the host, not the query
    assert len(instance.requests) == 1


def test_a_redirect_on_the_same_server_is_followed() -> None:
    with redirect_server() as instance:
        instance.redirects["/search"] = "/searx/search?q=moved&format=json"
        assert _search(SearxngProvider(instance.base)) == ["https://example.org/a"]
    assert [r.split("?")[0] for r in instance.requests] == ["/search", "/searx/search"]


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ("http://searx.lan/search?q=x", "https://searx.lan/search?q=x", True),
        ("https://searx.lan/search?q=x", "https://SEARX.lan/search/?q=x", True),
        ("https://searx.lan/search?q=x", "http://searx.lan/search?q=x", False),  # downgrade
        ("https://searx.lan/search?q=x", "https://searx.lan:8443/search?q=x", False),
        ("https://searx.lan/search?q=x", "https://tracker.example/search?q=x", False),
        ("https://searx.lan/search?q=x", "https://searx.lan.evil.example/?q=x", False),
    ],
)
def test_which_redirects_stay_on_the_same_server(old: str, new: str, same: bool) -> None:
    assert same_server(old, new) is same
