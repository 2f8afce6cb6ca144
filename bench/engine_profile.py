"""Where a decoded token's time goes: llama.cpp's graph, and our Python around it.

``ChatSession`` per token calls llama-cpp-python's ``Llama.generate`` loop,
which runs ``llama_decode`` for one token and samples with llama.cpp's
sampler chain (penalties, top-k, typical, top-p, min-p, temperature); then
we detokenize, decode UTF-8 and yield a ``Token`` event. Each part is timed
here on its own, in the same process and on the same loaded model, so the
table can say how much of a token is llama.cpp's graph (bounded by memory
bandwidth) and how much is wrapper.
"""

from __future__ import annotations

import codecs
import ctypes
import statistics
import time
from typing import Any

from engine.events import Token
from engine.model import LocalModel
from engine.turn import SamplingParams

PROFILE_TOKENS = 32


def decode_profile(model: LocalModel, tokens: int = PROFILE_TOKENS) -> dict[str, Any]:
    """Median milliseconds per token of each part of the decode loop."""
    import llama_cpp

    llama = model.llama
    sampling = SamplingParams()
    prompt = model.tokenize("Write a long story about the sea.", add_bos=True)

    llama.reset()
    llama.eval(prompt)
    token = prompt[-1]
    graph, sample, wrapper = [], [], []
    sampler = llama._init_sampler(
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        temp=sampling.temperature,
        repeat_penalty=sampling.repeat_penalty,
    )
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    array = (ctypes.c_int32 * 1)()
    for _ in range(tokens):
        array[0] = token
        batch = llama_cpp.llama_batch_get_one(array, 1)
        started = time.perf_counter()
        if llama_cpp.llama_decode(llama._ctx.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed in the profile")
        decoded = time.perf_counter()
        token = sampler.sample(llama._ctx, -1)
        sampled = time.perf_counter()
        # What ChatSession adds per token: the end-of-turn check, the token's
        # bytes, incremental UTF-8, and the event object.
        model.is_end_of_turn(token)
        Token(decoder.decode(model.token_bytes(token)))
        done = time.perf_counter()
        graph.append(decoded - started)
        sample.append(sampled - decoded)
        wrapper.append(done - sampled)
    llama.reset()
    llama._ctx.kv_cache_clear()
    parts = {
        "llama_decode_ms": statistics.median(graph) * 1000,
        "sampling_ms": statistics.median(sample) * 1000,
        "detokenize_and_event_ms": statistics.median(wrapper) * 1000,
    }
    total = sum(parts.values())
    return {
        **parts,
        "tokens": tokens,
        "graph_share": parts["llama_decode_ms"] / total if total else 0.0,
    }
