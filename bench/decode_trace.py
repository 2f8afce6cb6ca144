"""Where a decoded token's time goes, ours against llama-bench's: per-token
time distributions of the same model, in one process, several ways.

    .venv/bin/python -m bench.decode_trace [--model X.gguf] [--tokens 128]
        [--depth 3000] [--rounds 3] [--skip-depth]

``bench.engine`` compares averages (tgN = tokens / seconds) and found the
engine's decode at 0.87 of llama-bench's at an empty context and 0.74 at a
depth of 3,000 tokens. An average cannot say whether every token is a little
slower (work the wrapper adds to each one) or some tokens are much slower
(stalls). This bench times every token, at an empty context and at
``--depth``, round after round, interleaving:

* ``engine``: ``ChatSession.run``, what the window runs (sampling,
  detokenizing and events included): the time between ``Token`` events.
* ``raw``: a bare ``llama_decode`` loop on the *same* llama.cpp context, one
  token per call, as llama-bench's tg test does (its token ids, positions and
  ``llama_synchronize``), from Python through ctypes.
* ``raw + threadpool``: the same loop with a ggml threadpool attached to the
  context (``llama_attach_threadpool``) with llama-bench's defaults (poll
  50, no CPU mask, normal priority), where the app lets ggml make one per
  graph.
* ``raw, llama-bench's context``: the loop on a second context sized as
  llama-bench sizes its own (prompt + generated + depth tokens, not the
  app's 4K), the depth's cache copied in (``llama_state_seq_*``).
* ``llama-bench``: the binary itself (``bench.llama_bench``), same settings;
  it reports one average per repetition, not per-token times.

Each per-token row gives tokens/s (tokens / total time, as tg), the median,
p90 and slowest token, and how much of the total went to tokens over 1.25x
the median ("stalls"). JSON: ``bench/results/decode_trace.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from bench.engine import load_average, machine
from bench.engine_turns import SYSTEM, prompt_of_tokens
from bench.generation import ensure_model
from bench.llama_bench import BenchSettings, ensure_llama_bench, run_llama_bench
from engine.events import Finished, Token, Writing
from engine.llama_internals import context_handle, keep_cached
from engine.model import PROMPT_BATCH_TOKENS, LoadOptions, LocalModel, load_model
from engine.prompt_speed import PromptSpeed
from engine.turn import ChatSession, SamplingParams, TurnRequest

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CONTEXT_TOKENS = 4096  # the app's default context
STALL_RATIO = 1.25  # a token this much slower than the run's median is a stall
LLAMA_BENCH_POLL = 50  # llama-bench's default --poll


def distribution(name: str, rounds: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Per-token times (s), one list per round -> the figures one table row
    shows, each round's rate, and the times themselves (ms)."""
    seconds = [s for round_ in rounds for s in round_]
    total = sum(seconds)
    ordered = sorted(seconds)
    median = statistics.median(ordered)
    stalls = [s for s in ordered if s > STALL_RATIO * median]
    return {
        "name": name,
        "tokens": len(ordered),
        "tokens_per_s": len(ordered) / total,
        "median_ms": median * 1e3,
        "p10_ms": ordered[len(ordered) // 10] * 1e3,
        "p90_ms": ordered[(len(ordered) * 9) // 10] * 1e3,
        "max_ms": ordered[-1] * 1e3,
        "stall_tokens": len(stalls),
        "stall_share": sum(stalls) / total,
        # The rate if every token took the median: what the stalls cost.
        "median_tokens_per_s": 1 / median,
        "rounds_tokens_per_s": [round(len(r) / sum(r), 3) for r in rounds],
        "per_token_ms": [[round(s * 1e3, 1) for s in r] for r in rounds],
    }


# ------------------------------------------------------------ ggml threadpool


class _ThreadpoolParams(ctypes.Structure):
    # ggml.h: struct ggml_threadpool_params (GGML_MAX_N_THREADS = 512)
    _fields_ = [
        ("cpumask", ctypes.c_bool * 512),
        ("n_threads", ctypes.c_int),
        ("prio", ctypes.c_int),
        ("poll", ctypes.c_uint32),
        ("strict_cpu", ctypes.c_bool),
        ("paused", ctypes.c_bool),
    ]


class Threadpool:
    """A ggml CPU threadpool attached to a context the way llama-bench does it."""

    def __init__(self, ctx: Any, threads: int) -> None:
        import llama_cpp

        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        self._ggml = ctypes.CDLL(str(lib_dir / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self._cpu = ctypes.CDLL(str(lib_dir / "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
        self._llama = ctypes.CDLL(str(lib_dir / "libllama.so"), mode=ctypes.RTLD_GLOBAL)
        self._ggml.ggml_threadpool_params_default.restype = _ThreadpoolParams
        self._ggml.ggml_threadpool_params_default.argtypes = [ctypes.c_int]
        self._cpu.ggml_threadpool_new.restype = ctypes.c_void_p
        self._cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(_ThreadpoolParams)]
        self._cpu.ggml_threadpool_free.argtypes = [ctypes.c_void_p]
        self._llama.llama_attach_threadpool.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self._llama.llama_detach_threadpool.argtypes = [ctypes.c_void_p]
        params = self._ggml.ggml_threadpool_params_default(threads)
        params.poll = LLAMA_BENCH_POLL
        self._pool = self._cpu.ggml_threadpool_new(ctypes.byref(params))
        if not self._pool:
            raise RuntimeError("ggml_threadpool_new failed")
        self._ctx = ctx
        self._llama.llama_attach_threadpool(ctx, self._pool, None)

    def close(self) -> None:
        self._llama.llama_detach_threadpool(self._ctx)
        self._cpu.ggml_threadpool_free(self._pool)


# ------------------------------------------------------------ decode loops


def raw_decode(ctx: Any, n_vocab: int, start: int, tokens: int, seed: int) -> list[float]:
    """llama-bench's tg loop: one random token per llama_decode at positions
    ``start``..; per-token seconds. Leaves those positions in the cache."""
    import llama_cpp

    rng = random.Random(seed)
    batch = llama_cpp.llama_batch_init(1, 0, 1)
    times: list[float] = []
    try:
        token = rng.randrange(n_vocab)
        for i in range(tokens):
            batch.n_tokens = 1
            batch.token[0] = token
            batch.pos[0] = start + i
            batch.n_seq_id[0] = 1
            batch.seq_id[0][0] = 0
            batch.logits[0] = True
            began = time.perf_counter()
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            llama_cpp.llama_synchronize(ctx)
            times.append(time.perf_counter() - began)
            token = rng.randrange(n_vocab)
    finally:
        llama_cpp.llama_batch_free(batch)
    return times


def forget_from(ctx: Any, position: int) -> None:
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), 0, position, -1)


def engine_decode(session: ChatSession, request: TurnRequest) -> tuple[list[float], int]:
    """Seconds between answer tokens of a ``ChatSession`` turn (the first:
    from ``Writing`` to the first ``Token``), and its prompt's length."""
    times: list[float] = []
    last = 0.0
    finished: Finished | None = None
    for event in session.run(request, threading.Event()):
        now = time.perf_counter()
        if isinstance(event, Writing):
            last = now
        elif isinstance(event, Token):
            times.append(now - last)
            last = now
        elif isinstance(event, Finished):
            finished = event
    if finished is None or finished.reason not in ("length", "stop"):
        raise RuntimeError(f"the turn ended {finished.reason if finished else 'without Finished'}")
    return times, finished.stats.prompt_tokens


class SmallContext:
    """A second context on the same model, as llama-bench sizes its own."""

    def __init__(self, model: LocalModel, n_ctx: int, threads: int) -> None:
        import llama_cpp

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = PROMPT_BATCH_TOKENS
        params.n_ubatch = PROMPT_BATCH_TOKENS
        params.n_threads = threads
        params.n_threads_batch = threads
        # As the app's context (llama-cpp-python's defaults): no flash attention.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = llama_cpp.llama_init_from_model(model.llama.model, params)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")

    def copy_from(self, ctx: Any) -> None:
        """Sequence 0 of ``ctx`` (its KV cells) into this context."""
        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        if llama_cpp.llama_state_seq_set_data(self.ctx, buf, size, 0) == 0:
            raise RuntimeError("llama_state_seq_set_data failed")

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_free(self.ctx)


# ------------------------------------------------------------ the trace


def trace_at(
    model: LocalModel,
    session: ChatSession,
    request: TurnRequest,
    *,
    tokens: int,
    depth: int,
    rounds: int,
    threads: int,
) -> dict[str, list[list[float]]]:
    """Per-token seconds of every variant at this depth (the engine's prompt
    is the depth), one list per round, ``rounds`` rounds interleaved."""
    ctx = context_handle(model.llama)
    n_vocab = model.llama.n_vocab()
    small: SmallContext | None = None
    runs: dict[str, list[list[float]]] = {}
    try:
        for round_ in range(rounds):
            print(f"  depth {depth}, round {round_ + 1}/{rounds}: engine…", flush=True)
            times, prompt_end = engine_decode(session, request)
            runs.setdefault("engine", []).append(times)
            # The engine read its prompt; everything from there on is its answer.
            keep_cached(model.llama, prompt_end)
            if small is None:  # llama-bench's size: what the test needs, not the app's 4K
                small = SmallContext(model, prompt_end + tokens + 8, threads)
            print("    raw…", flush=True)
            runs.setdefault("raw", []).append(raw_decode(ctx, n_vocab, prompt_end, tokens, round_))
            forget_from(ctx, prompt_end)
            print("    raw + threadpool…", flush=True)
            pool = Threadpool(ctx, threads)
            try:
                runs.setdefault("raw + threadpool", []).append(
                    raw_decode(ctx, n_vocab, prompt_end, tokens, round_)
                )
            finally:
                pool.close()
            forget_from(ctx, prompt_end)
            print("    raw, llama-bench's context…", flush=True)
            small.copy_from(ctx)
            runs.setdefault("raw, llama-bench's context", []).append(
                raw_decode(small.ctx, n_vocab, prompt_end, tokens, round_)
            )
            # The engine's next round finds its prompt cached and decodes only.
            keep_cached(model.llama, prompt_end)
    finally:
        if small is not None:
            small.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a GGUF (default: the Phi-3-mini-shaped one)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-depth", action="store_true", help="only the empty context")
    parser.add_argument("--json", type=Path, default=RESULTS / "decode_trace.json")
    args = parser.parse_args()

    path: Path = args.model or ensure_model("phi3-mini")
    llama_bench = ensure_llama_bench()
    threads = psutil.cpu_count(logical=False) or 1
    settings = BenchSettings.as_the_app(threads)
    load_start = load_average()
    started = time.perf_counter()
    print(f"model {path.name}; {threads} threads; load average {load_start}", flush=True)
    # A fixed thread count: every loop runs on the same threads as llama-bench.
    model = load_model(path, LoadOptions(context_tokens=CONTEXT_TOKENS, threads=threads, seed=1))
    speed = PromptSpeed.for_model(model)
    results: dict[str, Any] = {"model": path.name, "threads": threads, "depths": {}}
    depths = [0] if args.skip_depth else [0, args.depth]
    try:
        for depth in depths:
            session = ChatSession(model, speed)
            model.llama.reset()
            question = prompt_of_tokens(model, depth, seed=7) if depth else "Write a long story."
            request = TurnRequest(
                SYSTEM, [], question, SamplingParams(max_answer_tokens=args.tokens)
            )
            runs = trace_at(
                model,
                session,
                request,
                tokens=args.tokens,
                depth=depth,
                rounds=args.rounds,
                threads=threads,
            )
            rows = [distribution(name, times) for name, times in runs.items()]
            print(f"  depth {depth}: llama-bench…", flush=True)
            reference = run_llama_bench(
                llama_bench,
                path,
                settings,
                gen_tokens=args.tokens,
                depth_tokens=depth,
                repetitions=args.rounds,
            )
            results["depths"][str(depth)] = {"rows": rows, "llama_bench": asdict(reference)}
            print_depth(depth, rows, reference.tokens_per_s, reference.samples_tokens_per_s)
    finally:
        model.close()
    results["machine"] = machine()
    results["load_average_start"] = load_start
    results["load_average_end"] = load_average()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


def print_depth(
    depth: int, rows: Sequence[dict[str, Any]], bench_tps: float, samples: Sequence[float]
) -> None:
    print(f"\ndepth {depth}:")
    print(
        "| decode loop | tok/s | ÷ llama-bench | median ms | p90 ms | max ms | stalls | "
        "time in stalls | tok/s at median | tok/s per round |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['tokens_per_s']:.2f} | {row['tokens_per_s'] / bench_tps:.3f} "
            f"| {row['median_ms']:.1f} | {row['p90_ms']:.1f} | {row['max_ms']:.0f} "
            f"| {row['stall_tokens']}/{row['tokens']} | {row['stall_share']:.0%} "
            f"| {row['median_tokens_per_s']:.2f} "
            f"| {', '.join(f'{r:.2f}' for r in row['rounds_tokens_per_s'])} |"
        )
    spread = ", ".join(f"{s:.2f}" for s in samples)
    print(f"| llama-bench | {bench_tps:.2f} | 1.000 | | | | | | | {spread} |")


if __name__ == "__main__":
    main()
