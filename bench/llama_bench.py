"""llama.cpp's own ``llama-bench``, built from the sources our wheel was built from.

The reference for ``bench.engine`` must be the same llama.cpp, with the same
compiler flags, as the llama-cpp-python in ``.venv``: otherwise a ratio
measures two builds, not our wrapper. ``bench.llama_build`` builds it (and
``llama-server``, for the tests and ``bench.remote``) from the llama.cpp
vendored in the installed version's sdist, once, into
``~/.cache/footnote-dev/llama-bench/<version>/``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.llama_build import ensure_llama_tool


def ensure_llama_bench() -> Path:
    """The path of a built ``llama-bench`` for the installed llama-cpp-python."""
    return ensure_llama_tool("llama-bench")


WARMUP_PROMPT_TOKENS = 32


@dataclass(frozen=True)
class BenchSettings:
    """What both sides must share for a fair ratio."""

    threads: int
    batch_tokens: int  # n_batch
    ubatch_tokens: int  # n_ubatch
    flash_attn: bool
    kv_type: str = "f16"  # llama-bench's -ctk/-ctv name
    mmap: bool = False  # llama-bench's -lm mmap / none: as engine.model loads

    @classmethod
    def as_the_app(cls, threads: int) -> BenchSettings:
        """The app's CPU settings (engine.model): f16 KV without flash
        attention, 512-token batches, the weights read rather than mmap-ed."""
        from engine.model import PROMPT_BATCH_TOKENS, maps_weights

        return cls(
            threads=threads,
            batch_tokens=PROMPT_BATCH_TOKENS,
            ubatch_tokens=PROMPT_BATCH_TOKENS,
            flash_attn=False,
            mmap=maps_weights(0),
        )


@dataclass(frozen=True)
class BenchResult:
    test: str  # "pp512", "tg128", "tg128 @ d3000"
    n_prompt: int
    n_gen: int
    n_depth: int
    tokens_per_s: float
    stddev_tokens_per_s: float
    samples_tokens_per_s: tuple[float, ...]


def run_llama_bench(
    binary: Path,
    model: Path,
    settings: BenchSettings,
    *,
    prompt_tokens: int = 0,
    gen_tokens: int = 0,
    depth_tokens: int = 0,
    repetitions: int = 1,
) -> BenchResult:
    """One llama-bench test (pp, tg, or tg at a depth), parsed from its JSON.

    Each call is a fresh process, whose first graph pays the page faults of
    mapping the weights (~0.5 s here) and buffer setup. A tg test keeps
    llama-bench's warmup (one token). A pp test does not (its warmup repeats
    the whole prompt: minutes for pp3000 on 2 cores); instead a short pp
    test runs first in the same process and absorbs that cost.
    """
    prompts = f"{WARMUP_PROMPT_TOKENS},{prompt_tokens}" if prompt_tokens else "0"
    command = [
        str(binary),
        "-m",
        str(model),
        "-p",
        prompts,
        "-n",
        str(gen_tokens),
        "-d",
        str(depth_tokens),
        "-r",
        str(repetitions),
        "-t",
        str(settings.threads),
        "-b",
        str(settings.batch_tokens),
        "-ub",
        str(settings.ubatch_tokens),
        "-fa",
        "1" if settings.flash_attn else "0",
        "-ctk",
        settings.kv_type,
        "-ctv",
        settings.kv_type,
        "-ngl",
        "0",
        "-lm",
        "mmap" if settings.mmap else "none",
        *(["--no-warmup"] if prompt_tokens else []),
        "-o",
        "json",
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    rows = json.loads(done.stdout)
    row = rows[-1]  # the warm-up pp test, if any, comes first
    n_prompt, n_gen, n_depth = int(row["n_prompt"]), int(row["n_gen"]), int(row["n_depth"])
    name = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
    if n_depth:
        name += f" @ d{n_depth}"
    return BenchResult(
        test=name,
        n_prompt=n_prompt,
        n_gen=n_gen,
        n_depth=n_depth,
        tokens_per_s=float(row["avg_ts"]),
        stddev_tokens_per_s=float(row["stddev_ts"]),
        samples_tokens_per_s=tuple(float(s) for s in row.get("samples_ts", [])),
    )


if __name__ == "__main__":
    print(ensure_llama_bench())
