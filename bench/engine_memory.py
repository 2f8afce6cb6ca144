"""Peak memory and load time, each in a fresh subprocess.

Peak RSS (``ru_maxrss``) only grows, so every figure needs its own process:
``python -m bench.engine_memory MODE MODEL`` loads the model the way the app
does (``engine.model.load_model``, 4K context), answers one short turn (which
touches every weight page and llama.cpp's compute buffers), and prints one JSON
line. Modes:

* ``f16`` / ``q8``: the KV cache in f16, or in q8_0 with flash attention;
* ``cold``: ``f16`` after evicting the model file from the page cache
  (``posix_fadvise(DONTNEED)`` on that file only, so other programs' caches
  stay), to time a load from disk;
* ``app``: ``f16`` plus what document search keeps loaded: the MiniLM
  embedder (``retrieval.embedding.Embedder``) and a 10k-chunk chromadb index
  (``retrieval.vector_index.VectorIndex``), queried once so its HNSW graph is
  in memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from engine.events import Finished, Token
from engine.model import LoadOptions, load_model
from engine.turn import ChatSession, SamplingParams, TurnRequest

HERE = Path(__file__).resolve().parent
INDEX_CHUNKS = 10_000
INDEX_NAME = "bench_10k"
EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2
CONTEXT_TOKENS = 4096
KV_SPEED_TOKENS = 32
GIB = 2**30


def index_folder() -> Path:
    return HERE / ".cache" / f"chroma-{INDEX_CHUNKS}"


def ensure_index() -> Path:
    """A chromadb index of INDEX_CHUNKS chunks (random unit vectors with the
    metadata the indexer stores): what it costs in memory does not depend on
    the vectors' values, and embedding 10k real chunks takes minutes here."""
    from retrieval.vector_index import VectorIndex

    folder = index_folder()
    index = VectorIndex(folder)
    if folder.exists() and index.count(INDEX_NAME) == INDEX_CHUNKS:
        return folder
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((INDEX_CHUNKS, EMBEDDING_DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"chunk-{i:05d}" for i in range(INDEX_CHUNKS)]
    metadatas: list[dict[str, str | int | float | bool]] = [
        {"path": f"/docs/file-{i // 20:04d}.pdf", "page": i % 20 + 1, "collection": "bench"}
        for i in range(INDEX_CHUNKS)
    ]
    index.upsert(INDEX_NAME, ids, vectors, metadatas)
    return folder


def evict_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached_fraction(path: Path) -> float | None:
    """Share of the file in the page cache (util-linux ``fincore``), or None."""
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return int(out[0]) / max(int(out[1]), 1)
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


def _child(mode: str, model_path: Path) -> dict[str, object]:
    result: dict[str, object] = {"mode": mode}
    if mode == "cold":
        evict_from_page_cache(model_path)
        result["cached_fraction_before_load"] = cached_fraction(model_path)
    started = time.perf_counter()
    model = load_model(
        model_path,
        LoadOptions(context_tokens=CONTEXT_TOKENS, seed=1, kv_cache_8bit=mode == "q8"),
    )
    result["load_s"] = time.perf_counter() - started
    result["context_tokens"] = model.context_tokens
    session = ChatSession(model)
    request = TurnRequest(
        "You are a helpful assistant.", [], "Hello!", SamplingParams(max_answer_tokens=4)
    )
    first = 0.0
    for event in session.run(request, threading.Event()):
        if isinstance(event, Token) and not first:
            first = time.perf_counter() - started
        if isinstance(event, Finished):
            first = first or time.perf_counter() - started
    # Load + the first answer token (its first graph touches the compute buffers).
    result["load_to_first_token_s"] = first
    result["rss_gib_model"] = _peak_rss_gib()
    if mode in ("f16", "q8"):
        # What the KV choice costs in speed: q8_0 needs llama.cpp's flash
        # attention, a different CPU kernel from the f16 default.
        answer = TurnRequest(
            "You are a helpful assistant.",
            [],
            "Tell me a story.",
            SamplingParams(max_answer_tokens=KV_SPEED_TOKENS),
        )
        for event in session.run(answer, threading.Event()):
            if isinstance(event, Finished):
                result["decode_tokens_per_s"] = event.stats.tokens_per_second
    if mode == "app":
        from retrieval.embedding import Embedder
        from retrieval.vector_index import VectorIndex

        embedder = Embedder()
        vector = embedder.embed_query("What did the report say about memory bandwidth?")
        hits = VectorIndex(index_folder()).query(INDEX_NAME, vector, 8)
        result["index_hits"] = len(hits)
    result["rss_gib_peak"] = _peak_rss_gib()
    model.close()
    return result


def _peak_rss_gib() -> float:
    """This process's peak resident memory. On Linux from VmHWM: ru_maxrss
    carries the parent's peak across fork + exec (the parent held a 1 GiB
    bandwidth buffer), VmHWM belongs to this address space alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    # ru_maxrss is in bytes on macOS.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / GIB


def measure_in_subprocess(mode: str, model_path: Path) -> dict[str, object]:
    """Run one mode in a fresh interpreter and return its figures."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.engine_memory", mode, str(model_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child {mode} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], Path(sys.argv[2]))))
