"""The web search pipeline: query → results → pages → text → ranked passages.

``WebSearch.run(query, cancel)`` is a generator: it yields progress
(:mod:`retrieval.web.events`) and returns the best
:class:`~retrieval.passage.RetrievedPassage`\\ s, possibly none, in which case it
has yielded a notice saying why. It never raises for a failed search or an
unreadable page: the answer goes on from the documents or the model alone.

Nothing leaves the machine unless the mode allows it and the ledger has the
entry first: :meth:`WebSearch.run` returns at once with mode Off, and the two
senders (``ResilientSearch``, ``Fetcher``) record before every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.passage import RetrievedPassage
from retrieval.web.address_guard import IPNetwork, Resolver, system_resolver
from retrieval.web.events import PagesUnreadNotice, Ranking, SearchFailedNotice, WebEvent
from retrieval.web.extraction import ExtractedPage, TextBlock, extract
from retrieval.web.fetcher import Fetcher, FetchFailure, FetchLimits, FetchOutcome
from retrieval.web.http_fetch import FetchedPage
from retrieval.web.ledger import Ledger
from retrieval.web.need_search import SearchDecision, WebMode, need_search
from retrieval.web.ranking import Embedder, RankLimits, rank_pages
from retrieval.web.resilient_search import Backoff, ResilientSearch
from retrieval.web.result_cache import ResultCache
from retrieval.web.results import NO_REGION, SafeSearch, SearchProvider, SearchResult

SEARCH_RESULTS = 8
PAGES_TO_FETCH = 5


@dataclass(frozen=True)
class WebSearchSettings:
    mode: WebMode = WebMode.OFF  # nothing leaves the machine until the user turns it on
    region: str = NO_REGION
    safesearch: SafeSearch = "moderate"
    max_results: int = SEARCH_RESULTS
    pages_to_fetch: int = PAGES_TO_FETCH
    allow_local_fetch: bool = False  # loopback/private pages: tests and intranets only


class WebSearch:
    def __init__(
        self,
        search: ResilientSearch,
        fetcher: Fetcher,
        embedder: Embedder,
        settings: WebSearchSettings,
        *,
        rank_limits: RankLimits | None = None,
        extractor: Callable[[FetchedPage], ExtractedPage] = extract,
    ) -> None:
        self.settings = settings
        self._search = search
        self._fetcher = fetcher
        self._embedder = embedder
        self._rank_limits = rank_limits
        self._extract = extractor

    @classmethod
    def build(
        cls,
        providers: Sequence[SearchProvider],
        embedder: Embedder,
        settings: WebSearchSettings,
        *,
        ledger_path: Path,
        cache_path: Path | None,
        resolve: Resolver = system_resolver,
        local_networks: Sequence[IPNetwork] | None = None,
        fetch_limits: FetchLimits | None = None,
        backoff: Backoff | None = None,
    ) -> WebSearch:
        """The usual composition: providers in order (the first is asked
        first; the others are fallbacks), one ledger for both senders."""
        ledger = Ledger(ledger_path)
        cache = ResultCache(cache_path) if cache_path is not None else None
        return cls(
            ResilientSearch(providers, ledger, cache, backoff=backoff),
            Fetcher(
                ledger,
                limits=fetch_limits,
                allow_local=settings.allow_local_fetch,
                local_networks=local_networks,
                resolve=resolve,
            ),
            embedder,
            settings,
        )

    def decide(
        self,
        question: str,
        document_passages: Sequence[RetrievedPassage],
        *,
        mode: WebMode | None = None,
        today: date | None = None,
    ) -> SearchDecision:
        """The Auto rule (:func:`~retrieval.web.need_search.need_search`) for
        this mode. Its threshold is a cosine similarity: document passages
        must carry the shared embedder's cosine to the question as their score
        (``DocumentLibrary.search`` does; :func:`cosine_rescored` makes any
        passages so). ``today`` (the turn's date, which the query writer is
        told too) sets which years are recent; None: the system date.
        ``mode``: this conversation's (a search shared by conversations is
        not changed per turn); None: ``settings.mode``."""
        mode = self.settings.mode if mode is None else mode
        return need_search(question, mode, document_passages, today=today)

    def run(
        self, query: str, cancel: threading.Event, *, mode: WebMode | None = None
    ) -> Generator[WebEvent, None, list[RetrievedPassage]]:
        """Search, fetch and rank for ``query``; nothing leaves the machine
        with mode Off (``mode`` None: ``settings.mode``)."""
        settings = self.settings
        mode = settings.mode if mode is None else mode
        if mode is WebMode.OFF or not query.strip():
            return []
        results = yield from self._search.search(
            query,
            cancel,
            region=settings.region,
            safesearch=settings.safesearch,
            max_results=settings.max_results,
        )
        # One fetch per page: engines list the same URL twice (news + web results).
        first_by_url: dict[str, SearchResult] = {}
        for result in results:
            first_by_url.setdefault(result.url, result)
        top = list(first_by_url.values())[: settings.pages_to_fetch]
        if not top or cancel.is_set():
            return []
        outcomes = yield from self._fetcher.fetch_all([r.url for r in top], cancel)
        if cancel.is_set():
            return []
        pages, unread = self._readable_pages(top, outcomes, cancel)
        if cancel.is_set():
            return []
        if unread:
            yield PagesUnreadNotice(
                f"{len(unread)} of {len(top)} result pages could not be read; "
                "their search summaries stand in.",
                reasons=tuple(unread),
            )
        yield Ranking(len(pages))
        try:
            return rank_pages(query, pages, self._embedder, cancel, self._rank_limits)
        except RetrievalError as exc:  # the embedding model cannot be loaded
            yield SearchFailedNotice(f"Web pages could not be ranked: {exc.message}")
            return []

    def _readable_pages(
        self,
        results: Sequence[SearchResult],
        outcomes: Mapping[str, FetchOutcome],
        cancel: threading.Event,
    ) -> tuple[list[ExtractedPage], list[tuple[str, str]]]:
        pages: list[ExtractedPage] = []
        unread: list[tuple[str, str]] = []
        for result in results:
            if cancel.is_set():  # extraction takes up to a second or two per page
                break
            outcome = outcomes.get(result.url)
            page: ExtractedPage | None = None
            reason = "not fetched"
            if isinstance(outcome, FetchedPage):
                try:
                    page = self._extract(outcome)
                except Exception as exc:  # noqa: BLE001 - a hostile page must not end the search
                    reason = f"its text could not be extracted ({type(exc).__name__})"
                else:
                    if not page.blocks:
                        page, reason = None, "it has no readable text"
            elif isinstance(outcome, FetchFailure):
                reason = outcome.reason
            if page is not None:
                pages.append(replace(page, title=page.title or result.title))
                continue
            unread.append((result.url, reason))
            if result.snippet:
                pages.append(ExtractedPage(result.url, result.title, (TextBlock(result.snippet),)))
        return pages, unread
