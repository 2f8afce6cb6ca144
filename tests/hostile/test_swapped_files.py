"""A file swapped after the scan never hangs indexing, and a run stops within
about a second of a cancel in every phase (#21 item 5).

The swap happens between the scan and the read, deterministically: the
chunker of the first file swaps the second one (the reader takes files in
scan order). Real worker processes, real MiniLM, real chromadb."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.discovery import FoundFile, discover
from retrieval.documents import DocumentLibrary
from retrieval.errors import ParseFailed
from retrieval.file_reader import EmbedderLike, parse_and_chunk
from retrieval.parsing.worker import ParserPool, parse_file
from retrieval.safe_open import Identity
from tests.hostile.index_helpers import embedder, run_index, write_notes
from tests.retrieval.test_parsing_worker import wait_until_gone

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from retrieval.embedding import Embedder

__all__ = ["embedder"]  # a fixture used below

HANG = "tests.retrieval.hostile_parsers:hang"
# A cancel must end a run within about a second; the bound leaves room for a
# loaded 2-core machine (the old code took the 30 s parse timeout or forever).
STOP_BOUND_S = 3.0
WAIT_S = 60.0


def library_with(
    tmp_path: Path, embedder: EmbedderLike, chunker: Callable[..., Iterator[object]]
) -> DocumentLibrary:
    return DocumentLibrary(tmp_path / "data", lambda: embedder, chunker=chunker)  # type: ignore[arg-type]


def swapping_chunker(swap: Callable[[], None]) -> Callable[..., Iterator[object]]:
    """The product's chunker, that first swaps the next file when it reads note1."""

    def chunker(path: Path, embedder: EmbedderLike) -> Iterator[object]:
        if path.name == "note1.md":
            swap()
        yield from parse_and_chunk(path, embedder)

    return chunker


def release_reader(fifo: Path) -> None:
    """Let a reader blocked in open() on ``fifo`` go (the old code's hang), so
    a failing test does not leave a thread stuck for good."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def states(library: DocumentLibrary) -> dict[str, tuple[str, str]]:
    return {Path(h.path).name: (h.state, h.reason) for h in library.file_health("notes")}


def test_a_file_swapped_for_a_pipe_is_refused_not_waited_on(
    tmp_path: Path, embedder: Embedder
) -> None:
    notes = write_notes(tmp_path / "notes")
    victim = notes[1]

    def swap() -> None:
        victim.unlink()
        os.mkfifo(victim)

    library = library_with(tmp_path, embedder, swapping_chunker(swap))
    library.add_collection("notes", [tmp_path / "notes"])
    try:
        _, summary = run_index(library, "notes")
    finally:
        release_reader(victim)
        library.close()

    assert summary.indexed == 2 and summary.failed == 1
    assert states(library)["note2.md"] == (
        "unreadable",
        "replaced by a named pipe after the scan; not read",
    )


def test_a_file_swapped_for_a_link_to_dev_zero_is_not_read(
    tmp_path: Path, embedder: Embedder
) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    notes = write_notes(tmp_path / "notes")

    def swap() -> None:
        notes[1].unlink()
        notes[1].symlink_to("/dev/zero")

    library = library_with(tmp_path, embedder, swapping_chunker(swap))
    library.add_collection("notes", [tmp_path / "notes"])
    try:
        _, summary = run_index(library, "notes")
        # not read: gone from this run; the next scan sees the link for what it is
        assert summary.indexed == 2 and summary.removed == 1
        run_index(library, "notes")
        assert states(library)["note2.md"] == (
            "link_outside",
            "link to /dev/zero, outside this collection's folders",
        )
    finally:
        library.close()


def test_a_file_swapped_for_a_link_to_a_secret_is_not_read(
    tmp_path: Path, embedder: Embedder
) -> None:
    notes = write_notes(tmp_path / "notes")
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is otter-marigold-4471.\n")

    def swap() -> None:
        notes[1].unlink()
        notes[1].symlink_to(secret)

    library = library_with(tmp_path, embedder, swapping_chunker(swap))
    library.add_collection("notes", [tmp_path / "notes"])
    try:
        run_index(library, "notes")
        assert all("vault" not in p.text for p in library.search("vault code otter", k=10))
    finally:
        library.close()


def test_the_parser_refuses_a_file_that_is_not_the_one_scanned(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("The scanned report.\n")
    (found,) = [f for f in discover([path]) if isinstance(f, FoundFile)]
    replacement = tmp_path / "other.txt"
    replacement.write_text("Another file, saved in its place.\n")
    replacement.replace(path)

    with ParserPool(size=1) as pool, pytest.raises(ParseFailed) as caught:
        list(pool.parse(path, identity=Identity.of(found)))

    assert caught.value.state == "unreadable"
    assert caught.value.message == "report.txt: replaced by another file after the scan"


# ----------------------------------------------------------------- cancel


def test_cancel_stops_a_run_stuck_in_a_parser_within_a_second(
    tmp_path: Path, embedder: Embedder
) -> None:
    write_notes(tmp_path / "notes", 1)

    def hanging(path: Path, _embedder: EmbedderLike) -> Iterator[object]:
        yield from parse_file(path, parser=HANG)  # a PDF that hangs pdfium, say

    library = library_with(tmp_path, embedder, hanging)
    library.add_collection("notes", [tmp_path / "notes"])
    cancel = threading.Event()
    done = threading.Event()
    runner = threading.Thread(
        target=lambda: (list(library.index("notes", cancel)), done.set()), daemon=True
    )
    runner.start()
    pid_file = tmp_path / "notes" / "note1.pid"
    deadline = time.monotonic() + WAIT_S
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the parser has started (it writes its pid first)
    assert pid_file.exists()

    cancel.set()
    started = time.monotonic()
    stopped = done.wait(WAIT_S)
    took = time.monotonic() - started
    runner.join(WAIT_S)
    library.close()

    assert stopped and took < STOP_BOUND_S, f"the run took {took:.1f} s to stop"
    assert wait_until_gone(int(pid_file.read_text()))  # the stuck worker was killed
    assert states(library)["note1.md"][0] == "pending"  # read again next time


class CancellingEmbedder:
    """The real embedder, that presses cancel during its first batch of
    document chunks (as the window's Stop does mid-embedding)."""

    def __init__(self, real: Embedder, cancel: threading.Event) -> None:
        self.real = real
        self.cancel = cancel
        self.batches: list[int] = []

    @property
    def model_id(self) -> str:
        return self.real.model_id

    @property
    def max_tokens(self) -> int:
        return self.real.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.batches.append(len(texts))
        self.cancel.set()
        return self.real.embed_documents(texts)


def test_cancel_while_embedding_stops_after_a_small_slice_and_writes_nothing(
    tmp_path: Path, embedder: Embedder
) -> None:
    write_notes(tmp_path / "notes", 12)  # 24 chunks: one batch of the old code
    cancel = threading.Event()
    model = CancellingEmbedder(embedder, cancel)
    library = DocumentLibrary(tmp_path / "data", lambda: model)
    library.add_collection("notes", [tmp_path / "notes"])
    try:
        _, summary = run_index(library, "notes", cancel)
        assert summary.cancelled
        assert model.batches == [16]  # one slice (under a second), then it stopped
        # embedded before anything was written: every file waits for next time
        assert {state for state, _ in states(library).values()} == {"pending"}
        assert library.collections()[0].chunks == 0
    finally:
        library.close()


class CancelAfter(threading.Event):
    """Reads as set from the ``calls``-th check on: a cancel that lands while
    the run is checking it in a loop (here: the scan, once per entry)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def is_set(self) -> bool:
        self.calls -= 1
        return self.calls <= 0 or super().is_set()


def test_cancel_during_the_scan_stops_it_and_decides_nothing(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(400):
        (folder / f"n{n:03}.txt").write_text(f"note {n}\n")
    library = DocumentLibrary(tmp_path / "data", lambda: embedder)
    library.add_collection("notes", [folder])
    try:
        _, summary = run_index(library, "notes", CancelAfter(40))
        assert summary.cancelled and summary.indexed == 0
        assert library.file_health("notes") == []  # no row from half a scan
    finally:
        library.close()


def test_waiting_on_a_pipe_is_never_how_a_read_starts(tmp_path: Path) -> None:
    """The reader's open of a pipe returns at once (O_NONBLOCK) and is refused."""
    from retrieval.safe_open import NotTheScannedFile, sha256_of

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    try:
        with pytest.raises(NotTheScannedFile) as caught:
            sha256_of(fifo, None, stall_timeout_s=WAIT_S)
    finally:
        release_reader(fifo)
    assert caught.value.reason == "replaced by a named pipe after the scan; not read"
    assert not caught.value.replaced
