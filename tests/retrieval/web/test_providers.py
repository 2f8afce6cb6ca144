"""SearXNG against a real JSON server on 127.0.0.1; ddgs' exceptions mapped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from retrieval.errors import WebSearchError
from retrieval.web.ddgs_provider import DdgsProvider
from retrieval.web.errors import ProviderMisconfigured, RateLimited, SearchTimeout
from retrieval.web.searxng_provider import SearxngProvider


@contextmanager
def searxng(
    status: int = 200, body: bytes | None = None
) -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    queries: list[dict[str, list[str]]] = []
    payload = (
        body
        if body is not None
        else json.dumps(
            {
                "query": "velmora",
                "results": [
                    {
                        "url": "https://velmora.example/a",
                        "title": "Velmora",
                        "content": "Harbour town.",
                    },
                    {"url": "https://other.example/b", "title": "Other", "content": ""},
                    {"title": "no url, skipped"},
                ],
            }
        ).encode()
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            queries.append({"path": [parts.path], **parse_qs(parts.query)})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-searxng", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", queries
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def ask(provider: Any, **overrides: Any) -> Any:
    options = {"region": "de-de", "safesearch": "strict", "max_results": 5, "timeout_s": 5.0}
    options.update(overrides)
    return provider.search("velmora harbour", **options)


def test_searxng_json_results_and_parameters() -> None:
    with searxng() as (url, queries):
        results = ask(SearxngProvider(url + "/"))
    assert [(r.title, r.url, r.snippet) for r in results] == [
        ("Velmora", "https://velmora.example/a", "Harbour town."),
        ("Other", "https://other.example/b", ""),
    ]
    sent = queries[0]
    assert sent["path"] == ["/search"]
    assert sent["q"] == ["velmora harbour"] and sent["format"] == ["json"]
    assert sent["categories"] == ["general"]
    assert sent["safesearch"] == ["2"] and sent["language"] == ["de-DE"]


def test_searxng_max_results() -> None:
    with searxng() as (url, _):
        assert len(ask(SearxngProvider(url), max_results=1)) == 1


def test_searxng_with_json_disabled_says_which_setting_to_change() -> None:
    with (
        searxng(status=403, body=b"Forbidden") as (url, _),
        pytest.raises(ProviderMisconfigured) as caught,
    ):
        ask(SearxngProvider(url))
    assert "settings.yml" in caught.value.message and "json" in caught.value.message


def test_searxng_rate_limit_and_errors() -> None:
    with searxng(status=429, body=b"") as (url, _), pytest.raises(RateLimited):
        ask(SearxngProvider(url))
    with searxng(status=502, body=b"") as (url, _), pytest.raises(WebSearchError, match="502"):
        ask(SearxngProvider(url))
    with (
        searxng(body=b"<html>not json</html>") as (url, _),
        pytest.raises(WebSearchError, match="cannot read") as caught,
    ):
        ask(SearxngProvider(url))
    assert "not json" in caught.value.detail


def test_searxng_unreachable_and_bad_urls() -> None:
    with searxng() as (url, _):
        pass  # the server is gone now: connection refused
    with pytest.raises(WebSearchError, match="Cannot reach"):
        ask(SearxngProvider(url))
    with pytest.raises(ProviderMisconfigured):
        SearxngProvider("searx.example.org")


@pytest.mark.parametrize(
    ("raised", "expected", "words"),
    [
        ("RatelimitException", RateLimited, "limiting requests"),
        ("TimeoutException", SearchTimeout, "did not answer"),
        ("DDGSException", WebSearchError, "search failed"),
    ],
)
def test_ddgs_exceptions_become_typed_errors(
    monkeypatch: pytest.MonkeyPatch, raised: str, expected: type[Exception], words: str
) -> None:
    import ddgs.ddgs
    import ddgs.exceptions

    exception = getattr(ddgs.exceptions, raised)

    def refuse(self: object, query: str, **kwargs: object) -> list[dict[str, str]]:
        raise exception("engine said no")

    monkeypatch.setattr(ddgs.ddgs.DDGS, "text", refuse)
    with pytest.raises(expected) as caught:
        ask(DdgsProvider())
    assert words in caught.value.args[0]
    assert "engine said no" in caught.value.detail  # type: ignore[attr-defined]


def test_ddgs_results_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddgs.ddgs

    seen: dict[str, object] = {}

    def answer(self: object, query: str, **kwargs: object) -> list[dict[str, str]]:
        seen.update(kwargs, query=query, timeout=self._timeout)  # type: ignore[attr-defined]
        return [{"title": "Velmora", "href": "https://velmora.example/", "body": "Harbour."}]

    monkeypatch.setattr(ddgs.ddgs.DDGS, "text", answer)
    results = ask(DdgsProvider(), timeout_s=0.3)
    assert [(r.title, r.url, r.snippet) for r in results] == [
        ("Velmora", "https://velmora.example/", "Harbour.")
    ]
    assert seen["safesearch"] == "on" and seen["region"] == "de-de"
    assert seen["backend"] == "duckduckgo" and seen["timeout"] == 1  # never 0 (= no timeout)


def test_ddgs_no_results_is_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddgs.ddgs
    import ddgs.exceptions

    def nothing(self: object, query: str, **kwargs: object) -> list[dict[str, str]]:
        raise ddgs.exceptions.DDGSException("No results found.")

    monkeypatch.setattr(ddgs.ddgs.DDGS, "text", nothing)
    assert ask(DdgsProvider()) == []


def test_provider_order_from_settings() -> None:
    from retrieval.web.providers import configured_providers

    assert [p.name for p in configured_providers()] == ["DuckDuckGo"]
    assert [p.name for p in configured_providers("  ")] == ["DuckDuckGo"]
    # The user's own SearXNG is asked first; DuckDuckGo is the fallback.
    both = configured_providers("https://searx.example/search")
    assert [p.name for p in both] == ["SearXNG (searx.example)", "DuckDuckGo"]
    with pytest.raises(ProviderMisconfigured):
        configured_providers("not a url")
