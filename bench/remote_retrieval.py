"""Hybrid query latency, local store vs a Chroma server, at 10k and 100k chunks
(the retrieval half of ``bench.remote``).

    .venv/bin/python -m bench.remote_retrieval [--sizes 10000 100000] [--texts DIR]

For each size the same chunks go into a local library (SQLite FTS5 + the
embedded chroma store) and into a collection on a real ``chroma run``
started by this script on 127.0.0.1 (so no network delay is measured: on a
LAN add a round trip or two per query). Chunk texts are the MS MARCO
subset's passages, cycled with a serial number so each is distinct;
vectors are **random unit vectors, fixed by a seed, the same on both
sides**: latency does not depend on their values, and embedding 100k chunks
would take hours here. Each query is timed end to end through
``DocumentLibrary.search`` (MiniLM embeds the query each time): local is
FTS5 + the local HNSW; the server is the dense query, one ``$regex`` count
per term and one all-words filter sent in parallel, then the lexical
candidates' text and vectors, BM25 over them here, the same fusion.

Also reported: how often the server's top 8 agree with the local top 8
for the same question and chunks (with random vectors the dense side is
noise shared by both, so this measures the lexical side's fidelity).

Quality (``--quality``, on by default): the BEIR sets in ../shared/eval
with their **real** MiniLM vectors (cached by ``bench.retrieval`` under
``bench/.cache/``), each passage one chunk, locally and on the server:
nDCG@10 of the same hybrid search both ways, and how many of the local top
10 the server returns too.
Writes ``bench/results/remote_retrieval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.generation import write_results
from bench.query_latency import DEFAULT_TEXTS, INSERT_BATCH, WARMUP_QUERIES, K, texts
from engine.hardware import physical_cores
from retrieval import lexical_index
from retrieval.chroma_server import ChromaServer
from retrieval.collections import update_collection
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.lexical_index import StoredChunk
from retrieval.locator import Locator
from retrieval.server_index import bind_collection
from retrieval.server_search import LOCATOR_KEY

DIMENSIONS = 384
SERVER_START_TIMEOUT_S = 60.0


@contextmanager
def chroma_run(folder: Path) -> Iterator[str]:
    """A ``chroma run`` on 127.0.0.1 storing in ``folder``; yields its URL."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = Path(sys.executable).parent / "chroma"
    log = (folder / "chroma.log").open("wb")
    process = subprocess.Popen(
        [
            str(command),
            "run",
            "--path",
            str(folder / "db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chroma run did not start; see chroma.log") from None
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _chunks(start: int, count: int, passages: list[str]) -> list[StoredChunk]:
    chunks = []
    for n in range(start, start + count):
        path = f"/bench/doc{n // 20:05d}.txt"
        text = f"{passages[n % len(passages)]} ({n})"
        locator = Locator("document", path=path, line_start=n % 20 + 1)
        chunks.append(StoredChunk(f"chunk{n:07d}", path, f"h{n}", locator, text))
    return chunks


def build(
    library: DocumentLibrary, embedder: Embedder, url: str, size: int, passages: list[str]
) -> tuple[float, float]:
    """The same chunks and vectors locally and on the server; (local s, server s)."""
    collection = library.add_collection("local", [Path("/bench")])
    with library._db.transaction() as db:
        collection = update_collection(db, collection, model_id=embedder.model_id)
    server = ChromaServer(url, read_timeout_s=300)
    remote = bind_collection(server, "bench", embedder, DIMENSIONS)
    rng = np.random.default_rng(0)
    local_s = server_s = 0.0
    try:
        for start in range(0, size, INSERT_BATCH):
            count = min(INSERT_BATCH, size - start)
            chunks = _chunks(start, count, passages)
            vectors = rng.normal(size=(count, DIMENSIONS)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            began = time.perf_counter()
            library._vectors.upsert(
                collection.vector_name,
                [c.id for c in chunks],
                vectors,
                [{"path": c.path, "collection": "local"} for c in chunks],
            )
            with library._db.transaction() as db:
                lexical_index.insert_chunks(db, collection.id, chunks)
            local_s += time.perf_counter() - began
            began = time.perf_counter()
            remote.upsert(
                [c.id for c in chunks],
                vectors,
                [c.text for c in chunks],
                [{"path": c.path, LOCATOR_KEY: json.dumps(c.locator.to_dict())} for c in chunks],
            )
            server_s += time.perf_counter() - began
    finally:
        server.close()
    library.servers.add("server", url, "bench")
    return local_s, server_s


def measure(
    library: DocumentLibrary, collection: str, queries: list[str]
) -> tuple[list[float], list[list[str]]]:
    for q in queries[:WARMUP_QUERIES]:
        library.search(q, [collection], k=K)
    times, tops = [], []
    for q in queries:
        # every question's words counted anew on the server (a conversation
        # reuses its words' counts for two minutes: faster than this)
        library.servers.forget_terms()
        started = time.perf_counter()
        found = library.search(q, [collection], k=K)
        times.append((time.perf_counter() - started) * 1000)
        assert found, q
        tops.append([p.id for p in found])
    return times, tops


def _passage(chunk_id: str, passages: int) -> int:
    """The corpus passage a chunk repeats (chunks cycle through the corpus)."""
    return int(chunk_id.removeprefix("chunk")) % passages


def quality(embedder: Embedder, folder: Path) -> dict[str, float]:
    """nDCG@10 of the hybrid search over one BEIR set, local vs server."""
    from bench.retrieval import CACHE, CachedEmbedder, load_beir, ndcg_at

    corpus, queries, qrels = load_beir(folder)
    cached = CachedEmbedder(embedder, CACHE / "embeddings.sqlite3")
    ids = list(corpus)
    texts = [corpus[i] for i in ids]
    vectors = cached.embed_documents(texts)
    chunks = [
        StoredChunk(
            f"d{n:06d}", f"/eval/{n:06d}.txt", f"h{n}", Locator("document", f"/eval/{n:06d}.txt"), t
        )
        for n, t in enumerate(texts)
    ]
    doc_of = {c.id: doc_id for c, doc_id in zip(chunks, ids, strict=True)}
    found: dict[str, list[float]] = {"local": [], "server": []}
    overlap = []
    with tempfile.TemporaryDirectory() as work, chroma_run(Path(work)) as url:
        library = DocumentLibrary(Path(work) / "index", lambda: cached)
        try:
            collection = library.add_collection("local", [Path("/eval")])
            with library._db.transaction() as db:
                collection = update_collection(db, collection, model_id=embedder.model_id)
                lexical_index.insert_chunks(db, collection.id, chunks)
            library._vectors.upsert(
                collection.vector_name,
                [c.id for c in chunks],
                vectors,
                [{"path": c.path, "collection": "local"} for c in chunks],
            )
            with ChromaServer(url, read_timeout_s=300) as server:
                remote = bind_collection(server, "eval", embedder, DIMENSIONS)
                remote.upsert(
                    [c.id for c in chunks],
                    vectors,
                    texts,
                    [
                        {"path": c.path, LOCATOR_KEY: json.dumps(c.locator.to_dict())}
                        for c in chunks
                    ],
                )
            library.servers.add("server", url, "eval")
            for qid, question in queries.items():
                tops = {}
                for side in ("local", "server"):
                    ranked = [doc_of[p.id] for p in library.search(question, [side], k=10)]
                    found[side].append(ndcg_at(ranked, qrels[qid]))
                    tops[side] = ranked
                overlap.append(len(set(tops["local"]) & set(tops["server"])) / 10)
        finally:
            library.close()
    return {
        "queries": len(queries),
        "passages": len(corpus),
        "ndcg10_local": round(statistics.mean(found["local"]), 4),
        "ndcg10_server": round(statistics.mean(found["server"]), 4),
        "top10_overlap": round(statistics.mean(overlap), 3),
    }


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} / {five:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="a BEIR folder")
    parser.add_argument(
        "--quality",
        type=Path,
        nargs="*",
        default=sorted(p for p in DEFAULT_TEXTS.parent.iterdir() if p.is_dir()),
        help="BEIR folders to compare nDCG@10 on, local vs server (none: skip)",
    )
    args = parser.parse_args(argv)
    passages, queries = texts(args.texts)
    embedder = Embedder()
    embedder.load()
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{physical_cores()} physical cores, {platform.system()}",
        "server": "chroma run (chromadb's own server) on 127.0.0.1, same machine",
        "note": "real chunk texts, random unit vectors (fixed seed, the same locally and on "
        "the server; latency does not depend on vector values); each query includes its "
        "MiniLM embedding; every query's term counts asked anew (no cache); agreement = "
        "share of the passages of the local top 8 also among the server's top 8",
        "queries": len(queries),
    }
    print(
        "| chunks | local p50 ms | local p95 ms | server p50 ms | server p95 ms "
        "| top-8 agreement | same top 1 | load (1 / 5 min) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as work, chroma_run(Path(work)) as url:
            library = DocumentLibrary(Path(work) / "index", lambda: embedder)
            try:
                local_build, server_build = build(library, embedder, url, size, passages)
                local, local_tops = measure(library, "local", queries)
                remote, remote_tops = measure(library, "server", queries)
            finally:
                library.close()
        # Compared as corpus passages: at 100k every passage is 20 chunks
        # (cycled, with a serial), equal in words, so which copies come
        # first is decided by the random vectors, on both sides alike.
        n = len(passages)
        agreement = statistics.mean(
            len({_passage(i, n) for i in a} & {_passage(i, n) for i in b})
            / len({_passage(i, n) for i in a})
            for a, b in zip(local_tops, remote_tops, strict=True)
        )
        same_first = statistics.mean(
            float(_passage(a[0], n) == _passage(b[0], n))
            for a, b in zip(local_tops, remote_tops, strict=True)
        )
        row = {
            "local_p50_ms": round(statistics.median(local), 1),
            "local_p95_ms": round(float(np.percentile(local, 95)), 1),
            "server_p50_ms": round(statistics.median(remote), 1),
            "server_p95_ms": round(float(np.percentile(remote, 95)), 1),
            "top8_agreement": round(agreement, 3),
            "same_top1": round(same_first, 3),
            "build_local_s": round(local_build, 1),
            "build_server_s": round(server_build, 1),
            "load_1_5_min": _load(),
        }
        results[str(size)] = row
        print(
            f"| {size:,} | {row['local_p50_ms']} | {row['local_p95_ms']} | "
            f"{row['server_p50_ms']} | {row['server_p95_ms']} | {agreement:.0%} | "
            f"{same_first:.0%} | {row['load_1_5_min']} |"
        )
    if args.quality:
        print(
            "\n| set | passages | nDCG@10 local | nDCG@10 server | top-10 overlap |\n"
            "|---|---:|---:|---:|---:|"
        )
    for folder in args.quality:
        row = quality(embedder, folder)
        results[f"quality_{folder.name}"] = row
        print(
            f"| {folder.name} | {row['passages']:,} | {row['ndcg10_local']:.3f} | "
            f"{row['ndcg10_server']:.3f} | {row['top10_overlap']:.0%} |"
        )
    write_results("remote_retrieval.json", results)


if __name__ == "__main__":
    main()
