"""Indexing speed: pages/min and chunks/s of the whole pipeline, and its
embedding throughput against raw ``SentenceTransformer.encode``.

    .venv/bin/python -m bench.indexing [--pages 120]

The corpus is ``bench.ingest_files.make_corpus``: text PDFs, DOCX with
headings and Markdown, ~450 words a page (cached under ``bench/.cache/``).
It is indexed from scratch by ``DocumentLibrary.index`` (discovery, parsing
in worker processes, chunking with MiniLM's tokenizer, embedding, chroma,
FTS5, manifest), with the real MiniLM on the CPU.

Then the same chunk texts are embedded by raw ``SentenceTransformer.encode``
(batch 32, its default) on the same model object: ``pipeline ÷ raw`` is the
pipeline's chunks/s over raw encode's chunks/s (goal >= 0.9: parsing and
writing hidden behind embedding), and ``embedder ÷ raw`` is our
``embed_documents`` on the indexer's batches over raw encode of all at once.
Raw encode is timed before and after the pipeline and averaged, because a
shared VM's speed drifts. Writes ``bench/results/indexing.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.generation import write_results
from bench.ingest_files import describe, make_corpus
from engine.hardware import physical_cores
from retrieval.documents import DocumentLibrary
from retrieval.embedding import ENCODE_BATCH_TEXTS, Embedder
from retrieval.indexer import FLUSH_CHUNKS
from retrieval.ingest_events import IngestFinished

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


class _TimedEmbedder:
    """The real embedder, timing its embed calls during indexing (to tell an
    embedding-bound pipeline from one waiting on the parser)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        started = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - started


def _raw_encode_seconds(model: object, texts: list[str]) -> float:
    started = time.perf_counter()
    model.encode(  # type: ignore[attr-defined]
        texts, batch_size=ENCODE_BATCH_TEXTS, normalize_embeddings=True, show_progress_bar=False
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=120, help="page equivalents in the corpus")
    args = parser.parse_args()

    corpus = make_corpus(CACHE / f"corpus-{args.pages}", pages=args.pages)
    embedder = Embedder()
    embedder.load()
    model = embedder._loaded()  # the SentenceTransformer itself, for the raw baseline
    embedder.embed_documents(["warm up the model"] * 8)

    with tempfile.TemporaryDirectory() as work:
        timed = _TimedEmbedder(embedder)
        library = DocumentLibrary(Path(work) / "index", lambda: timed)
        library.add_collection("bench", [corpus.folder], excludes=["corpus.json"])
        started = time.perf_counter()
        summary = None
        for event in library.index("bench", threading.Event()):
            if isinstance(event, IngestFinished):
                summary = event.summary
        seconds = time.perf_counter() - started
        with library._db.transaction() as db:
            texts = [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY rowid")]
        library.close()
    assert summary is not None and summary.failed == 0, summary

    raw_before = _raw_encode_seconds(model, texts)
    started = time.perf_counter()
    for start in range(0, len(texts), FLUSH_CHUNKS):
        embedder.embed_documents(texts[start : start + FLUSH_CHUNKS])
    ours_s = time.perf_counter() - started
    raw_after = _raw_encode_seconds(model, texts)
    raw_s = statistics.mean([raw_before, raw_after])

    chunks = len(texts)
    tokens = [embedder.count_tokens(t) for t in texts]
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{physical_cores()} physical cores, {platform.system()}",
        "corpus": describe(corpus),
        "files_indexed": summary.indexed,
        "chunks": chunks,
        "mean_tokens_per_chunk": round(statistics.mean(tokens), 1),
        "index_seconds": round(seconds, 1),
        "embedding_seconds_in_index": round(timed.seconds, 1),
        "pages_per_min": round(corpus.pages / seconds * 60, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        "raw_encode_chunks_per_s": round(chunks / raw_s, 2),
        "raw_encode_seconds": [round(raw_before, 1), round(raw_after, 1)],
        "embedder_chunks_per_s": round(chunks / ours_s, 2),
        "pipeline_over_raw": round(raw_s / seconds, 3),
        "embedder_over_raw": round(raw_s / ours_s, 3),
    }
    print("| measure | value |\n|---|---:|")
    for key in (
        "pages_per_min",
        "chunks_per_s",
        "raw_encode_chunks_per_s",
        "embedder_chunks_per_s",
        "pipeline_over_raw",
        "embedder_over_raw",
        "mean_tokens_per_chunk",
        "index_seconds",
        "embedding_seconds_in_index",
    ):
        print(f"| {key} | {results[key]} |")
    print(f"({corpus.pages} pages, {chunks} chunks, {results['machine']})")
    write_results("indexing.json", results)


if __name__ == "__main__":
    main()
