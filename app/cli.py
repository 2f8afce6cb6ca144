"""Footnote on the command line: the same engine, no Qt.

    python -m app ask --model phi3.gguf "What is a GGUF file?"

The answer streams to stdout; errors are one readable line on stderr and a
non-zero exit status (1 for errors, 2 for usage, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from app.logs import configure_logging
from app.paths import AppPaths
from app.settings import load_settings
from engine.errors import EngineError
from engine.events import Failed, Finished, Notice, Token
from engine.gguf_info import inspect_gguf
from engine.model import LoadOptions, load_model
from engine.turn import ChatSession, SamplingParams, TurnRequest

log = logging.getLogger(__name__)

COMMANDS = ("ask", "models")
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Footnote: a private assistant running Phi-3 on this computer. "
        "Run without arguments to open the window.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="ask one question and stream the answer to stdout")
    ask.add_argument("question", help="the question (use quotes)")
    ask.add_argument("--model", help="GGUF file (default: the model chosen in the app)")
    ask.add_argument("--system", help="system prompt (default: the app's)")
    ask.add_argument("--context", type=int, help="context size in tokens (default: the app's)")
    ask.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    ask.add_argument("--temperature", type=float, help="sampling temperature (default: 0.7)")
    ask.add_argument("--max-tokens", type=int, help="stop the answer after this many tokens")
    ask.add_argument("--seed", type=int, help="random seed, for repeatable answers")
    ask.add_argument("--verbose", action="store_true", help="log llama.cpp's details too")

    models = sub.add_parser("models", help="look at model files")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    inspect = models_sub.add_parser(
        "inspect", help="print what a GGUF file holds, or why it cannot be used"
    )
    inspect.add_argument("file", help="a .gguf file")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    paths = AppPaths.from_environment()
    configure_logging(paths.log_file, verbose=getattr(args, "verbose", False))
    try:
        if args.command == "models":
            return _inspect(args.file, out)
        return _ask(args, paths, out)
    except EngineError as exc:
        log.info("ask failed: %s\n%s", exc, exc.detail)
        print(f"footnote: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _inspect(file: str, out: TextIO) -> int:
    info = inspect_gguf(file)
    template = "yes" if info.chat_template else "no (Phi-3's is used for Phi models)"
    rows = [
        ("file", str(info.path)),
        ("name", info.display_name),
        ("architecture", info.architecture),
        ("parameters", _count(info.parameter_count)),
        ("quantization", info.quantization),
        ("size", _size(info.file_size_bytes)),
        ("context", f"{info.context_length:,} tokens"),
        ("chat template", template),
        ("stop tokens", " ".join(info.stop_tokens) or "none"),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        out.write(f"{key:<{width}}  {value}\n")
    return 0


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 100_000_000 else f"{n / 1e6:.2f} M"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _ask(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    settings = load_settings(paths.settings_file).settings
    model_path = args.model or settings.model_path
    if not model_path:
        print(
            "footnote: error: no model chosen. Pass --model FILE.gguf, or open one in the app.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    model = load_model(
        model_path,
        LoadOptions(
            context_tokens=args.context or settings.context_tokens,
            threads=args.threads or settings.threads or None,
            seed=args.seed,
        ),
    )
    for note in model.notes:
        print(f"footnote: note: {note}", file=sys.stderr)
    request = TurnRequest(
        system_prompt=settings.system_prompt if args.system is None else args.system,
        history=(),
        user_message=args.question,
        sampling=SamplingParams(
            temperature=settings.temperature if args.temperature is None else args.temperature,
            max_answer_tokens=args.max_tokens,
        ),
    )
    cancel = threading.Event()
    try:
        for event in ChatSession(model).run(request, cancel):
            if isinstance(event, Token):
                out.write(event.text)
                out.flush()
            elif isinstance(event, Notice):
                print(f"footnote: note: {event.text}", file=sys.stderr)
            elif isinstance(event, Finished):
                out.write("\n")
                out.flush()
                for note in event.notes:
                    print(f"footnote: note: {note}", file=sys.stderr)
            elif isinstance(event, Failed):
                raise event.error
    except KeyboardInterrupt:
        cancel.set()
        out.write("\n")
        print("footnote: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        model.close()
    return 0
