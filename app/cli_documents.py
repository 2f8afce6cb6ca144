"""The documents commands of the CLI (no Qt): the same library the window uses.

    python -m app index add ~/Reports --collection reports --exclude "drafts/"
    python -m app index status [--collection reports]
    python -m app index remove reports
    python -m app search "revenue growth 2024" [--collection reports] [-k 5]

Progress goes to stderr, results to stdout; a bad input is one readable line
on stderr and exit status 1 (130 when interrupted: run the same command again
to resume, nothing indexed so far is lost).

The embedding model is all-MiniLM-L6-v2 from the installed package; set
``FOOTNOTE_EMBEDDING_MODEL`` to a sentence-transformers folder to use another
(collections built by the previous model are rebuilt on their next index).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from app.paths import AppPaths
from retrieval.discovery import display_path
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.errors import RetrievalError
from retrieval.ingest_events import FileFailed, IngestFinished, IngestProgress
from retrieval.manifest import is_failure

COMMANDS = frozenset({"index", "search"})
EMBEDDING_MODEL_ENV = "FOOTNOTE_EMBEDDING_MODEL"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXCERPT_CHARS = 240
PROGRESS_INTERVAL_S = 0.5


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    index = sub.add_parser("index", help="index folders of documents for search and answers")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    add = index_sub.add_parser("add", help="add a folder (or file) to a collection and index it")
    add.add_argument("dir", help="a folder or a file")
    add.add_argument("--collection", help="collection name (default: the folder's name)")
    add.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="gitignore-style pattern to skip (repeatable), on top of the defaults",
    )
    status = index_sub.add_parser("status", help="collections, and every file that failed")
    status.add_argument("--collection", help="only this collection")
    remove = index_sub.add_parser("remove", help="remove a collection's index (files stay)")
    remove.add_argument("name", help="the collection")

    search = sub.add_parser("search", help="search the indexed documents")
    search.add_argument("query", help="what to look for (use quotes)")
    search.add_argument(
        "--collection", action="append", help="search only this collection (repeatable)"
    )
    search.add_argument("-k", type=int, default=5, help="number of passages (default 5)")


def open_library(paths: AppPaths) -> DocumentLibrary:
    model = os.environ.get(EMBEDDING_MODEL_ENV, "").strip() or None
    return DocumentLibrary(paths.documents, lambda: Embedder(model))


def run(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    try:
        library = open_library(paths)
        try:
            if args.command == "search":
                return _search(library, args.query, args.collection, args.k, out)
            if args.index_command == "add":
                return _add(library, Path(args.dir), args.collection, args.exclude, out)
            if args.index_command == "remove":
                library.remove_collection(args.name)
                out.write(f"removed the collection “{args.name}” (its files are untouched)\n")
                return 0
            return _status(library, args.collection, out)
        finally:
            library.close()
    except RetrievalError as exc:
        print(f"footnote: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR


def _add(
    library: DocumentLibrary, target: Path, name: str | None, excludes: list[str], out: TextIO
) -> int:
    target = target.expanduser().absolute()
    if not target.exists():
        print(f"footnote: error: {display_path(target)} does not exist.", file=sys.stderr)
        return EXIT_ERROR
    name = name or target.name or str(target)
    existing = library.find_collection(name)
    if existing is None:
        library.add_collection(name, [target], excludes)
    else:
        library.update_collection(
            name,
            roots=[*existing.roots, target],
            excludes=[*existing.excludes, *(e for e in excludes if e not in existing.excludes)],
        )
    cancel = threading.Event()
    shown = 0.0
    try:
        for event in library.index(name, cancel):
            if isinstance(event, IngestProgress):
                if time.monotonic() - shown >= PROGRESS_INTERVAL_S:
                    shown = time.monotonic()
                    print(f"\r{_progress_line(event)}", end="", file=sys.stderr, flush=True)
            elif isinstance(event, FileFailed):
                print(f"\n{event.path}: {event.state}: {event.reason}", file=sys.stderr)
            elif isinstance(event, IngestFinished):
                s = event.summary
                print(file=sys.stderr)
                out.write(
                    f"{s.collection}: {s.indexed} files indexed, {s.unchanged} unchanged, "
                    f"{s.failed} failed, {s.removed} removed; {s.chunks_added} chunks "
                    f"in {s.seconds:.1f} s\n"
                )
    except KeyboardInterrupt:
        cancel.set()
        print("\nfootnote: stopped; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        if shown:
            print(file=sys.stderr)  # end the progress line: the error gets a line of its own
        raise
    return 0


def _progress_line(p: IngestProgress) -> str:
    eta = f", about {_duration(p.eta_s)} left" if p.eta_s is not None else ""
    return f"{p.files_done}/{p.files_total} files, {p.chunks_done} chunks{eta}   "


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _status(library: DocumentLibrary, name: str | None, out: TextIO) -> int:
    infos = [i for i in library.collections() if name is None or i.name == name]
    if name is not None and not infos:
        library.collection(name)  # raises CollectionNotFound with the known names
    if not infos:
        out.write("no collections yet: python -m app index add FOLDER\n")
        return 0
    for info in infos:
        states = ", ".join(f"{count} {state}" for state, count in sorted(info.states.items()))
        out.write(f"{info.name}: {info.files} files ({states or 'none'}), {info.chunks} chunks\n")
        for root in info.roots:
            out.write(f"  folder: {display_path(root)}\n")
        for health in library.file_health(info.name):
            if is_failure(health.state):
                out.write(f"  {health.state}: {health.path}: {health.reason}\n")
    return 0


def _search(
    library: DocumentLibrary, query: str, collections: list[str] | None, k: int, out: TextIO
) -> int:
    if k <= 0:
        print("footnote: error: -k must be at least 1.", file=sys.stderr)
        return EXIT_ERROR
    if not query.strip():
        print("footnote: error: the query is empty.", file=sys.stderr)
        return EXIT_ERROR
    passages = library.search(query, collections, k)
    if not passages:
        out.write("no passages found\n")
        return 0
    for n, passage in enumerate(passages, start=1):
        excerpt = " ".join(passage.text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[: EXCERPT_CHARS - 1] + "…"
        out.write(f"[{n}] {passage.citation}  (score {passage.score:.3f})\n    {excerpt}\n")
    return 0
