"""Fixtures for web search tests: the local site, the real embedder, a ledger,
and the one fake the tests allow: search providers (the public search
engines cannot exist here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from retrieval.errors import WebSearchError
from retrieval.web.ledger import Ledger
from retrieval.web.results import SafeSearch, SearchResult
from tests.retrieval.web.site import Site, serve_site


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The documents' real embedder (MiniLM from the offline weights package)."""
    from retrieval.embedding import Embedder

    real = Embedder()
    real.load()
    return real


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "data" / "web-ledger.sqlite3")


@pytest.fixture
def cancel() -> threading.Event:
    return threading.Event()


@dataclass
class ScriptedProvider:
    """A search engine that answers from a script: each call takes the next
    step, a result list or an exception to raise; the last step repeats."""

    steps: list[list[SearchResult] | WebSearchError]
    name: str = "Scripted"
    calls: list[tuple[str, str, str, int]] = field(default_factory=list)

    def search(
        self,
        query: str,
        *,
        region: str,
        safesearch: SafeSearch,
        max_results: int,
        timeout_s: float,
    ) -> list[SearchResult]:
        self.calls.append((query, region, safesearch, max_results))
        step = self.steps[min(len(self.calls) - 1, len(self.steps) - 1)]
        if isinstance(step, WebSearchError):
            raise step
        return step[:max_results]


@dataclass
class ForbiddenProvider:
    """Fails the test if anything asks it."""

    name: str = "Forbidden"

    def search(self, query: str, **kwargs: object) -> list[SearchResult]:
        pytest.fail(f"the provider was asked {query!r} although nothing may leave the machine")
