"""Query latency of ``DocumentLibrary.search`` at 10k and 100k chunks.

    .venv/bin/python -m bench.query_latency [--sizes 10000 100000] [--texts ../shared/eval/msmarco]

Each size is a fresh library whose collection holds that many chunks: real
passage texts (the MS MARCO subset's, cycled with a serial number so every
chunk is distinct) in the FTS5 index, and **random unit vectors** in chroma.
Latency does not depend on the vector values (HNSW does the same work for any
vectors of this size and dimension), and embedding 100k chunks would take
hours on this VM, so the vectors are random on purpose. Each query is timed
end to end: MiniLM embeds the query, chroma and FTS5 each return 50
candidates, the fusion ranks them, and the top 8 passages are read back.
Writes ``bench/results/query_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.generation import write_results
from engine.hardware import physical_cores
from retrieval import lexical_index
from retrieval.collections import update_collection
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.lexical_index import StoredChunk
from retrieval.locator import Locator

HERE = Path(__file__).resolve().parent
DEFAULT_TEXTS = HERE.parent.parent / "shared" / "eval" / "msmarco"
INSERT_BATCH = 4000
WARMUP_QUERIES = 5
K = 8


def texts(folder: Path) -> tuple[list[str], list[str]]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        passages = [json.loads(line)["text"] for line in handle]
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = [json.loads(line)["text"] for line in handle]
    return passages, queries


def build(library: DocumentLibrary, embedder: Embedder, size: int, passages: list[str]) -> None:
    collection = library.add_collection("bench", [Path("/bench")])
    with library._db.transaction() as db:
        collection = update_collection(db, collection, model_id=embedder.model_id)
    rng = np.random.default_rng(0)
    for start in range(0, size, INSERT_BATCH):
        count = min(INSERT_BATCH, size - start)
        chunks = []
        for n in range(start, start + count):
            path = f"/bench/doc{n // 20:05d}.txt"
            text = f"{passages[n % len(passages)]} ({n})"
            locator = Locator("document", path=path, line_start=n % 20 + 1)
            chunks.append(StoredChunk(f"chunk{n:07d}", path, f"h{n}", locator, text))
        vectors = rng.normal(size=(count, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        library._vectors.upsert(
            collection.vector_name,
            [c.id for c in chunks],
            vectors,
            [{"path": c.path, "collection": "bench"} for c in chunks],
        )
        with library._db.transaction() as db:
            lexical_index.insert_chunks(db, collection.id, chunks)


def measure(library: DocumentLibrary, queries: list[str]) -> list[float]:
    for q in queries[:WARMUP_QUERIES]:
        library.search(q, k=K)
    times = []
    for q in queries:
        started = time.perf_counter()
        found = library.search(q, k=K)
        times.append((time.perf_counter() - started) * 1000)
        assert found, q
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="a BEIR folder")
    args = parser.parse_args()
    passages, queries = texts(args.texts)
    embedder = Embedder()
    embedder.load()
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{physical_cores()} physical cores, {platform.system()}",
        "note": "real chunk texts in FTS5, random unit vectors in chroma (latency does not "
        "depend on vector values); each query includes its MiniLM embedding",
        "queries": len(queries),
    }
    print("| chunks | p50 ms | p95 ms | build s |\n|---:|---:|---:|---:|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as work:
            library = DocumentLibrary(Path(work) / "index", lambda: embedder)
            started = time.perf_counter()
            build(library, embedder, size, passages)
            build_s = time.perf_counter() - started
            times = measure(library, queries)
            library.close()
        p50 = statistics.median(times)
        p95 = float(np.percentile(times, 95))
        results[str(size)] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
        print(f"| {size:,} | {p50:.1f} | {p95:.1f} | {build_s:.0f} |")
    print("(random unit vectors in chroma: latency does not depend on their values)")
    write_results("query_latency.json", results)


if __name__ == "__main__":
    main()
