"""Decode speed while other programs keep CPUs busy: fixed thread counts
against the engine's own choice (``engine.cpu_share``).

    .venv/bin/python -m bench.engine_load            # Phi-3-mini shape, Q4_K_M
    .venv/bin/python -m bench.engine_load --quick    # tiny model: a smoke run
    .venv/bin/python -m bench.engine_load --model X.gguf

For 0, 1 (and, with 3+ CPUs, 2) busy processes — plain Python spin loops,
each keeping one CPU at 100 % — the same loaded model decodes the same
answer through ``ChatSession.run`` with 1 thread, every physical core, and
"auto" (the engine measures what the spinners leave free before the turn).
Rounds alternate between the settings so drifts hit them alike; medians of
``--rounds``. Goal (issue #19): under one busy CPU, auto >= 0.8 x the best
fixed count of the same run and never below the single-thread speed.
Prints a Markdown table and writes ``bench/results/engine_load.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import threading
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import psutil

from bench.generation import cpu_name, ensure_model
from engine.events import Finished
from engine.hardware import physical_cores
from engine.model import LoadOptions, LocalModel, load_model
from engine.turn import ChatSession, SamplingParams, TurnRequest

RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "Write a long story about a lighthouse keeper and the sea."


def _spin(stop: EventType) -> None:
    while not stop.is_set():
        pass


class Spinners:
    """``count`` processes, each keeping one CPU busy until stopped."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs = [ctx.Process(target=_spin, args=(self._stop,)) for _ in range(count)]

    def __enter__(self) -> Spinners:
        for proc in self._procs:
            proc.start()
        time.sleep(1.0 if self._procs else 0.0)  # let them reach full speed
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(10)


def decode_tps(model: LocalModel, threads: int | str, tokens: int) -> tuple[float, int]:
    """Tokens/s of one answer; ``threads``: a fixed count or "auto". Returns
    the speed and the thread count the turn ran with."""
    import llama_cpp

    share = model.cpu_share
    if threads == "auto":
        assert share is not None
    else:
        model.cpu_share = None
        llama_cpp.llama_set_n_threads(model.llama.ctx, int(threads), int(threads))
        model.threads = int(threads)
    try:
        model.llama.reset()
        request = TurnRequest("", (), QUESTION, SamplingParams(max_answer_tokens=tokens))
        done = list(ChatSession(model).run(request, threading.Event()))[-1]
        assert isinstance(done, Finished), done
        return done.stats.tokens_per_second, model.threads
    finally:
        model.cpu_share = share


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--quick", action="store_true", help="the tiny model, few tokens")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.model or ensure_model("tiny" if args.quick else "phi3-mini")
    tokens = 16 if args.quick else args.tokens
    cores = physical_cores()
    cpus = psutil.cpu_count(logical=True) or cores
    settings: list[int | str] = [*sorted({1, cores}), "auto"]
    busy_counts = [0, 1] + ([2] if cpus >= 3 else [])
    load_start = os.getloadavg()
    model = load_model(path, LoadOptions(seed=0))  # threads None: auto available
    rows: list[dict[str, Any]] = []
    try:
        decode_tps(model, cores, 4)  # warm up: weights paged in, graph built
        for busy in busy_counts:
            samples: dict[str, list[float]] = {str(s): [] for s in settings}
            used: dict[str, int] = {}
            with Spinners(busy):
                if model.cpu_share is not None:
                    model.cpu_share.others_busy_cpus()  # start the auto counters now
                for _ in range(args.rounds):
                    for setting in settings:
                        tps, count = decode_tps(model, setting, tokens)
                        samples[str(setting)].append(tps)
                        used[str(setting)] = count
            medians = {k: statistics.median(v) for k, v in samples.items()}
            best_fixed = max(v for k, v in medians.items() if k != "auto")
            rows.append(
                {
                    "busy_cpus": busy,
                    "tokens_per_s": medians,
                    "auto_threads": used["auto"],
                    "auto_vs_best_fixed": medians["auto"] / best_fixed if best_fixed else 0.0,
                    "auto_vs_one_thread": medians["auto"] / medians["1"] if medians["1"] else 0.0,
                }
            )
    finally:
        model.close()
    header = " | ".join(
        "auto" if s == "auto" else f"{s} thread{'s' if s != 1 else ''}" for s in settings
    )
    print(f"| busy CPUs | {header} | auto ran on | auto ÷ best fixed | auto ÷ 1 thread |")
    print("|---:|" + "---:|" * (len(settings) + 3))
    for row in rows:
        speeds = " | ".join(f"{row['tokens_per_s'][str(s)]:.2f}" for s in settings)
        print(
            f"| {row['busy_cpus']} | {speeds} | {row['auto_threads']} | "
            f"{row['auto_vs_best_fixed']:.2f} | {row['auto_vs_one_thread']:.2f} |"
        )
    result = {
        "machine": {"cpu": cpu_name(), "physical_cores": cores, "logical_cpus": cpus},
        "model": str(path.name),
        "tokens": tokens,
        "rounds": args.rounds,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
