"""A SearXNG instance (self-hosted or trusted) through its JSON API:
``GET {instance}/search?q=...&format=json&categories=general``.

The instance URL is the user's own setting, often on their own machine or
intranet, so it is reached directly (urllib, no cookies) and not through the
page fetcher's private-address guard, which exists for URLs that came from
search results. SearXNG ships with ``formats: [html]`` only: the JSON API then
answers 403, and we say which setting to change.

Redirects stay on the instance's host: the privacy ledger names that host as
where the query went, so a redirect to another server (a moved instance, a
captive portal, a hostile proxy) is refused and named rather than followed
with the query in its URL. Same-host redirects (http to https, a trailing
slash, a path prefix) are followed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import SplitResult, urlencode, urlsplit

from retrieval.errors import WebSearchError
from retrieval.web.errors import ProviderMisconfigured, RateLimited, SearchTimeout
from retrieval.web.results import NO_REGION, SafeSearch, SearchResult

USER_AGENT = "Footnote/0.1 (+desktop assistant; web search)"
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_SAFESEARCH_LEVEL: dict[SafeSearch, str] = {"off": "0", "moderate": "1", "strict": "2"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None


def same_server(old_url: str, new_url: str) -> bool:
    """Whether a redirect from ``old_url`` to ``new_url`` stays on the same
    server: the same host and port, or the same host moving up to https."""
    old, new = urlsplit(old_url), urlsplit(new_url)
    if not old.hostname or (old.hostname or "").lower() != (new.hostname or "").lower():
        return False
    old_scheme, new_scheme = old.scheme.lower(), new.scheme.lower()
    if old_scheme == new_scheme:
        return _port(old) == _port(new)
    return old_scheme == "http" and new_scheme == "https"  # never down to plain http


class _SameServerRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not same_server(req.full_url, newurl):
            fp.close()
            old_host, new_host = urlsplit(req.full_url).hostname, urlsplit(newurl).hostname
            where = (
                new_host if new_host and new_host != old_host else newurl.split("?", maxsplit=1)[0]
            )
            raise ProviderMisconfigured(
                f"The SearXNG instance at {old_host} redirected the search to {where}; "
                "Footnote did not follow, so the query went nowhere else. If the instance "
                "has moved, enter its new address in Settings.",
                detail=f"HTTP {code} {msg}: {req.full_url.split('?')[0]} -> {newurl}",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameServerRedirects())


class SearxngProvider:
    def __init__(self, instance_url: str) -> None:
        parts = urlsplit(instance_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderMisconfigured(
                f"“{instance_url}” is not a SearXNG address. Enter the instance's URL, "
                "for example https://searx.example.org.",
            )
        self._base = instance_url.strip().rstrip("/")
        if self._base.endswith("/search"):
            self._base = self._base.removesuffix("/search")

    @property
    def name(self) -> str:
        return f"SearXNG ({urlsplit(self._base).hostname})"

    def search(
        self,
        query: str,
        *,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float,
    ) -> list[SearchResult]:
        params = {
            "q": query,
            "format": "json",
            "categories": "general",
            "safesearch": _SAFESEARCH_LEVEL[safesearch],
        }
        if region and region != NO_REGION:
            # SearXNG wants "en-US" where DuckDuckGo says "us-en".
            country, _, lang = region.partition("-")
            params["language"] = f"{lang}-{country.upper()}" if lang else region
        request = urllib.request.Request(
            f"{self._base}/search?{urlencode(params)}",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=timeout_s) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response's socket
            raise self._http_error(exc) from exc
        except TimeoutError as exc:
            raise SearchTimeout(
                f"{self.name} did not answer in {timeout_s:g} s.", detail=repr(exc)
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise SearchTimeout(
                    f"{self.name} did not answer in {timeout_s:g} s.", detail=repr(exc)
                ) from exc
            raise WebSearchError(
                f"Cannot reach {self.name}. Check the instance URL in Settings and that it "
                "is running.",
                detail=repr(exc),
            ) from exc
        if len(body) > MAX_RESPONSE_BYTES:
            raise WebSearchError(
                f"{self.name} sent an unexpectedly large answer.", detail=f"> {len(body)} bytes"
            )
        return self._parse(body, max_results)

    def _http_error(self, exc: urllib.error.HTTPError) -> WebSearchError:
        if exc.code == 403:
            return ProviderMisconfigured(
                f"{self.name} refuses JSON requests. In the instance's settings.yml, add "
                "“json” under search → formats, then restart it.",
                detail=f"HTTP 403 from {exc.url}",
            )
        if exc.code == 429:
            return RateLimited(
                f"{self.name} is limiting requests for now. Wait a minute and try again.",
                detail=f"HTTP 429 from {exc.url}",
            )
        if exc.code == 404:
            return ProviderMisconfigured(
                f"{self.name} has no search API at {self._base}/search. Check the instance URL.",
                detail=f"HTTP 404 from {exc.url}",
            )
        return WebSearchError(
            f"{self.name} answered with an error (HTTP {exc.code}). Try again later.",
            detail=f"HTTP {exc.code} {exc.reason} from {exc.url}",
        )

    def _parse(self, body: bytes, max_results: int) -> list[SearchResult]:
        try:
            data: Any = json.loads(body)
            rows = data["results"]
            if not isinstance(rows, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise WebSearchError(
                f"{self.name} sent an answer Footnote cannot read. Is this a SearXNG instance?",
                detail=f"{type(exc).__name__}: {exc}; body starts {body[:200]!r}",
            ) from exc
        results: list[SearchResult] = []
        for row in rows:
            if not isinstance(row, dict) or not row.get("url"):
                continue
            results.append(
                SearchResult(
                    title=str(row.get("title") or "").strip(),
                    url=str(row["url"]).strip(),
                    snippet=str(row.get("content") or "").strip(),
                )
            )
            if len(results) >= max_results:
                break
        return results
