"""The indexing ETA comes from measured throughput, counts the embedded part
of the file in progress, and says nothing until it has measured enough."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from retrieval import file_reader, indexer
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.eta import MIN_MEASURED_S, RATE_WINDOW_S, ThroughputEta
from retrieval.ingest_events import IngestProgress

MB = 1_000_000


def test_one_large_file_in_progress_gives_a_sane_estimate() -> None:
    """The probe's run: a few small files done, one 1 GB file being embedded
    at 8 MB/s. Dividing by finished files' bytes said ~100,000 minutes."""
    eta = ThroughputEta()
    small_done = 40_000  # bytes of small files, finished in the first second
    estimates = []
    for second in range(64):
        in_progress = max(0, second - 1) * 8 * MB  # the large file's embedded part
        estimates.append(eta.update(float(second), small_done + in_progress, 1_000 * MB))
    last = estimates[-1]
    assert last is not None
    assert 55 < last < 70  # (1000 - 496) MB left at 8 MB/s: 63 s


def test_nothing_is_said_before_enough_is_measured() -> None:
    eta = ThroughputEta()
    assert eta.update(0.0, 0, 100 * MB) is None
    assert eta.update(MIN_MEASURED_S / 2, 30 * MB, 100 * MB) is None  # too soon
    eta = ThroughputEta()
    eta.update(0.0, 0, 100 * MB)
    assert eta.update(MIN_MEASURED_S + 1, 1000, 100 * MB) is None  # too little done


def test_the_rate_follows_the_recent_window() -> None:
    """A slow start (the embedding model loading) ages out of the window."""
    eta = ThroughputEta()
    eta.update(0.0, 0, 200 * MB)
    eta.update(20.0, 2 * MB, 200 * MB)  # 20 s of start-up at a crawl
    estimate = None
    for step in range(1, 61):
        estimate = eta.update(20.0 + step, 2 * MB + step * MB, 200 * MB)
    assert RATE_WINDOW_S < 60
    assert estimate is not None and abs(estimate - 138) < 2  # 138 MB left at 1 MB/s


class _Clock:
    """The indexer's clock, one second per reading: a run that takes seconds
    of CPU here looks like minutes of work, deterministically."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def test_a_run_with_one_large_file_never_shows_an_absurd_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"small-{n}.md").write_text(f"# Small {n}\n\nA few words about herons.\n")
    big = "\n\n".join(
        f"Paragraph {p}: " + "the heron counts reeds by the river. " * 12 for p in range(240)
    )
    (docs / "z-big.txt").write_text(big)  # read after the small ones
    clock = _Clock()
    monkeypatch.setattr(indexer, "time", clock)
    # The large file reaches the embedder in parts of 8 chunks, flushed as
    # they come: progress is reported while it is half done, as with a real
    # large file (parts of PART_CHUNKS) at full scale.
    monkeypatch.setattr(file_reader, "PART_CHUNKS", 8)
    library = DocumentLibrary(tmp_path / "index", Embedder, flush_chunks=8)
    try:
        library.add_collection("docs", [docs], [])
        events = list(library.index("docs", threading.Event()))
    finally:
        library.close()
    run_s = clock.now
    shown = [e.eta_s for e in events if isinstance(e, IngestProgress) and e.eta_s is not None]
    assert any(eta > 0 for eta in shown), "an estimate appears while the file is in progress"
    # Dividing by the finished files' bytes said ~10,000-48,000 s for this ~60 s run.
    assert max(shown) < 3 * run_s, (shown, run_s)
