"""``python -m app search`` end to end, as a person runs it: a new process each time.

    .venv/bin/python -m bench.cli_search [--runs 20] [--baseline-runs 3] [--home DIR]

Each run is ``python -m app search QUERY -k 5`` in a fresh interpreter,
timed from spawn to exit (start-up, imports, opening the index, embedding
the query, the hybrid search, printing), cycling through a few queries. The
collection is this repository's ``engine/`` sources and README, indexed once
into a temporary FOOTNOTE_HOME (~1 min here) unless ``--home`` names one.

The baseline runs the same search the way it ran before the fast path:
the whole command line imported and the query embedded by
sentence-transformers (torch). Every query's output is checked against the
library searched in-process with the full model, which is what the window
does: the fast path must print the same passages, order and scores.

Writes ``bench/results/cli_search.json``; not a test (timings on a shared
2-core VM vary with its load, which is recorded).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.generation import write_results
from engine.hardware import physical_cores

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUERIES = [
    "chat template stop tokens",
    "how is the KV cache reused between turns",
    "GGUF metadata keys",
    "download resume checksum",
    "what happens when the model does not fit in memory",
]
K = 5
# The search as it ran before: the whole command line (app.cli.commands)
# imported and the query embedded by sentence-transformers (the Embedder the
# index commands use).
BASELINE = (
    "import sys\n"
    "from app.cli import commands as cli, documents as cli_documents\n"
    "cli_documents.new_query_embedder = cli_documents.new_embedder\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def build_home(home: Path) -> None:
    docs = home.parent / "docs"
    docs.mkdir()
    shutil.copytree(REPO / "engine", docs / "engine", ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(REPO / "README.md", docs / "README.md")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app", "index", "add", str(docs), "--collection", "bench"],
        env={**os.environ, "FOOTNOTE_HOME": str(home)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"indexed {docs} in {time.perf_counter() - started:.0f} s")


def window_answers(home: Path) -> dict[str, str]:
    """Each query's output from the library with the full model, in-process."""
    from app.cli import documents as cli_documents
    from app.paths import AppPaths
    from app.wiring import libraries
    from retrieval.embedding import Embedder

    embedder = Embedder()
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
    library = libraries.open_library(paths, lambda: embedder)
    answers = {}
    try:
        for query in QUERIES:
            out = io.StringIO()
            cli_documents._search(library, query, None, K, out)
            answers[query] = out.getvalue()
    finally:
        library.close()
    return answers


def timed_runs(
    home: Path, runs: int, prefix: list[str], answers: dict[str, str]
) -> tuple[list[float], int]:
    """Seconds per run, and how many printed something other than the window's answer."""
    env = {**os.environ, "FOOTNOTE_HOME": str(home)}
    seconds: list[float] = []
    differing = 0
    for n in range(runs):
        query = QUERIES[n % len(QUERIES)]
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *prefix, "search", query, "-k", str(K)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds.append(time.perf_counter() - started)
        differing += done.stdout != answers[query]
    return seconds, differing


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "runs": len(seconds),
        "p50_s": round(statistics.median(seconds), 2),
        "p95_s": round(float(np.percentile(seconds, 95)), 2),
        "min_s": round(min(seconds), 2),
        "max_s": round(max(seconds), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of the fast path")
    parser.add_argument(
        "--baseline-runs", type=int, default=3, help="timed runs of the old path (0: skip)"
    )
    parser.add_argument("--home", type=Path, help="a FOOTNOTE_HOME that already has a collection")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        home = args.home or Path(work) / "home"
        if args.home is None:
            build_home(home)
        answers = window_answers(home)
        load_before = os.getloadavg()[0]
        rows = {"fast path (python -m app search)": (["-m", "app"], args.runs)}
        if args.baseline_runs:
            rows["before: app.cli.commands + torch embedder"] = (
                ["-c", BASELINE],
                args.baseline_runs,
            )
        results: dict[str, object] = {
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{physical_cores()} physical cores, {os.cpu_count()} logical, {platform.system()}",
            "queries": QUERIES,
            "k": K,
        }
        print("| path | runs | p50 s | p95 s | min s | max s | same as the window |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for label, (prefix, runs) in rows.items():
            seconds, differing = timed_runs(home, runs, prefix, answers)
            row = summary(seconds)
            row["differing_outputs"] = differing
            results[label] = row
            same = "yes" if differing == 0 else f"NO ({differing} differ)"
            print(
                f"| {label} | {row['runs']} | {row['p50_s']:.2f} | {row['p95_s']:.2f} "
                f"| {row['min_s']:.2f} | {row['max_s']:.2f} | {same} |"
            )
        results["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(f"(1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)")
    write_results("cli_search.json", results)


if __name__ == "__main__":
    main()
