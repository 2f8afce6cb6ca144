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

Then the load that starts mid-answer: one busy process is started once the
answer's ``--load-after`` th token is out, and the speed is that of the
tokens after it. "auto, before the turn" looks at the CPUs only before the
turn (the machine was quiet then); "auto" also looks again when the token
times jump (``engine.cpu_share.PaceWatch``).
Prints Markdown tables and writes ``bench/results/engine_load.json``.
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
from engine.events import Finished, Token
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

    def __init__(self, count: int, settle_s: float = 1.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs = [ctx.Process(target=_spin, args=(self._stop,)) for _ in range(count)]
        self._settle_s = settle_s

    def __enter__(self) -> Spinners:
        for proc in self._procs:
            proc.start()
        time.sleep(self._settle_s if self._procs else 0.0)  # let them reach full speed
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


class _NeverJumps:
    """Stands in for PaceWatch: the thread count is chosen before the turn only."""

    def token(self, seconds: float) -> bool:  # noqa: ARG002 (PaceWatch's)
        return False


def decode_with_load_midway(
    model: LocalModel, threads: int | str, tokens: int, load_after: int
) -> tuple[float, int]:
    """Tokens/s after one busy process starts at the ``load_after``-th token
    of the answer; ``threads``: a fixed count, "auto" or "auto-before" (the
    engine's choice before the turn only). Returns the speed and the thread
    count the answer ended on."""
    import llama_cpp

    import engine.local_backend

    share, watch = model.cpu_share, engine.local_backend.PaceWatch
    if isinstance(threads, int):
        model.cpu_share = None
        llama_cpp.llama_set_n_threads(model.llama.ctx, threads, threads)
        model.threads = threads
    elif threads == "auto-before":
        engine.local_backend.PaceWatch = _NeverJumps  # type: ignore[assignment,misc]
    spinners = Spinners(1, settle_s=0.0)
    times: list[float] = []
    try:
        model.llama.reset()
        if model.cpu_share is not None:
            model.cpu_share.others_busy_cpus()  # quiet since this look
            time.sleep(0.5)
        request = TurnRequest("", (), QUESTION, SamplingParams(max_answer_tokens=tokens))
        for event in ChatSession(model).run(request, threading.Event()):
            if isinstance(event, Token):
                times.append(time.perf_counter())
                if len(times) == load_after:
                    spinners.__enter__()
            elif isinstance(event, Finished):
                break
        after = times[load_after:]
        tps = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else 0.0
        return tps, model.threads
    finally:
        spinners.__exit__()
        model.cpu_share = share
        engine.local_backend.PaceWatch = watch  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--quick", action="store_true", help="the tiny model, few tokens")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--midway-tokens", type=int, default=48, help="0: skip that part")
    parser.add_argument("--load-after", type=int, default=8)
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
        midway = (
            measure_midway(model, cores, args.midway_tokens, args.load_after, args.rounds)
            if args.midway_tokens and not args.quick
            else None
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
    if midway is not None:
        print(
            f"\nOne busy process from token {args.load_after} of {args.midway_tokens}: "
            "tokens/s after it starts (medians)\n"
        )
        print("| setting | tokens/s | ran on (threads, at the end) |\n|---|---:|---:|")
        for name, row in midway["settings"].items():
            print(f"| {name} | {row['tokens_per_s']:.2f} | {row['threads_at_end']} |")
    result = {
        "machine": {"cpu": cpu_name(), "physical_cores": cores, "logical_cpus": cpus},
        "model": str(path.name),
        "tokens": tokens,
        "rounds": args.rounds,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "rows": rows,
        "load_midway": midway,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f}")


def measure_midway(
    model: LocalModel, cores: int, tokens: int, load_after: int, rounds: int
) -> dict[str, Any]:
    settings: list[int | str] = [*sorted({1, cores}), "auto-before", "auto"]
    samples: dict[str, list[float]] = {str(s): [] for s in settings}
    ended: dict[str, list[int]] = {str(s): [] for s in settings}
    for _ in range(rounds):
        for setting in settings:
            tps, count = decode_with_load_midway(model, setting, tokens, load_after)
            samples[str(setting)].append(tps)
            ended[str(setting)].append(count)
    return {
        "tokens": tokens,
        "load_after_tokens": load_after,
        "settings": {
            name: {
                "tokens_per_s": statistics.median(values),
                "samples": values,
                "threads_at_end": statistics.median_low(ended[name]),
            }
            for name, values in samples.items()
        },
    }


if __name__ == "__main__":
    main()
