"""Grounding: the context source a chat turn reads from, wired from the
document library and the web search (no Qt: the window and the CLI share it).

The engine asks a :class:`~engine.context.ContextSource` for passages; this
module is that source. It looks in the conversation's document collections
first and decides whether to use what it found (documents: Off / Auto /
Always, :func:`retrieval.source_decision.decide_documents`), then whether to
search the web (the same three modes, :func:`retrieval.web.need_search.
need_search`, which shares the documents' rule), lets Phi-3 write the query
(``ContextRequest.write_search_query``, which reuses the conversation's KV
cache), and returns documents and web pages as one list, in relevance order,
for the budget planner to number. Retrieval's own progress events become the
engine's typed events here (:func:`web_event_to_engine`), so the engine never
imports retrieval and the window reacts to event types, not to wording.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.context import ContextRequest, Passage
from engine.events import (
    ChoosingPassages,
    NoSearchResults,
    Notice,
    PagesUnread,
    Progress,
    ReadingWebPages,
    SearchFailed,
    SearchFallback,
    SearchingDocuments,
    SearchingWeb,
    SearchRateLimited,
    SourcesDeclined,
    WritingSearchQuery,
)
from engine.query_writer import fallback_query
from retrieval.documents import DocumentLibrary
from retrieval.errors import RetrievalError
from retrieval.file_reader import EmbedderLike
from retrieval.offline_copy import copy_time_text
from retrieval.passage import RetrievedPassage
from retrieval.source_decision import (
    WEAK_COSINE,
    Decision,
    SourceMode,
    decide_documents,
    is_evidence,
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
    WebEvent,
)
from retrieval.web.need_search import WebMode
from retrieval.web.pipeline import WebSearch, WebSearchSettings
from retrieval.web.providers import configured_providers
from retrieval.web.ranking import Embedder
from retrieval.web.results import NO_REGION, SafeSearch

if TYPE_CHECKING:  # numpy arrives with the embedder, not with the window
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

DOCUMENT_PASSAGES = 8  # candidates from documents; the planner keeps what fits


@dataclass(frozen=True)
class GroundingChoice:
    """What one conversation grounds on."""

    # Collection names; None: every collection; (): none (documents off).
    collections: tuple[str, ...] | None = None
    web: WebMode = WebMode.OFF
    # Whether the documents' passages are sent: Auto only when the question
    # asks for information and the search found evidence.
    documents: SourceMode = SourceMode.AUTO
    # The query the user edited in the status line, used instead of the
    # model's for the next turn ("edit and re-run").
    web_query: str | None = None
    # Whether collections on Chroma servers are searched too (not while
    # reading ahead: nothing leaves the computer before Enter).
    servers: bool = True


@dataclass
class LastSearch:
    """What the last turn searched, for the status line and "edit the query"."""

    query: str = ""
    reason: str = ""


class GroundingSource:
    """A :class:`~engine.context.ContextSource`: call it as the engine does."""

    def __init__(
        self,
        library: DocumentLibrary | None,
        web: WebSearch | None,
        choice: GroundingChoice,
        *,
        document_passages: int = DOCUMENT_PASSAGES,
    ) -> None:
        self._library = library
        self._web = web
        self.choice = choice
        self._k = document_passages
        self.last_search = LastSearch()
        # Whether the last turn used the documents, and why (None: not asked).
        self.last_documents: Decision | None = None

    def __call__(
        self, request: ContextRequest, cancel: threading.Event
    ) -> Generator[Progress | Notice | SourcesDeclined, None, Sequence[Passage]]:
        found = yield from self._documents(request)
        documents = yield from self._decide_documents(request.question, found)
        if cancel.is_set():
            return documents
        # The web's Auto rule asks whether the documents cover the question:
        # it reads everything found, also what the documents' gate held back.
        pages = yield from self._web_pages(request, found, cancel)
        return merged_by_relevance(documents, pages)

    # ------------------------------------------------------------ documents

    def _documents(
        self, request: ContextRequest
    ) -> Generator[Progress | Notice, None, list[RetrievedPassage]]:
        library, names = self._library, self.choice.collections
        if library is None or names == () or self.choice.documents is SourceMode.OFF:
            return []
        local = [c.name for c in library.collections()]
        servers = [r.name for r in library.servers.refs()] if self.choice.servers else []
        if not self.choice.servers:
            names = tuple(n for n in (local if names is None else names) if n in local)
        if (not local and not servers) or names == ():
            return []
        yield SearchingDocuments()
        try:  # milliseconds here; a server's search is bounded by its timeouts
            found = library.search(request.question, names, self._k)
        except RetrievalError as exc:
            log.warning("document search failed: %s (%s)", exc, exc.detail)
            yield Notice(f"Your documents could not be searched: {exc}")
            return []
        for name in servers if names is None else [n for n in names if n in servers]:
            problem = library.servers.problem(name)
            from_copy, synced_ns = library.servers.answered_from_copy(name)
            if problem is not None and from_copy:
                yield Notice(
                    f"“{name}” answered from this computer's offline copy of "
                    f"{copy_time_text(synced_ns)}: {problem.message}"
                )
            elif problem is not None:  # the others answered; say which did not
                yield Notice(f"“{name}” was not searched: {problem.message}")
        return found

    def _decide_documents(
        self, question: str, found: list[RetrievedPassage]
    ) -> Generator[SourcesDeclined, None, list[RetrievedPassage]]:
        """The passages to send, after the Off / Auto / Always rule. In Auto,
        passages that are noise for this question (low cosine, none of its
        words or identifiers) are held back even when others are sent."""
        mode = self.choice.documents
        if self._library is None or self.choice.collections == () or mode is SourceMode.OFF:
            self.last_documents = None
            return []
        decision = decide_documents(question, mode, found)
        self.last_documents = decision
        if not decision:
            log.info("documents not used: %s", decision.reason)
            if found and mode is SourceMode.AUTO:  # found, held back: say so, offer them
                yield SourcesDeclined("document", decision.reason)
            return []
        if mode is SourceMode.AUTO:
            return [p for p in found if p.score >= WEAK_COSINE or is_evidence(question, p)]
        return found

    # ------------------------------------------------------------ web

    def _web_pages(
        self,
        request: ContextRequest,
        documents: Sequence[RetrievedPassage],
        cancel: threading.Event,
    ) -> Generator[Progress | Notice, None, list[RetrievedPassage]]:
        web, mode = self._web, self.choice.web
        if web is None or mode is WebMode.OFF:
            return []
        # The web search is shared by every turn (its cache and backoff live
        # across them): this conversation's mode goes with each call.
        decision = web.decide(request.question, documents, mode=mode, today=request.today)
        self.last_search = LastSearch(reason=decision.reason)
        if not decision:
            log.info("no web search: %s", decision.reason)
            return []
        query = self.choice.web_query
        if not query:
            yield WritingSearchQuery()
            writer = request.write_search_query
            query = (
                writer(cancel)
                if writer is not None
                else fallback_query(request.question, request.recent_questions)
            )
        if cancel.is_set() or not query.strip():
            return []
        self.last_search = LastSearch(query=query, reason=decision.reason)
        events = web.run(query, cancel, mode=mode)
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                return list(done.value or [])
            yield web_event_to_engine(event)


def merged_by_relevance(
    documents: Sequence[RetrievedPassage], pages: Sequence[RetrievedPassage]
) -> list[RetrievedPassage]:
    """One list from two rankings, each kept in its own order: at every step
    the head with the higher score goes first. Both scores are the same
    embedder's cosine, so the heads compare; the orders within each list
    (the documents' fused hybrid order, the web's ranking) are never undone."""
    merged: list[RetrievedPassage] = []
    i = j = 0
    while i < len(documents) and j < len(pages):
        if pages[j].score > documents[i].score:
            merged.append(pages[j])
            j += 1
        else:
            merged.append(documents[i])
            i += 1
    return [*merged, *documents[i:], *pages[j:]]


def web_event_to_engine(event: WebEvent) -> Progress | Notice:
    """Retrieval's web progress as the engine's typed turn events; each
    carries its one wording for the window and the CLI."""
    converted: Progress | Notice
    match event:
        case Searching(query, provider):
            converted = SearchingWeb(query, provider)
        case Fetching(done, total):
            converted = ReadingWebPages(done, total)
        case Ranking(pages):
            converted = ChoosingPassages(pages)
        case RateLimitedNotice():
            converted = SearchRateLimited(event.text, event.retry_in_s)
        case FallbackNotice():
            converted = SearchFallback(event.text, event.provider)
        case SearchFailedNotice():
            converted = SearchFailed(event.text)
        case NoResultsNotice():
            converted = NoSearchResults(event.text)
        case PagesUnreadNotice():
            converted = PagesUnread(event.text, event.reasons)
        case _:
            converted = Notice(event.text)
    return converted


@dataclass(frozen=True)
class WebOptions:
    """The app's web search settings (Settings → Web search; CLI flags)."""

    searxng_url: str = ""  # a self-hosted SearXNG instance, asked first when set
    region: str = NO_REGION
    safesearch: SafeSearch = "moderate"
    # Off by default (like chat-ui's ENABLE_LOCAL_FETCH): the only way to let
    # the fetcher reach loopback or private addresses (tests, intranets).
    allow_local_fetch: bool = False


def build_web_search(
    options: WebOptions, embedder: Embedder, *, data_dir: Path, cache_dir: Path
) -> WebSearch:
    """The configured providers (:func:`retrieval.web.providers.
    configured_providers`: a SearXNG instance first when one is set, then
    DuckDuckGo); one ledger for every request that leaves."""
    return WebSearch.build(
        configured_providers(options.searxng_url),
        embedder,
        WebSearchSettings(
            region=options.region,
            safesearch=options.safesearch,
            allow_local_fetch=options.allow_local_fetch,
        ),
        ledger_path=ledger_path(data_dir),
        cache_path=web_cache_path(cache_dir),
    )


class SharedEmbedder:
    """One embedding model for the document library and web ranking, loaded
    on first use (torch takes seconds to import) by whichever needs it first:
    a web-only turn loads it without opening the document library. Pass
    :meth:`get` to the library as its embedder factory."""

    def __init__(self, load: Callable[[], EmbedderLike]) -> None:
        self._load = load
        self._embedder: EmbedderLike | None = None
        self._lock = threading.Lock()

    def get(self) -> EmbedderLike:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            return self._embedder

    @property
    def max_tokens(self) -> int:
        return self.get().max_tokens

    def count_tokens(self, text: str) -> int:
        return self.get().count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.get().embed_documents(texts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return self.get().embed_documents([text])[0]


def ledger_path(data_dir: Path) -> Path:
    """Every query and URL that left the machine (see retrieval.web.ledger)."""
    return data_dir / "privacy-ledger.sqlite3"


def web_cache_path(cache_dir: Path) -> Path:
    return cache_dir / "web-results.sqlite3"
