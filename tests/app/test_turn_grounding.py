"""What a window turn's context source opens and changes: a web-only turn
leaves the document library closed (the web ranks with the shared embedder),
and a conversation's web mode goes with each call, never into the web search
every conversation shares."""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from app.wiring.grounding import GroundingChoice, SharedEmbedder, WebOptions
from app.wiring.turn_grounding import GroundingService
from engine.context import ContextRequest
from retrieval.documents import DocumentLibrary
from retrieval.source_decision import SourceMode
from retrieval.web.need_search import WebMode


def drain(steps: Generator[Any, None, Any]) -> tuple[list[Any], Any]:
    events: list[Any] = []
    while True:
        try:
            events.append(next(steps))
        except StopIteration as done:
            return events, done.value


class Recorded:
    """A service whose library opener and embedder loader count their calls."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.libraries_opened = 0
        self.embedders_loaded = 0
        self.embedder = SharedEmbedder(self.load_embedder)

    def open_library(self) -> DocumentLibrary:
        self.libraries_opened += 1
        return DocumentLibrary(self.tmp_path / "documents", self.embedder.get)

    def load_embedder(self) -> Any:
        self.embedders_loaded += 1
        raise AssertionError("no turn here ranks anything")

    def service(self) -> GroundingService:
        return GroundingService(
            self.open_library,
            self.embedder,
            data_dir=self.tmp_path / "data",
            cache_dir=self.tmp_path / "cache",
        )


@pytest.mark.parametrize(
    "choice",
    [
        GroundingChoice(collections=(), web=WebMode.AUTO),  # "No documents"
        GroundingChoice(collections=None, web=WebMode.AUTO, documents=SourceMode.OFF),
    ],
)
def test_a_web_only_turn_leaves_the_library_closed_and_the_shared_search_unchanged(
    tmp_path: Path, choice: GroundingChoice
) -> None:
    recorded = Recorded(tmp_path)
    service = recorded.service()
    source = service.source(choice, WebOptions())
    # A thank-you needs no search (the Auto rule): nothing leaves the machine.
    _events, passages = drain(source(ContextRequest("Thanks a lot!"), threading.Event()))
    assert passages == []
    assert recorded.libraries_opened == 0
    assert recorded.embedders_loaded == 0
    assert source.last_search.reason  # the web's rule was asked, in Auto
    web = service.web_search(WebOptions())
    assert web.settings.mode is WebMode.OFF  # the conversation's mode was not written into it


def test_a_turn_that_reads_documents_opens_the_library(tmp_path: Path) -> None:
    recorded = Recorded(tmp_path)
    source = recorded.service().source(GroundingChoice(collections=None), WebOptions())
    drain(source(ContextRequest("What is the travel budget?"), threading.Event()))
    assert recorded.libraries_opened == 1
    assert recorded.embedders_loaded == 0  # no collection yet: nothing to embed
