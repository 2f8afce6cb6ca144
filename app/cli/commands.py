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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from app.cli import conversations as cli_conversations
from app.cli import documents as cli_documents
from app.cli.failures import EXIT_ERROR, run_reporting_failures
from app.cli.progress import EXIT_INTERRUPTED, ProgressLine, run_with_progress
from app.logs import configure_logging
from app.paths import AppPaths
from app.settings import Settings, load_settings
from app.wiring import libraries
from app.wiring.grounding import (
    GroundingChoice,
    GroundingSource,
    SharedEmbedder,
    WebOptions,
    build_web_search,
    ledger_path,
)
from app.wiring.model_server import (
    ServerChoice,
    ServerLedger,
    api_key_from_env,
    server_choice,
)
from app.wiring.model_server import connect as connect_server
from engine.budget import FirstWordTarget
from engine.catalog import find, load_catalog, recommend
from engine.context import Passage
from engine.convert import OUTPUT_TYPES, ConvertDone, ConvertEvent, ConvertProgress, convert
from engine.download import DownloadDone, DownloadEvent, DownloadProgress, download
from engine.errors import EngineError, ServerUnreachable
from engine.events import Failed, Finished, Notice, Progress, Sources, SourcesDeclined, Token
from engine.gguf_info import inspect_gguf
from engine.hardware import detect_build, memory_budget
from engine.library import installed_models
from engine.model import LoadOptions, LocalModel, load_model
from engine.server_model import ServerModel
from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest
from retrieval.errors import RetrievalError
from retrieval.source_decision import SourceMode
from retrieval.web.ledger import Ledger
from retrieval.web.need_search import WebMode

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Footnote: a private assistant running Phi-3 on this computer. "
        "Run without arguments to open the window.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="ask one question and stream the answer to stdout")
    ask.add_argument("question", help="the question (use quotes)")
    ask.add_argument(
        "--model",
        help="GGUF file (default: the model chosen in the app); with --server, the model's "
        "name on the server",
    )
    ask.add_argument(
        "--server",
        metavar="URL",
        help="compute the answer on this model server (an OpenAI-compatible API: llama.cpp's "
        "llama-server, vLLM, Ollama); 'local' for this computer (default: the app's choice)",
    )
    ask.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="the environment variable holding the server's API key (default: the keyring's)",
    )
    ask.add_argument("--system", help="system prompt (default: the app's)")
    ask.add_argument("--context", type=int, help="context size in tokens (default: the app's)")
    ask.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    ask.add_argument("--temperature", type=float, help="sampling temperature (default: 0.7)")
    ask.add_argument(
        "--docs",
        action="append",
        default=[],
        metavar="NAME",
        help="answer from this document collection (repeatable; 'all' for every one)",
    )
    ask.add_argument(
        "--docs-mode",
        choices=[m.value for m in SourceMode if m is not SourceMode.OFF],
        default=SourceMode.AUTO.value,
        help="auto (default): use the documents when they bear on the question; always",
    )
    ask.add_argument(
        "--web",
        choices=[m.value for m in WebMode],
        default=WebMode.OFF.value,
        help="web search: off (default: nothing leaves the machine), auto, or always",
    )
    ask.add_argument("--searxng", metavar="URL", help="a SearXNG instance to search first")
    ask.add_argument(
        "--allow-local-fetch",
        action="store_true",
        help="let the web fetcher open loopback and private addresses (intranets, tests)",
    )
    ask.add_argument(
        "--first-word",
        choices=[t.value for t in FirstWordTarget],
        default=FirstWordTarget.BALANCED.value,
        help="how long reading the sources may take before the answer starts",
    )
    ask.add_argument("--max-tokens", type=int, help="stop the answer after this many tokens")
    ask.add_argument("--seed", type=int, help="random seed, for repeatable answers")
    ask.add_argument(
        "--kv-cache-8bit",
        action="store_true",
        help="8-bit KV cache with flash attention (half the context memory)",
    )
    ask.add_argument("--verbose", action="store_true", help="log llama.cpp's details too")
    ask.add_argument(
        "--show-control-tokens",
        action="store_true",
        help="print how many of each control token (<|user|>, <|end|>…) the prompt held",
    )

    models = sub.add_parser("models", help="look at model files")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    inspect = models_sub.add_parser(
        "inspect", help="print what a GGUF file holds, or why it cannot be used"
    )
    inspect.add_argument("file", help="a .gguf file")
    models_sub.add_parser("list", help="the catalog and the models installed here")
    fetch = models_sub.add_parser(
        "download", help="download a catalog model (or a GGUF URL) into the models folder"
    )
    fetch.add_argument("model", help="a catalog id or name (see `models list`), or an https URL")
    fetch.add_argument("--sha256", help="expected SHA-256 of the file (hex)")

    ledger = sub.add_parser("ledger", help="every web query and URL that left this computer")
    ledger.add_argument("--clear", action="store_true", help="forget the list")
    ledger.add_argument("-n", type=int, default=200, help="how many, newest first (default 200)")

    conv = sub.add_parser(
        "convert", help="convert a Hugging Face Phi-3 folder to a (quantized) GGUF"
    )
    conv.add_argument("folder", help="folder with config.json, *.safetensors, tokenizer.model")
    conv.add_argument("-o", "--output", required=True, help="the .gguf file to write")
    conv.add_argument(
        "--quant", default="q4_k_m", choices=OUTPUT_TYPES, help="output type (default q4_k_m)"
    )
    cli_documents.add_parsers(sub)
    cli_conversations.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    paths = AppPaths.from_environment()
    configure_logging(paths.log_file, verbose=getattr(args, "verbose", False))
    return run_reporting_failures(
        args.command,
        lambda: _dispatch(args, paths, out),
        (EngineError, RetrievalError),
        data_dir=paths.data,
        log_file=paths.log_file,
    )


def _dispatch(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    if args.command in cli_documents.COMMANDS:
        return cli_documents.run(args, paths, out)
    if args.command in cli_conversations.COMMANDS:
        return cli_conversations.run(args, paths, out)
    if args.command == "ledger":
        return _ledger(paths, args.clear, args.n, out)
    if args.command == "convert":
        return _convert(Path(args.folder), Path(args.output), args.quant, out)
    if args.command == "models":
        return _models(args, paths, out)
    return _ask(args, paths, out)


def _models(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    if args.models_command == "list":
        return _list_models(paths, out)
    if args.models_command == "download":
        return _download(paths, args.model, args.sha256, out)
    return _inspect(args.file, out)


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
    if info.missing_chat_tokens:
        rows.append(("chat tokens", "MISSING " + " ".join(info.missing_chat_tokens)))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        out.write(f"{key:<{width}}  {value}\n")
    if info.chat_token_warning:
        print(f"footnote: warning: {info.chat_token_warning}", file=sys.stderr)
    return 0


def _convert(folder: Path, output: Path, quant: str, out: TextIO) -> int:
    if output.exists():
        print(f"footnote: error: {output} already exists; choose another name.", file=sys.stderr)
        return EXIT_ERROR
    cancel = threading.Event()

    def handle(event: ConvertEvent, line: ProgressLine) -> None:
        if isinstance(event, ConvertProgress):
            percent = 100 * event.done // max(event.total, 1)
            line.show(f"{event.stage}: {percent:3d}%", final=event.done >= event.total)
        elif isinstance(event, ConvertDone):
            line.end()
            out.write(f"{event.path}\n")

    return run_with_progress(
        convert(folder, output, cancel, quant=quant),
        cancel,
        handle,
        stopped_text="conversion stopped; nothing was written.",
    )


def _list_models(paths: AppPaths, out: TextIO) -> int:
    entries = load_catalog()
    budget = memory_budget(detect_build().gpus)
    available = budget.total_bytes
    best = recommend(entries, available)
    free = _size(budget.ram_bytes)
    if budget.gpu_bytes:
        free += f" + {_size(budget.gpu_bytes)} on {budget.gpu_name}"
    out.write(f"Catalog (memory available now: {free}):\n")
    for entry in entries:
        mark = "*" if entry is best else " "
        fit = "fits" if entry.fits(available) else "needs more memory"
        if budget.gpu_bytes and entry.fits(available):
            where = entry.placement_text(budget)
            fit += f", {where}" if where else ""
        out.write(
            f" {mark} {entry.id:<36} {entry.parameters:>5}  {_size(entry.size_bytes):>9}  "
            f"needs {_size(entry.memory_needed_bytes()):>9}  ctx {entry.native_context:>6,}  "
            f"{entry.license}  {fit}\n"
        )
    out.write("   (* recommended for this machine)\n\nInstalled in " + str(paths.models) + ":\n")
    installed = installed_models(paths.models)
    for model in installed:
        if model.info:
            out.write(
                f"   {model.path.name}  {model.info.quantization}  {_size(model.size_bytes)}  "
                f"ctx {model.info.context_length:,}\n"
            )
        else:
            out.write(f"   {model.path.name}  unusable: {model.problem}\n")
    if not installed:
        out.write("   none yet: python -m app models download phi-3-mini-4k-instruct-q4\n")
    return 0


def _download(paths: AppPaths, name: str, sha256: str | None, out: TextIO) -> int:
    entry = find(load_catalog(), name)
    if entry is not None:
        url, file, sha256 = entry.url, entry.file, sha256 or entry.sha256
    elif name.startswith(("https://", "http://")):
        url, file = name, name.rsplit("/", 1)[-1].split("?", maxsplit=1)[0]
        if not file.endswith(".gguf"):
            print(f"footnote: error: {file} is not a .gguf file URL.", file=sys.stderr)
            return EXIT_ERROR
    else:
        print(
            f"footnote: error: no catalog model called “{name}”. "
            "See `python -m app models list`, or pass an https URL of a .gguf file.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    destination = paths.ensure().models / file
    if destination.exists():
        out.write(f"{destination}\n")
        return 0
    cancel = threading.Event()

    def handle(event: DownloadEvent, line: ProgressLine) -> None:
        if isinstance(event, DownloadProgress):
            line.show(_progress_line(event))
        elif isinstance(event, DownloadDone):
            line.end()
            out.write(f"{event.path}\n")

    return run_with_progress(
        download(url, destination, cancel, sha256=sha256),
        cancel,
        handle,
        stopped_text="stopped; run the same command again to resume.",
    )


def _progress_line(p: DownloadProgress) -> str:
    done = _size(p.done_bytes)
    if not p.total_bytes:
        return f"{done} downloaded"
    eta = (
        f", {int(p.eta_seconds // 60)} min {int(p.eta_seconds % 60)} s left"
        if p.eta_seconds
        else ""
    )
    speed = f" at {p.bytes_per_second / 2**20:.1f} MiB/s" if p.bytes_per_second else ""
    return f"{100 * (p.fraction or 0):5.1f}%  {done} of {_size(p.total_bytes)}{speed}{eta}"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 100_000_000 else f"{n / 1e6:.2f} M"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _ask(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    settings = _settings(paths)
    opened = _open_model(args, settings, paths)
    if opened is None:
        return EXIT_ERROR
    model, recorder = opened
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
    source = _grounding(args, paths)
    budget = TurnBudget(FirstWordTarget(args.first_word))
    try:
        for event in ChatSession(model).run(request, cancel, source, budget=budget):
            if isinstance(event, Progress):
                if source is not None:  # progress worth showing: documents, the web
                    print(f"footnote: {event.text}", file=sys.stderr)
            elif isinstance(event, Token):
                out.write(event.text)
                out.flush()
            elif isinstance(event, (Notice, SourcesDeclined)):
                print(f"footnote: note: {_note(event)}", file=sys.stderr)
            elif isinstance(event, Sources) and recorder is not None:
                recorder.sources = tuple(event.passages)  # named in the ledger entry
            elif isinstance(event, (Finished, Failed)):
                _end(event, model, out, show_control_tokens=args.show_control_tokens)
    except KeyboardInterrupt:
        cancel.set()
        out.write("\n")
        print("footnote: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        model.close()
    return 0


def _settings(paths: AppPaths) -> Settings:
    loaded = load_settings(paths.settings_file)
    if loaded.problem:  # set aside: say so, as the window does
        print(f"footnote: note: {loaded.problem}", file=sys.stderr)
    return loaded.settings


def _open_model(
    args: argparse.Namespace, settings: Settings, paths: AppPaths
) -> tuple[LocalModel | ServerModel, ServerLedger | None] | None:
    """The model that answers: on the server chosen (with its ledger
    recorder), or loaded here; None (said on stderr) when none is chosen."""
    server = _server(args, settings)
    if server is not None:
        key = api_key_from_env(args.api_key_env)
        served, recorder = connect_server(server, paths.ensure().data, api_key=key)
        print(f"footnote: answers computed on {served.label}", file=sys.stderr)
        return served, recorder
    model_path = args.model or settings.model_path
    if not model_path:
        print(
            "footnote: error: no model chosen. Pass --model FILE.gguf, or open one in the app.",
            file=sys.stderr,
        )
        return None
    options = LoadOptions(
        context_tokens=args.context or settings.context_tokens,
        threads=args.threads or settings.threads or None,
        seed=args.seed,
        kv_cache_8bit=args.kv_cache_8bit or settings.kv_cache_8bit,
    )
    return load_model(model_path, options), None


def _server(args: argparse.Namespace, settings: Settings) -> ServerChoice | None:
    """``--server URL --model NAME``, else the app's choice; ``--server local``
    (or none chosen): this computer."""
    if args.server == "local":
        return None
    if args.server:
        if not args.model:
            raise ServerUnreachable(
                "--server needs --model NAME: the model's name on that server (its /v1/models)."
            )
        return ServerChoice(args.server, args.model)
    if args.model:  # a GGUF file given: this computer, whatever the app's choice
        return None
    return server_choice(settings)


def _note(event: Notice | SourcesDeclined) -> str:
    if isinstance(event, Notice):
        return event.text
    return f"not using your documents: {event.reason} (--docs-mode always uses them)"


def _end(
    event: Finished | Failed,
    model: LocalModel | ServerModel,
    out: TextIO,
    *,
    show_control_tokens: bool,
) -> None:
    """The answer's end; a failure keeps what was written before it (a server
    that dropped mid-answer), then raises its one sentence."""
    if isinstance(event, Finished):
        _finish(event, model, out, show_control_tokens=show_control_tokens)
        return
    if event.partial is not None:
        _finish(event.partial, model, out, show_control_tokens=False)
    raise event.error


def _finish(
    event: Finished, model: LocalModel | ServerModel, out: TextIO, *, show_control_tokens: bool
) -> None:
    out.write("\n")
    _write_sources(event.sources, out)
    out.flush()
    if show_control_tokens:
        counts = model.prompt_tokenizer.count_markers(event.prompt_tokens)
        listed = ", ".join(f"{text} {n}" for text, n in counts.items())
        print(f"footnote: control tokens in the prompt: {listed}", file=sys.stderr)
    for note in event.notes:
        print(f"footnote: note: {note}", file=sys.stderr)


def _grounding(args: argparse.Namespace, paths: AppPaths) -> GroundingSource | None:
    """The context source for ``ask --docs/--web``; None when neither is asked."""
    mode = WebMode(args.web)
    if not args.docs and mode is WebMode.OFF:
        return None
    # One embedding model for documents and web pages; a web-only question
    # leaves the document library closed.
    embedder = SharedEmbedder(libraries.new_embedder)
    library = libraries.open_library(paths, embedder.get) if args.docs else None
    collections: tuple[str, ...] | None = ()
    if args.docs:
        collections = None if "all" in args.docs else tuple(args.docs)
        if library is not None and collections is not None:
            for name in collections:
                library.collection(name)  # an unknown name: CollectionNotFound, one line
    web = None
    if mode is not WebMode.OFF:
        options = WebOptions(
            searxng_url=args.searxng or "", allow_local_fetch=args.allow_local_fetch
        )
        web = build_web_search(
            options, embedder, data_dir=paths.ensure().data, cache_dir=paths.cache
        )
    choice = GroundingChoice(
        collections=collections, web=mode, documents=SourceMode(args.docs_mode)
    )
    return GroundingSource(library, web, choice)


def _write_sources(sources: Sequence[Passage], out: TextIO) -> None:
    """``Sources`` then one line each: ``[n] title — URL`` or ``[n] file — p. 3``."""
    if not sources:
        return
    out.write("\nSources\n")
    for number, passage in enumerate(sources, start=1):
        out.write(f"[{number}] {source_line(passage.kind, passage.location)}\n")


def source_line(kind: str, location: Mapping[str, object]) -> str:
    if kind == "web":
        title = str(location.get("title") or "").strip()
        url = str(location.get("url") or "")
        return f"{title} — {url}" if title else url
    name = Path(str(location.get("path") or "document")).name
    if location.get("page") is not None:
        return f"{name} — p. {location['page']}"
    headings = location.get("heading_path")
    if isinstance(headings, (list, tuple)) and headings:
        return f"{name} — {' › '.join(str(h) for h in headings)}"
    start, end = location.get("line_start"), location.get("line_end")
    if start is not None:
        return (
            f"{name} — lines {start}–{end}"
            if end not in (None, start)
            else f"{name} — line {start}"
        )
    return name


def _ledger(paths: AppPaths, clear: bool, limit: int, out: TextIO) -> int:
    ledger = Ledger(ledger_path(paths.ensure().data))
    if clear:
        ledger.clear()
        out.write("The privacy ledger is empty.\n")
        return 0
    read = ledger.read(limit)
    if not read.entries and not read.unreadable:
        out.write(
            "Nothing has left this computer: no web search has been made and no model "
            "server asked.\n"
        )
        return 0
    for entry in read.entries:
        out.write(
            f"{entry.time:%Y-%m-%d %H:%M:%S}  {entry.kind:<5}  {entry.provider:<12}  {entry.text}\n"
        )
    if read.unreadable:
        print(
            f"footnote: error: the privacy ledger ({ledger.path}) is damaged: "
            f"{read.unreadable} {'entry' if read.unreadable == 1 else 'entries'} could not be "
            "read; the others are shown above.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
