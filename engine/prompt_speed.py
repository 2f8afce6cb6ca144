"""How fast this machine reads prompts with the loaded model (tokens/s).

The budget planner turns the user's first-word target into a token budget
with this number, so it must be this machine's, for this model file. It is
learnt from real turns: each prompt evaluation of at least
:data:`MIN_SAMPLE_TOKENS` new tokens is one sample (shorter ones are dominated
by fixed per-call costs), and the estimate is the median of the most recent
:data:`KEEP_SAMPLES`, so one slow turn (another app busy, a laptop on
battery) does not swing it. The app stores it per model file in its settings
(:meth:`PromptSpeed.to_dict` / :meth:`PromptSpeed.from_dict`).

Before any sample, :func:`default_prompt_speed` estimates it from the model's
size and the threads: prompt evaluation is compute-bound, about
2 × parameters floating-point operations per token. The anchor is measured
(README, bench/generation.py): Phi-3-mini (3.8B, Q4_K_M) reads ~20 tokens/s on
2 cores of a Xeon VM with the AVX2 build.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.llama_internals import keep_cached

if TYPE_CHECKING:
    from engine.model import LocalModel

MIN_SAMPLE_TOKENS = 64
KEEP_SAMPLES = 9
# The anchor of the default: Phi-3-mini Q4_K_M, 2 CPU cores, AVX2.
ANCHOR_TOKENS_PER_S = 20.0
ANCHOR_PARAMETERS = 3.8e9
ANCHOR_THREADS = 2
# With every layer on a GPU, a deliberately low guess (real GPUs read Phi-3-mini
# at thousands of tokens/s); the first real turn replaces it.
GPU_DEFAULT_TOKENS_PER_S = 400.0
CALIBRATION_TOKENS = 128
_FORMAT_VERSION = 1


def default_prompt_speed(
    parameters: float, threads: int, *, all_layers_on_gpu: bool = False
) -> float:
    """A first guess in tokens/s, before this machine has read any prompt."""
    if all_layers_on_gpu:
        return GPU_DEFAULT_TOKENS_PER_S
    if parameters <= 0:
        return ANCHOR_TOKENS_PER_S
    scale = (max(threads, 1) / ANCHOR_THREADS) * (ANCHOR_PARAMETERS / parameters)
    return ANCHOR_TOKENS_PER_S * scale


@dataclass
class PromptSpeed:
    """A running estimate of prompt-reading speed; not thread-safe (the engine
    thread records, the app reads the serialized form)."""

    default_tokens_per_s: float = ANCHOR_TOKENS_PER_S
    samples: list[float] = field(default_factory=list)  # tokens/s, oldest first

    @classmethod
    def for_model(cls, model: LocalModel) -> PromptSpeed:
        on_gpu = model.gpu_layers < 0 or model.gpu_layers >= max(model.info.layer_count, 1)
        guess = default_prompt_speed(
            model.info.parameter_count, model.threads, all_layers_on_gpu=on_gpu
        )
        return cls(default_tokens_per_s=guess)

    @property
    def tokens_per_s(self) -> float:
        """The estimate: median of recent samples, or the default before any."""
        if not self.samples:
            return self.default_tokens_per_s
        return float(statistics.median(self.samples))

    @property
    def measured(self) -> bool:
        return bool(self.samples)

    def record(self, evaluated_tokens: int, seconds: float) -> bool:
        """Add one prompt evaluation; False (ignored) if too short to be telling."""
        if evaluated_tokens < MIN_SAMPLE_TOKENS or seconds <= 0:
            return False
        self.samples.append(evaluated_tokens / seconds)
        del self.samples[:-KEEP_SAMPLES]
        return True

    def seconds_for(self, tokens: int) -> float:
        return tokens / self.tokens_per_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _FORMAT_VERSION,
            "default_tokens_per_s": self.default_tokens_per_s,
            "samples": [round(s, 3) for s in self.samples],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, default_tokens_per_s: float | None = None
    ) -> PromptSpeed:
        """Read what :meth:`to_dict` wrote; anything unreadable gives a fresh
        estimate rather than an error (it is only a speed guess)."""
        fallback = default_tokens_per_s or ANCHOR_TOKENS_PER_S
        try:
            if data.get("version") != _FORMAT_VERSION:
                return cls(default_tokens_per_s=fallback)
            samples = [float(s) for s in data.get("samples", []) if float(s) > 0]
            default = float(data.get("default_tokens_per_s", fallback))
        except (TypeError, ValueError, AttributeError):
            return cls(default_tokens_per_s=fallback)
        if default_tokens_per_s is not None:
            default = default_tokens_per_s
        return cls(default_tokens_per_s=default, samples=samples[-KEEP_SAMPLES:])


def measure_prompt_speed(model: LocalModel, tokens: int = CALIBRATION_TOKENS) -> float:
    """Evaluate ``tokens`` tokens once and return tokens/s.

    For a calibration right after loading, on the engine thread (it takes
    ``tokens / speed`` seconds: ~6 s for Phi-3-mini on 2 cores). It leaves
    llama.cpp's KV cache empty, so run it before the first turn (a session's
    next turn then simply re-reads its prompt)."""
    llama = model.llama
    words = "The quick brown fox jumps over the lazy dog near the river bank. "
    ids = model.tokenize(words * (tokens // 4 + 8), add_bos=False)[:tokens]
    keep_cached(llama, 0)
    try:
        started = time.perf_counter()
        llama.eval(ids)
        seconds = time.perf_counter() - started
    finally:
        keep_cached(llama, 0)
    return len(ids) / seconds if seconds > 0 else 0.0
