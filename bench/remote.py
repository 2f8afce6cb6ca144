"""The same model answering through Footnote's local engine and through
llama.cpp's own server on 127.0.0.1: first word, tokens/s, and the
follow-up turn's first word (prefix reuse, in our KV cache or the server's).

    .venv/bin/python -m bench.remote                  # both halves (below)
    .venv/bin/python -m bench.remote --only model     # Phi-3-mini shape, Q4_K_M
    .venv/bin/python -m bench.remote --only model --shape tiny   # seconds, a smoke run
    .venv/bin/python -m bench.remote --only documents --sizes 10000

The documents half (``bench.remote_retrieval``) compares hybrid query latency
and ranking of a local collection and the same collection on a ``chroma run``
server at 10k and 100k chunks (``bench/results/remote_retrieval.json``).

Both sides run ``ChatSession.run`` (the code the window runs) on the same
GGUF (bench.generation's random-weight Phi-3-mini; speed does not depend on
the weights) with the same thread count, one after the other so they never
share the cores; the server is ``llama-server`` built from the llama.cpp
vendored in the installed llama-cpp-python (``bench.llama_build``), so the
difference is the HTTP path (tokenizing over HTTP, the prompt read by a
separate request, SSE streaming), not two builds.

Prints a Markdown table and writes ``bench/results/remote.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.generation import RESULTS, cpu_name, ensure_model, prompt_messages
from bench.llama_build import ensure_llama_tool, llama_cpp_python_version
from engine.chat_template import ChatMessage
from engine.events import Failed, Finished, Token
from engine.model import LoadOptions, load_model
from engine.server_client import ServerAddress
from engine.server_model import ServerModel
from engine.turn import ChatSession, SamplingParams, TurnRequest

SYSTEM = "You are a helpful assistant."
ALIAS = "bench-phi3"


@dataclass
class Turn:
    first_word_s: float
    prompt_tokens: int
    reused_prompt_tokens: int
    generated_tokens: int
    tokens_per_s: float  # after the first word


@dataclass
class Row:
    engine: str
    first: Turn
    follow_up: Turn


def timed_turn(session: ChatSession, request: TurnRequest) -> tuple[Turn, str]:
    started = time.perf_counter()
    first = 0.0
    end: Finished | None = None
    for event in session.run(request, threading.Event()):
        if isinstance(event, Token) and not first:
            first = time.perf_counter()
        elif isinstance(event, Failed):
            raise event.error
        elif isinstance(event, Finished):
            end = event
    done = time.perf_counter()
    assert end is not None
    tokens = end.stats.generated_tokens
    rate = (tokens - 1) / (done - first) if first and done > first and tokens > 1 else 0.0
    return (
        Turn(
            first_word_s=(first or done) - started,
            prompt_tokens=end.stats.prompt_tokens,
            reused_prompt_tokens=end.stats.reused_prompt_tokens,
            generated_tokens=tokens,
            tokens_per_s=rate,
        ),
        end.text,
    )


def two_turns(session: ChatSession, name: str, tokens: int) -> Row:
    question = prompt_messages()[0].content
    sampling = SamplingParams(temperature=0.0, max_answer_tokens=tokens)
    first, answer = timed_turn(session, TurnRequest(SYSTEM, [], question, sampling))
    history = [ChatMessage("user", question), ChatMessage("assistant", answer)]
    follow, _ = timed_turn(session, TurnRequest(SYSTEM, history, "And in one sentence?", sampling))
    return Row(name, first, follow)


@contextmanager
def llama_server(model: Path, threads: int, context: int) -> Iterator[str]:
    binary = ensure_llama_tool("llama-server")
    port = free_port()
    command = [
        str(binary),
        *("--model", str(model), "--host", "127.0.0.1", "--port", str(port)),
        *("--ctx-size", str(context), "--parallel", "1", "--alias", ALIAS),
        *("--threads", str(threads), "--threads-batch", str(threads), "--batch-size", "512"),
        # As the local engine loads it (engine.model.maps_weights: no mmap on
        # the CPU; flash attention only with the 8-bit KV cache, off here;
        # llama-server's default is "auto", which turns it on).
        *("--load-mode", "none", "--flash-attn", "off"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {process.returncode}")
            try:
                if httpx.get(url + "/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["phi3-mini", "tiny"], default="phi3-mini")
    parser.add_argument("--tokens", type=int, default=32, help="tokens to write per answer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument(
        "--only", choices=["model", "documents"], help="run one half (default: both)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 100_000], help="documents: chunk counts"
    )
    args = parser.parse_args()
    if args.only != "documents":
        compare_models(args)
    if args.only != "model":
        from bench import remote_retrieval

        remote_retrieval.main(["--sizes", *map(str, args.sizes)])


def compare_models(args: argparse.Namespace) -> None:

    path = ensure_model(args.shape)
    ensure_llama_tool("llama-server")  # built before anything is timed
    options = LoadOptions(context_tokens=args.context, threads=args.threads, seed=1)
    local_model = load_model(path, options)
    try:
        local = two_turns(ChatSession(local_model), "local engine (in-process)", args.tokens)
    finally:
        local_model.close()
    with llama_server(path, args.threads, args.context) as url:
        served = ServerModel.connect(ServerAddress(url, ALIAS))
        try:
            remote = two_turns(ChatSession(served), f"llama-server on {url}", args.tokens)
        finally:
            served.close()

    machine = f"{cpu_name()}, {args.threads} threads"
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    print(f"\nModel: {path.name} ({args.shape}), {machine}, load {' '.join(load)}\n")
    print(
        "| engine | prompt tokens | first word s | tok/s | follow-up: reused / prompt tokens "
        "| follow-up first word s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in (local, remote):
        print(
            f"| {row.engine} | {row.first.prompt_tokens} | {row.first.first_word_s:.2f} | "
            f"{row.first.tokens_per_s:.2f} | {row.follow_up.reused_prompt_tokens} / "
            f"{row.follow_up.prompt_tokens} | {row.follow_up.first_word_s:.2f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "remote.json"
    out.write_text(
        json.dumps(
            {
                "model": path.name,
                "shape": args.shape,
                "machine": machine,
                "load_average": load,
                "platform": platform.platform(),
                "llama_cpp_python": llama_cpp_python_version(),
                "answer_tokens": args.tokens,
                "context_tokens": args.context,
                "rows": [asdict(local), asdict(remote)],
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
