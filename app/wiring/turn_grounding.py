"""Each window turn's context source, built from the conversation's choice.

The window knows, on its GUI thread, what a conversation grounds on
(:class:`~app.wiring.grounding.GroundingChoice`) and the web settings; the work
(opening the document library, importing torch and chromadb, building the
web search) must happen on the engine thread that runs the turn. So the
GUI thread makes a :class:`TurnGrounding` per turn, a cheap object, and
the engine thread calls it like any context source. No Qt here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

from app.wiring.grounding import (
    GroundingChoice,
    GroundingSource,
    LastSearch,
    SharedEmbedder,
    WebOptions,
    build_web_search,
)
from engine.context import ContextRequest, Passage
from engine.events import Notice, Progress, SourcesDeclined
from retrieval.documents import DocumentLibrary
from retrieval.source_decision import Decision, SourceMode
from retrieval.web.need_search import WebMode
from retrieval.web.pipeline import WebSearch


class GroundingService:
    """Holds what turns share: the library (opened by ``open_library`` on
    first use, off the GUI thread, and only by a turn that reads documents),
    the embedding model (``embedder``: the one the library uses, so documents
    and web pages are ranked by one model loaded once) and one web search per
    set of options (its result cache, backoff state and fetch pool live
    across turns)."""

    def __init__(
        self,
        open_library: Callable[[], DocumentLibrary],
        embedder: SharedEmbedder,
        *,
        data_dir: Path,
        cache_dir: Path,
    ) -> None:
        self._open_library = open_library
        self.embedder = embedder
        self._data_dir = data_dir
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._web: tuple[WebOptions, WebSearch] | None = None

    def source(self, choice: GroundingChoice, web_options: WebOptions) -> TurnGrounding:
        """For the GUI thread: costs nothing until the engine thread calls it."""
        return TurnGrounding(self, choice, web_options)

    def library(self) -> DocumentLibrary:
        return self._open_library()

    def web_search(self, options: WebOptions) -> WebSearch:
        with self._lock:
            if self._web is None or self._web[0] != options:
                web = build_web_search(
                    options,
                    self.embedder,
                    data_dir=self._data_dir,
                    cache_dir=self._cache_dir,
                )
                self._web = (options, web)
            return self._web[1]


class TurnGrounding:
    """A :class:`~engine.context.ContextSource` for one turn. After the turn,
    ``last_search`` says what was searched on the web (for "Edit query")."""

    def __init__(
        self, service: GroundingService, choice: GroundingChoice, web_options: WebOptions
    ) -> None:
        self._service = service
        self.choice = choice
        self.web_options = web_options
        self.last_search = LastSearch()
        self.last_documents: Decision | None = None

    def __call__(
        self, request: ContextRequest, cancel: threading.Event
    ) -> Generator[Progress | Notice | SourcesDeclined, None, Sequence[Passage]]:
        choice = self.choice
        reads_documents = choice.collections != () and choice.documents is not SourceMode.OFF
        if not reads_documents and choice.web is WebMode.OFF:
            return []  # nothing to ground on
        # A web-only turn leaves the library closed: the web ranks with the
        # shared embedder, which loads on its own.
        library = self._service.library() if reads_documents else None
        web = self._service.web_search(self.web_options) if choice.web is not WebMode.OFF else None
        source = GroundingSource(library, web, self.choice)
        try:
            return (yield from source(request, cancel))
        finally:
            self.last_search = source.last_search
            self.last_documents = source.last_documents
