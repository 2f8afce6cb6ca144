"""DuckDuckGo (and the other engines ddgs scrapes) through the ``ddgs`` package.

Checked against ddgs 9.16: ``DDGS(timeout=...).text(query, region=...,
safesearch=..., max_results=..., backend=...)`` returns dicts with ``title``,
``href`` and ``body``; it raises ``RatelimitException``, ``TimeoutException``
or their base ``DDGSException``. When DuckDuckGo throttles it answers HTTP 202
with no results, which ddgs 9.16 reports only as ``DDGSException("No results
found.")``: we return an empty list then, and the resilient layer treats an
empty answer as a reason to try the other provider and says so.
"""

from __future__ import annotations

import math
from typing import Any

from retrieval.errors import WebSearchError
from retrieval.web.errors import RateLimited, SearchTimeout
from retrieval.web.results import SafeSearch, SearchResult

# ddgs' name for each of our levels ("strict" is its "on").
_DDGS_SAFESEARCH: dict[SafeSearch, str] = {"off": "off", "moderate": "moderate", "strict": "on"}
_RATE_LIMIT_HINTS = ("ratelimit", "rate limit", "429", "202 ", "too many requests")


class DdgsProvider:
    """``backend`` is ddgs' engine list. "duckduckgo" (the default) sends the
    query to DuckDuckGo only, so the privacy ledger can name the one place it
    went; "auto" spreads it over several engines (fewer rate limits, more
    recipients)."""

    def __init__(self, backend: str = "duckduckgo") -> None:
        self._backend = backend

    @property
    def name(self) -> str:
        return "DuckDuckGo" if self._backend == "duckduckgo" else f"ddgs ({self._backend})"

    def search(
        self,
        query: str,
        *,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float,
    ) -> list[SearchResult]:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        try:
            # ddgs takes whole seconds; never round a short budget down to 0 (= no timeout).
            rows: list[dict[str, Any]] = DDGS(timeout=max(1, math.ceil(timeout_s))).text(
                query,
                region=region,
                safesearch=_DDGS_SAFESEARCH[safesearch],
                max_results=max_results,
                backend=self._backend,
            )
        except RatelimitException as exc:
            raise _rate_limited(self.name, exc) from exc
        except TimeoutException as exc:
            raise SearchTimeout(
                f"{self.name} did not answer in {timeout_s:g} s. Check the internet connection "
                "or try again in a moment.",
                detail=repr(exc),
            ) from exc
        except DDGSException as exc:
            text = str(exc)
            if "no results found" in text.lower():
                return []
            if any(hint in text.lower() for hint in _RATE_LIMIT_HINTS):
                raise _rate_limited(self.name, exc) from exc
            raise WebSearchError(
                f"{self.name} search failed. Check the internet connection; if it keeps "
                "failing, set a SearXNG instance as a second provider.",
                detail=f"{type(exc).__name__}: {text}",
            ) from exc
        return [_to_result(row) for row in rows if row.get("href")]


def _rate_limited(name: str, exc: Exception) -> RateLimited:
    return RateLimited(
        f"{name} is limiting requests from this computer for now. Wait a minute, or set "
        "a SearXNG instance as a second provider.",
        detail=f"{type(exc).__name__}: {exc}",
    )


def _to_result(row: dict[str, Any]) -> SearchResult:
    return SearchResult(
        title=str(row.get("title") or "").strip(),
        url=str(row["href"]).strip(),
        snippet=str(row.get("body") or "").strip(),
    )
