"""Generation speed: Footnote's engine vs llama-cpp-python's own loop, same run.

    .venv/bin/python -m bench.generation                 # Phi-3-mini shape, Q4_K_M
    .venv/bin/python -m bench.generation --shape tiny    # seconds, for a smoke run

The model is Phi-3-mini-shaped (3.8B parameters, vocab 32064) with random
weights, written with ``gguf`` and quantized to Q4_K_M by llama.cpp's own
quantizer; speed does not depend on weight values. It is cached under
``bench/.models/`` (git-ignored) so later runs skip the ~5 minutes it takes.

Measured, each on a freshly loaded model:
* raw:    ``Llama.generate`` on the tokenized prompt, N tokens (llama.cpp's loop);
* engine: ``ChatSession.run`` for the same prompt and N tokens (our loop:
          templating, batched cancellable prompt evaluation, UTF-8 streaming);
* follow-up turn: time to first token of turn 2, engine (KV prefix reused)
          vs raw after ``reset()`` (whole prompt evaluated again).

Prints a Markdown table and writes ``bench/results/generation.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.llama_build import phi3_vocabulary
from engine.chat_template import ChatMessage
from engine.events import Finished, Token
from engine.hardware import physical_cores
from engine.llama_internals import context_handle
from engine.model import LoadOptions, LocalModel, load_model
from engine.quantize import quantize_gguf
from engine.synthetic_model import (
    PHI3_MINI_SHAPE,
    TINY_SHAPE,
    Vocabulary,
    read_vocabulary,
    write_phi3_gguf,
)
from engine.turn import ChatSession, SamplingParams, TurnRequest

HERE = Path(__file__).resolve().parent
MODELS = HERE / ".models"
RESULTS = HERE / "results"
PROMPT_WORDS = 300  # ~ a question with a few retrieved passages
SYSTEM = "You are a helpful assistant."


@dataclass
class Measurement:
    name: str
    prompt_tokens: int
    prompt_seconds: float
    generated_tokens: int
    generation_seconds: float
    first_token_seconds: float

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds else 0.0

    @property
    def generation_tps(self) -> float:
        return self.generated_tokens / self.generation_seconds if self.generation_seconds else 0.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ensure_model(shape_name: str) -> Path:
    """The benchmark model: ``"tiny"`` (seconds to write) or ``"phi3-mini"``
    (Phi-3-mini's shape, random weights, Q4_K_M, with Phi-3's own tokenizer
    so prompts count Phi-3's tokens; cached in ``bench/.models/``)."""
    MODELS.mkdir(exist_ok=True)
    if shape_name == "tiny":
        return write_phi3_gguf(MODELS / "tiny.gguf", weights="random")
    final = MODELS / "phi3-mini-random-Q4_K_M.gguf"
    vocabulary = read_vocabulary(phi3_vocabulary())
    if final.exists():
        if _has_vocabulary(final, vocabulary):
            return final
        # Written before the benches used Phi-3's tokenizer: same weights
        # (speed does not depend on them), new tokenizer; a copy, no re-quantizing.
        print(f"giving {final.name} Phi-3's tokenizer…", flush=True)
        _replace_vocabulary(final, vocabulary)
        return final
    f16 = MODELS / "phi3-mini-random-F16.gguf"
    print("writing a Phi-3-mini-shaped F16 GGUF with random weights (7.6 GB)…", flush=True)
    started = time.perf_counter()
    write_phi3_gguf(
        f16,
        shape=PHI3_MINI_SHAPE,
        weights="random",
        vocabulary=vocabulary,
        dtype="f16",
        name="Phi-3-mini (random)",
    )
    print(f"  {time.perf_counter() - started:.0f} s; quantizing to Q4_K_M…", flush=True)
    quantize_gguf(f16, final, "q4_k_m")
    f16.unlink()
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return final


def _has_vocabulary(path: Path, vocabulary: Vocabulary) -> bool:
    import gguf

    tokens = gguf.GGUFReader(str(path)).get_field("tokenizer.ggml.tokens")
    return tokens is not None and tokens.contents() == vocabulary.pieces


def _replace_vocabulary(path: Path, vocabulary: Vocabulary) -> None:
    """Rewrite ``path`` with ``vocabulary`` (same size: the tensors are copied
    as they are) using gguf's own metadata copier."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    array, keys = gguf.GGUFValueType.ARRAY, gguf.Keys.Tokenizer
    end = vocabulary.id_of("<|endoftext|>")
    new = {
        keys.LIST: MetadataDetails(array, vocabulary.pieces, sub_type=gguf.GGUFValueType.STRING),
        keys.SCORES: MetadataDetails(array, vocabulary.scores, sub_type=gguf.GGUFValueType.FLOAT32),
        keys.TOKEN_TYPE: MetadataDetails(
            array, vocabulary.types, sub_type=gguf.GGUFValueType.INT32
        ),
        keys.EOS_ID: MetadataDetails(gguf.GGUFValueType.UINT32, end),
        keys.PAD_ID: MetadataDetails(gguf.GGUFValueType.UINT32, end),
    }
    reader = gguf.GGUFReader(str(path))
    size = reader.get_field(keys.LIST)
    if size is None or len(size.contents()) != len(vocabulary.pieces):
        raise ValueError(f"{path.name}'s vocabulary is not {len(vocabulary.pieces)} tokens")
    partial = path.with_suffix(".part")
    writer = gguf.GGUFWriter(str(partial), "phi3", endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, new, [])
    del reader  # its memory map, before the file is replaced
    partial.replace(path)


def prompt_messages() -> list[ChatMessage]:
    words = ("the quick brown fox reads a local document about private assistants " * 40).split()
    return [ChatMessage("user", " ".join(words[:PROMPT_WORDS]) + "\n\nSummarise this.")]


def measure_raw(model: LocalModel, n_tokens: int) -> Measurement:
    llama = model.llama
    text = model.chat_format.render([ChatMessage("system", SYSTEM), *prompt_messages()])
    tokens = model.tokenize(text, add_bos=True, special=True)  # our own template text
    llama.reset()
    started = time.perf_counter()
    first = 0.0
    generated = 0
    for _token in llama.generate(tokens, temp=0.7, top_k=40, top_p=0.95, min_p=0.05):
        generated += 1
        if generated == 1:
            first = time.perf_counter() - started
        if generated >= n_tokens:
            break
    total = time.perf_counter() - started
    # llama.cpp's own split between prompt and generation time.
    import llama_cpp

    perf = llama_cpp.llama_perf_context(context_handle(llama))
    return Measurement(
        "raw llama-cpp-python generate()",
        len(tokens),
        perf.t_p_eval_ms / 1000 if perf.t_p_eval_ms else first,
        generated,
        total - first,
        first,
    )


def measure_engine(model: LocalModel, n_tokens: int) -> tuple[Measurement, ChatSession, str]:
    model.llama.reset()
    session = ChatSession(model)
    request = TurnRequest(
        SYSTEM, [], prompt_messages()[0].content, SamplingParams(max_answer_tokens=n_tokens)
    )
    started = time.perf_counter()
    first = 0.0
    end = None
    for event in session.run(request, threading.Event()):
        if isinstance(event, Token) and not first:
            first = time.perf_counter() - started
        if isinstance(event, Finished):
            end = event
    total = time.perf_counter() - started
    assert end is not None
    stats = end.stats
    return (
        Measurement(
            "Footnote engine ChatSession.run()",
            stats.prompt_tokens,
            stats.prompt_seconds,
            stats.generated_tokens,
            # Timed like measure_raw: from the first token to the last. (The
            # first token's time holds the prompt and, on a GPU, the first
            # single-token graph; counting it here would compare unlike things.)
            total - first,
            first,
        ),
        session,
        end.text,
    )


def follow_up(model: LocalModel, session: ChatSession, previous: str) -> dict[str, float]:
    """Time to first token of a follow-up question, with and without KV reuse."""
    history = [prompt_messages()[0], ChatMessage("assistant", previous)]
    request = TurnRequest(
        SYSTEM, history, "And in one sentence?", SamplingParams(max_answer_tokens=1)
    )
    started = time.perf_counter()
    end = next(e for e in session.run(request, threading.Event()) if isinstance(e, Finished))
    with_reuse = time.perf_counter() - started

    text = model.chat_format.render(
        [ChatMessage("system", SYSTEM), *history, ChatMessage("user", "And in one sentence?")]
    )
    tokens = model.tokenize(text, add_bos=True, special=True)  # our own template text
    model.llama.reset()
    started = time.perf_counter()
    for _ in model.llama.generate(tokens, temp=0.7):
        break
    without = time.perf_counter() - started
    return {
        "prompt_tokens": end.stats.prompt_tokens,
        "reused_tokens": end.stats.reused_prompt_tokens,
        "engine_first_token_s": with_reuse,
        "raw_no_reuse_first_token_s": without,
    }


def write_results(name: str, results: dict[str, object]) -> None:
    """Write ``bench/results/NAME`` (the figures the README quotes)."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=["phi3-mini", "tiny"], default="phi3-mini")
    parser.add_argument("--tokens", type=int, default=64, help="tokens to generate per run")
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args()

    path = ensure_model(args.shape)
    shape = PHI3_MINI_SHAPE if args.shape == "phi3-mini" else TINY_SHAPE
    options = LoadOptions(context_tokens=args.context, seed=1)
    model = load_model(path, options)
    try:
        raw = measure_raw(model, args.tokens)
        engine, session, answer = measure_engine(model, args.tokens)
        reuse = follow_up(model, session, answer)
        backend = model.backend_label
    finally:
        model.close()

    rows = [raw, engine]
    machine = f"{cpu_name()}, {physical_cores()} physical cores"
    print(f"\nModel: {path.name} ({args.shape}, n_embd={shape.n_embd}), {backend}, {machine}\n")
    print("| loop | prompt tokens | prompt tok/s | generated | generation tok/s | first token s |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in rows:
        print(
            f"| {m.name} | {m.prompt_tokens} | {m.prompt_tps:.1f} | {m.generated_tokens} | "
            f"{m.generation_tps:.2f} | {m.first_token_seconds:.2f} |"
        )
    print(
        f"\nFollow-up turn ({reuse['prompt_tokens']:.0f} prompt tokens, "
        f"{reuse['reused_tokens']:.0f} reused from the KV cache): first token after "
        f"{reuse['engine_first_token_s']:.2f} s with reuse vs "
        f"{reuse['raw_no_reuse_first_token_s']:.2f} s re-evaluating everything."
    )
    write_results(
        "generation.json",
        {
            "model": path.name,
            "shape": args.shape,
            "backend": backend,
            "machine": machine,
            "platform": platform.platform(),
            "runs": [
                {**asdict(m), "prompt_tps": m.prompt_tps, "generation_tps": m.generation_tps}
                for m in rows
            ],
            "follow_up": reuse,
        },
    )


if __name__ == "__main__":
    main()
