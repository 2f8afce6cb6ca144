"""How the model picks its next token: the sampling settings of a turn.

Apart from ``engine.turn`` (which re-exports it) so that the backends that
sample (``engine.local_backend``, ``engine.server_model``) need not import
the turn that drives them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_answer_tokens: int | None = None  # None: until the model stops or the context is full
