"""An index records the chunker version that cut its files: a new version
re-chunks every file on the next run, and unchanged chunk texts keep their
vectors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval import chunking
from retrieval.chunking import Chunk, content_hash
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.file_reader import ChunkLike, EmbedderLike, parse_and_chunk
from retrieval.ingest_events import IngestFinished, IngestSummary

GUIDE = """\
# Lighthouse

The Velmora harbour lighthouse was built in 1873 by the engineer Ada Brightwater.

## Keepers

Three keepers lived in the tower until the light was automated in 1961.
"""


class SwitchableChunker:
    """The product's chunker, or (after ``shout = True``) one that writes every
    chunk in capitals: a stand-in for a change of chunking rules."""

    def __init__(self) -> None:
        self.shout = False

    def __call__(self, path: Path, embedder: EmbedderLike) -> Iterator[ChunkLike]:
        for chunk in parse_and_chunk(path, embedder):
            text = chunk.text.upper() if self.shout else chunk.text
            yield Chunk(text, chunk.locator, content_hash(text))


@pytest.fixture
def chunker() -> SwitchableChunker:
    return SwitchableChunker()


@pytest.fixture
def switchable_library(
    tmp_path: Path, embedder: Embedder, chunker: SwitchableChunker
) -> Iterator[DocumentLibrary]:
    library = DocumentLibrary(tmp_path / "index", lambda: embedder, chunker=chunker)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "lighthouse.md").write_text(GUIDE)
    (folder / "empty.md").write_text("# Only a heading\n")
    library.add_collection("docs", [folder])
    yield library
    library.close()


def run(library: DocumentLibrary) -> IngestSummary:
    events = list(library.index("docs", threading.Event()))
    finished = [e for e in events if isinstance(e, IngestFinished)]
    assert len(finished) == 1
    return finished[0].summary


def stored_texts(library: DocumentLibrary) -> list[str]:
    with library._db.transaction() as db:  # the test reads the store directly
        return [row[0] for row in db.execute("SELECT text FROM chunks ORDER BY text")]


def test_a_new_chunker_version_rechunks_every_file(
    switchable_library: DocumentLibrary,
    chunker: SwitchableChunker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = switchable_library
    first = run(library)
    assert first.indexed == 1 and first.skipped == 1 and first.failed == 0  # empty.md: no text
    before = stored_texts(library)
    assert before and all("Lighthouse" in t for t in before)

    # New rules without a new version: nothing knows, nothing is redone.
    chunker.shout = True
    assert run(library).unchanged == 2
    assert stored_texts(library) == before

    monkeypatch.setattr(chunking, "CHUNKER_VERSION", chunking.CHUNKER_VERSION + 1)
    bumped = run(library)
    assert bumped.indexed == 1 and bumped.unchanged == 0
    assert stored_texts(library) == sorted(t.upper() for t in before)
    assert library.search("VELMORA LIGHTHOUSE ENGINEER", k=1)[0].text.startswith("LIGHTHOUSE")

    # Recorded: the next run with the same version reads nothing.
    assert run(library).unchanged == 2


def test_a_version_bump_reuses_the_vectors_of_unchanged_chunks(
    switchable_library: DocumentLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = switchable_library
    first = run(library)
    assert first.chunks_added > 0
    monkeypatch.setattr(chunking, "CHUNKER_VERSION", chunking.CHUNKER_VERSION + 1)
    again = run(library)
    assert again.indexed == 1
    assert again.chunks_reused == first.chunks_added  # the same texts: nothing re-embedded
