"""Search that degrades visibly: cache, backoff on rate limits, fallback.

For each configured provider in order: a fresh cached answer is used as is
(nothing leaves the machine); otherwise the query is written to the privacy
ledger and sent. A rate limit is retried with exponential backoff and jitter
within ``RATE_LIMIT_BUDGET_S`` in total; a timeout, an error or an empty answer
moves on to the next provider. Every step the user would want to know about is
yielded as a :class:`~retrieval.web.events.WebNotice`; when no provider
answers, the generator returns an empty list after a
:class:`~retrieval.web.events.SearchFailedNotice` with the reason.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

from retrieval.errors import WebSearchError
from retrieval.web.errors import LedgerUnavailable, RateLimited
from retrieval.web.events import (
    FallbackNotice,
    NoResultsNotice,
    RateLimitedNotice,
    SearchFailedNotice,
    Searching,
    WebEvent,
    WebNotice,
)
from retrieval.web.ledger import Ledger
from retrieval.web.result_cache import ResultCache
from retrieval.web.results import SafeSearch, SearchProvider, SearchResult

SEARCH_TIMEOUT_S = 8.0
RATE_LIMIT_FIRST_DELAY_S = 1.0
RATE_LIMIT_BUDGET_S = 8.0  # total waiting on one provider's rate limit, then fall back


@dataclass(frozen=True)
class Backoff:
    """Delays ``first_delay_s * 2**n`` scaled by a random factor in [0.5, 1.5)
    (jitter, so many clients do not retry in lockstep), while their sum stays
    within ``budget_s``."""

    first_delay_s: float = RATE_LIMIT_FIRST_DELAY_S
    budget_s: float = RATE_LIMIT_BUDGET_S
    jitter: Callable[[], float] = random.random

    def delays(self) -> list[float]:
        out: list[float] = []
        attempt = 0
        while True:
            delay = self.first_delay_s * 2**attempt * (0.5 + self.jitter())
            if sum(out) + delay > self.budget_s:
                return out
            out.append(delay)
            attempt += 1


class ResilientSearch:
    def __init__(
        self,
        providers: Sequence[SearchProvider],
        ledger: Ledger,
        cache: ResultCache | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        if not providers:
            raise ValueError("ResilientSearch needs at least one provider")
        self._providers = list(providers)
        self._ledger = ledger
        self._cache = cache
        self._backoff = backoff or Backoff()

    def search(
        self,
        query: str,
        cancel: threading.Event,
        *,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float = SEARCH_TIMEOUT_S,
    ) -> Generator[WebEvent, None, list[SearchResult]]:
        failures: list[str] = []
        for index, provider in enumerate(self._providers):
            if cancel.is_set():
                return []
            if index > 0:
                yield FallbackNotice(f"Asking {provider.name} instead.", provider=provider.name)
            key = ResultCache.key(provider.name, query, region, safesearch, max_results)
            cached = self._cache.get(key) if self._cache else None
            if cached:
                return cached
            yield Searching(query, provider.name)
            error: WebSearchError | None = None
            try:
                results = yield from self._with_backoff(
                    provider=provider,
                    query=query,
                    cancel=cancel,
                    region=region,
                    safesearch=safesearch,
                    max_results=max_results,
                    timeout_s=timeout_s,
                )
            except LedgerUnavailable as exc:
                yield SearchFailedNotice(exc.message)  # no provider may be asked now
                return []
            except WebSearchError as exc:
                results, error = [], exc
            if cancel.is_set():
                return []
            if error is not None:
                failures.append(error.message)
                yield _provider_failed(error)
                continue
            if results:
                if self._cache:
                    self._cache.put(key, results)
                return results
            yield NoResultsNotice(f"{provider.name} found nothing for “{query}”.")
            failures.append("no results")
        if failures and not cancel.is_set():
            yield SearchFailedNotice(
                "No web results, so this answer uses only your documents and the model."
            )
        return []

    def _with_backoff(
        self,
        *,
        provider: SearchProvider,
        query: str,
        cancel: threading.Event,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float,
    ) -> Generator[WebEvent, None, list[SearchResult]]:
        delays = self._backoff.delays()
        for attempt in range(len(delays) + 1):
            # Recorded before sending, every attempt: each retry leaves the machine too.
            self._ledger.record("query", provider.name, query)
            try:
                return provider.search(
                    query,
                    region=region,
                    safesearch=safesearch,
                    max_results=max_results,
                    timeout_s=timeout_s,
                )
            except RateLimited as exc:
                if attempt == len(delays):
                    raise
                delay = delays[attempt]
                yield RateLimitedNotice(
                    f"{provider.name} is limiting requests; trying again in {delay:.0f} s.",
                    retry_in_s=delay,
                )
                if cancel.wait(delay):
                    raise WebSearchError("Search stopped.", detail=exc.detail) from exc
            except WebSearchError:
                raise
            except Exception as exc:  # a provider's bug must not end the answer
                raise WebSearchError(
                    f"{provider.name} failed unexpectedly; this answer does not use the web.",
                    detail=f"{type(exc).__name__}: {exc}",
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises


def _provider_failed(exc: WebSearchError) -> WebNotice:
    if isinstance(exc, RateLimited):
        return RateLimitedNotice(exc.message, retry_in_s=None)
    return WebNotice(exc.message)
