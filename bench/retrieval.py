"""Retrieval quality: BM25 only, dense only and hybrid, side by side.

    .venv/bin/python -m bench.retrieval ../shared/eval/msmarco ../shared/eval/business-reports

Each argument is a BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/test.tsv``). The corpus goes through the product's own code: every
passage becomes a file in a collection, ``index_collection`` writes the
manifest, chroma and FTS5 (passages are already chunk-sized, so the chunker
is one chunk per file, title + text), and queries go through
``DocumentLibrary.rankings`` and the product's fusion. Embeddings are cached
under ``bench/.cache/`` keyed by model id + text hash, so reruns skip the
minutes MiniLM takes on 5,000 passages.

Prints nDCG@10 and recall@10 per method and writes
``bench/results/retrieval.json``:
``{"<folder>": {"bm25": {"ndcg@10": x, "recall@10": y}, "dense": {...}, "hybrid": {...}}}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.generation import write_results
from retrieval.documents import CANDIDATES_PER_RETRIEVER, DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.file_reader import EmbedderLike
from retrieval.hybrid import DEFAULT_FUSION, PLAIN_RRF, Fusion
from retrieval.ingest_events import IngestFinished
from retrieval.locator import Locator

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CUTOFF = 10
CANDIDATES = CANDIDATES_PER_RETRIEVER  # as the product's search uses


class CachedEmbedder:
    """An embedder whose document vectors are remembered on disk (SQLite)."""

    def __init__(self, inner: Embedder, cache_file: Path) -> None:
        self.inner = inner
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(cache_file, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, vector BLOB)")
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        keys = [hashlib.sha256(f"{self.model_id}\0{t}".encode()).hexdigest() for t in texts]
        with self._lock:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" for _ in part)
                found.update(
                    self._db.execute(f"SELECT key, vector FROM v WHERE key IN ({marks})", part)
                )
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.embed_documents([texts[i] for i in missing])
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    [(keys[i], fresh[j].tobytes()) for j, i in enumerate(missing)],
                )
                self._db.commit()
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j].tobytes()
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])


@dataclass(frozen=True)
class _PassageChunk:
    text: str
    locator: Locator
    content_hash: str

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.content_hash}\0{self.locator.path}".encode()).hexdigest()[:32]


def _passage_chunker(path: Path, _embedder: EmbedderLike) -> Iterator[_PassageChunk]:
    text = path.read_text(encoding="utf-8")
    yield _PassageChunk(
        text, Locator(kind="document", path=str(path)), hashlib.sha256(text.encode()).hexdigest()
    )


def load_beir(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc.get('title', '')} {doc['text']}".strip()
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return corpus, queries, qrels


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], cutoff: int = CUTOFF) -> float:
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:cutoff]))
    ideal = sorted(judged.values(), reverse=True)[:cutoff]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], cutoff: int = CUTOFF) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:cutoff])) / len(relevant) if relevant else 0.0


@dataclass
class Run:
    """Candidate rankings of every query, in corpus ids, from the product's index."""

    dense: dict[str, list[tuple[str, float]]]
    lexical: dict[str, list[tuple[str, float]]]
    qrels: dict[str, dict[str, int]]

    def score(self, method: str, fusion: Fusion = DEFAULT_FUSION) -> dict[str, float]:
        ndcg, recall = [], []
        for qid, judged in self.qrels.items():
            if qid not in self.dense:
                continue
            if method == "dense":
                ranking = self.dense[qid]
            elif method == "bm25":
                ranking = self.lexical[qid]
            elif method == "plain-rrf":
                ranking = PLAIN_RRF.fuse(self.dense[qid], self.lexical[qid])
            else:
                ranking = fusion.fuse(self.dense[qid], self.lexical[qid])
            ids = [i for i, _ in ranking]
            ndcg.append(ndcg_at(ids, judged))
            recall.append(recall_at(ids, judged))
        return {
            "ndcg@10": round(float(np.mean(ndcg)), 4),
            "recall@10": round(float(np.mean(recall)), 4),
        }


def run_dataset(folder: Path, embedder: EmbedderLike, work: Path) -> Run:
    corpus, queries, qrels = load_beir(folder)
    docs = work / "docs"
    docs.mkdir(parents=True)
    path_of: dict[str, str] = {}
    for n, (doc_id, text) in enumerate(corpus.items()):
        path = docs / f"{n:06d}.txt"
        path.write_text(text, encoding="utf-8")
        path_of[str(path)] = doc_id
    library = DocumentLibrary(work / "data", lambda: embedder, chunker=_passage_chunker)
    try:
        library.add_collection(folder.name, [docs])
        for event in library.index(folder.name, threading.Event()):
            if isinstance(event, IngestFinished):
                print(
                    f"  indexed {event.summary.indexed} passages in {event.summary.seconds:.0f} s"
                )
        target = [library.collection(folder.name)]
        doc_of_chunk: dict[str, str] = {}
        dense: dict[str, list[tuple[str, float]]] = {}
        lexical: dict[str, list[tuple[str, float]]] = {}
        for qid, text in queries.items():
            d, b = library.rankings(text, target, CANDIDATES)
            for chunk_id, _ in (*d, *b):
                if chunk_id not in doc_of_chunk:
                    for p in library.passages(target, [(chunk_id, 0.0)]):
                        doc_of_chunk[chunk_id] = path_of[p.locator.path or ""]
            dense[qid] = [(doc_of_chunk[i], s) for i, s in d]
            lexical[qid] = [(doc_of_chunk[i], s) for i, s in b]
    finally:
        library.close()
    return Run(dense, lexical, qrels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", type=Path, help="BEIR folders")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    embedder = CachedEmbedder(Embedder(), CACHE / "embeddings.sqlite3")
    results: dict[str, object] = {}
    print(f"| set | method | nDCG@{CUTOFF} | recall@{CUTOFF} |\n|---|---|---:|---:|")
    for folder in args.datasets:
        with tempfile.TemporaryDirectory() as work:
            run = run_dataset(folder.resolve(), embedder, Path(work))
        scores_by_method = {m: run.score(m) for m in ("bm25", "dense", "hybrid", "plain-rrf")}
        results[folder.name] = scores_by_method
        for method, scores in scores_by_method.items():
            ndcg, recall = scores["ndcg@10"], scores["recall@10"]
            print(f"| {folder.name} | {method} | {ndcg:.3f} | {recall:.3f} |")
    write_results("retrieval.json", results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
