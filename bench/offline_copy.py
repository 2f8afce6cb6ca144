"""What an offline copy of a server collection costs: the first copy, a
refresh when nothing changed, a refresh after 1% of the collection changed,
and a search answered from the copy while the server is down.

    .venv/bin/python -m bench.offline_copy [--sizes 10000] [--texts DIR]

A real ``chroma run`` on 127.0.0.1 (``bench.remote_retrieval``'s) is filled
with the MS MARCO subset's passages, cycled with a serial number, and
random unit vectors (fixed seed; copying does not depend on their values);
the change marker is written as an index run writes it. The copy is made
through ``ServerLibrary.sync_copy``, as ``index offline-copy NAME on`` and
the window do: ids listed, then text, locator and vector pulled 200 rows a
request into the local document store. The search from the copy is
``DocumentLibrary.search`` on the server collection with the server
stopped (MiniLM embeds each question; the server is not asked again for
30 s after it failed, so this is the copy's own latency).
Writes ``bench/results/offline_copy.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.generation import write_results
from bench.remote_retrieval import DEFAULT_TEXTS, DIMENSIONS, INSERT_BATCH, chroma_run
from bench.remote_retrieval import _chunks as bench_chunks
from bench.remote_retrieval import _texts as bench_texts
from engine.hardware import physical_cores
from retrieval.chroma_server import ChromaServer, ServerCollection
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.offline_copy import CopyFinished
from retrieval.server_index import bind_collection, mark_changed
from retrieval.server_search import LOCATOR_KEY

CHANGED_SHARE = 0.01  # the share of chunks replaced between two refreshes
QUERIES = 30


def _fill(remote: ServerCollection, start: int, size: int, passages: list[str]) -> None:
    import json

    rng = np.random.default_rng(start)
    for first in range(start, start + size, INSERT_BATCH):
        count = min(INSERT_BATCH, start + size - first)
        chunks = bench_chunks(first, count, passages)
        vectors = rng.normal(size=(count, DIMENSIONS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        remote.upsert(
            [c.id for c in chunks],
            vectors,
            [c.text for c in chunks],
            [{"path": c.path, LOCATOR_KEY: json.dumps(c.locator.to_dict())} for c in chunks],
        )
    mark_changed(remote)


def _sync(library: DocumentLibrary) -> tuple[float, CopyFinished]:
    started = time.perf_counter()
    events = list(library.servers.sync_copy("team", threading.Event()))
    finished = events[-1]
    assert isinstance(finished, CopyFinished)
    return time.perf_counter() - started, finished


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run_size(
    embedder: Embedder, size: int, passages: list[str], queries: list[str]
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as work:
        index = Path(work) / "index"
        library = DocumentLibrary(index, lambda: embedder)
        try:
            with chroma_run(Path(work)) as url:
                server = ChromaServer(url, read_timeout_s=300)
                remote = bind_collection(server, "team-bench", embedder, DIMENSIONS)
                _fill(remote, 0, size, passages)
                library.servers.add("team", url, "team-bench")
                library.servers.set_offline_copy("team", True)
                before_mb = _folder_mb(index)
                first_s, first = _sync(library)
                copy_mb = _folder_mb(index) - before_mb
                same_s, same = _sync(library)
                changed = int(size * CHANGED_SHARE)
                remote.delete(ids=[f"chunk{n:07d}" for n in range(changed)])
                _fill(remote, size, changed, passages)
                again_s, again = _sync(library)
                server.close()
            assert first.passages == size and same.unchanged, (first, same)
            assert again.added == changed and again.removed == changed, again
            # The server is gone: every question is answered from the copy.
            library.search(queries[0], ["team"], k=8)  # refused; left alone for 30 s
            times = []
            for q in queries[:QUERIES]:
                started = time.perf_counter()
                found = library.search(q, ["team"], k=8)
                times.append((time.perf_counter() - started) * 1000)
                assert found and library.servers.answered_from_copy("team")[0], q
        finally:
            library.close()
    one, five, _ = os.getloadavg()
    return {
        "first_copy_s": round(first_s, 1),
        "passages_per_s": round(size / first_s),
        "copy_mb": round(copy_mb, 1),
        "unchanged_refresh_ms": round(same_s * 1000, 1),
        "changed_refresh_s": round(again_s, 2),
        "changed_passages": changed,
        "search_from_copy_p50_ms": round(statistics.median(times), 1),
        "search_from_copy_p95_ms": round(float(np.percentile(times, 95)), 1),
        "load_1_5_min": f"{one:.1f} / {five:.1f}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="a BEIR folder")
    args = parser.parse_args(argv)
    passages, queries = bench_texts(args.texts)
    embedder = Embedder()
    embedder.load()
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{physical_cores()} physical cores, {platform.system()}",
        "server": "chroma run on 127.0.0.1, same machine (no network delay)",
        "note": "real texts, random unit vectors; 1% of the chunks replaced between the "
        "second and third refresh; search from the copy with the server stopped",
    }
    print(
        "| chunks | first copy | passages/s | on disk | refresh, unchanged | "
        "refresh, 1% changed | search from copy p50 / p95 | load (1 / 5 min) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for size in args.sizes:
        row = run_size(embedder, size, passages, queries)
        results[str(size)] = row
        print(
            f"| {size:,} | {row['first_copy_s']} s | {row['passages_per_s']:,} | "
            f"{row['copy_mb']} MB | {row['unchanged_refresh_ms']} ms | "
            f"{row['changed_refresh_s']} s | {row['search_from_copy_p50_ms']} / "
            f"{row['search_from_copy_p95_ms']} ms | {row['load_1_5_min']} |"
        )
    write_results("offline_copy.json", results)


if __name__ == "__main__":
    main()
