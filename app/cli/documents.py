"""The documents commands of the CLI (no Qt): the same library the window uses.

    python -m app index add ~/Reports --collection reports --exclude "drafts/"
    python -m app index update [--collection reports]
    python -m app index status [--collection reports]
    python -m app index remove reports
    python -m app search "revenue growth 2024" [--collection reports] [-k 5]

A collection on a Chroma server (``chroma run --path DIR --host 0.0.0.0 --port 8000``):

    python -m app index add /srv/share/reports --server http://host:8000 [--collection reports]
    python -m app index connect http://host:8000 reports [--map /srv/share=/Volumes/share]
        [--token-env VAR] [--offline-copy]

    python -m app index offline-copy reports on|off

``index add --server`` indexes into the server's collection (made if new,
recording this machine's embedding model; nothing is kept here) and makes it
searchable here too; ``index connect`` makes a server's collection searchable
on another machine, its paths mapped to where that machine sees the files.
``index status`` asks each server how it is; ``index remove`` forgets a
server collection here (the server keeps it, its offline copy goes).

``index offline-copy NAME on`` keeps a copy of the collection's passages and
vectors here (``--offline-copy`` on ``connect`` and ``add --server`` does
the same), searched when the server cannot be reached; ``index update``
refreshes it (only what changed on the server crosses); ``off`` deletes it.

A server that wants an access token: ``--token-env VAR`` names the
environment variable holding it; it is kept in the system keyring for that
server (``app/wiring/chroma_tokens.py``), so later commands and the window
send it without being told. ``FOOTNOTE_CHROMA_TOKEN`` covers every server
that has no token of its own.

Progress goes to stderr, results to stdout; a bad input is one readable line
on stderr and exit status 1 (130 when interrupted). Ctrl+C stops a run within
about a second, whatever it is doing; the files finished by then stay indexed,
and running the same command again indexes the rest. A file cut off part-way
is read and embedded again from its start: a run first removes what an
unfinished file left behind (the indexer's crash-safe order), so nothing is
stored twice.

Links: a symbolic link to a file or folder outside the collection's folders
is skipped and listed by ``index status``; ``index add --follow-links-outside``
allows them for that collection (``--no-follow-links-outside`` takes it back).

Every index run first checks the index and rebuilds what is lost (a deleted
or damaged vector store is made again from the stored passages, with its own
progress line); ``index status`` says how much search by meaning can see, and
``search`` warns when it sees less than everything.

The embedding model and the library are opened as the window opens them
(:mod:`app.wiring.libraries`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from app.cli.failures import EXIT_ERROR
from app.cli.progress import ProgressLine, run_with_progress
from app.paths import AppPaths
from app.wiring.chroma_tokens import save_chroma_token
from app.wiring.libraries import new_embedder, new_query_embedder, open_library
from retrieval.discovery import display_path
from retrieval.documents import CollectionInfo, DocumentLibrary
from retrieval.errors import ChromaServerError, RetrievalError
from retrieval.ingest_events import (
    FileFailed,
    IngestEvent,
    IngestFinished,
    IngestProgress,
    VectorsRebuilding,
)
from retrieval.manifest import NOTHING_TO_READ_STATES, FileState, is_failure
from retrieval.offline_copy import CopyEvent, CopyFinished, CopyProgress, copy_time_text
from retrieval.server_collections import ServerCollectionRef, parse_path_map

COMMANDS = frozenset({"index", "search"})
# What an interrupted run keeps, truthfully: finished files, not a file's half.
STOPPED_TEXT = (
    "stopped. The files finished so far stay indexed; run the same command again "
    "to index the rest (a file cut off part-way starts over)."
)
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
    add.add_argument(
        "--server",
        metavar="URL",
        help="index into a collection on this Chroma server (http://host:8000) instead "
        "of this computer",
    )
    add.add_argument(
        "--follow-links-outside",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also read symbolic links to files and folders outside the collection's "
        "folders (remembered for the collection; off by default)",
    )
    update = index_sub.add_parser(
        "update", help="index what changed in every collection (or one), repairing the index"
    )
    update.add_argument("--collection", help="only this collection")
    status = index_sub.add_parser("status", help="collections, and every file that failed")
    status.add_argument("--collection", help="only this collection")
    remove = index_sub.add_parser("remove", help="remove a collection's index (files stay)")
    remove.add_argument("name", help="the collection")
    connect = index_sub.add_parser(
        "connect", help="search a collection that lives on a Chroma server"
    )
    connect.add_argument("server", metavar="URL", help="the Chroma server (http://host:8000)")
    connect.add_argument("name", help="the collection's name on the server")
    connect.add_argument("--as", dest="local_name", help="its name here (default: the same)")
    connect.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SERVER_PREFIX=LOCAL_PREFIX",
        help="where this computer sees the server's files (repeatable), so citations open them",
    )
    for parser in (connect, add):
        parser.add_argument(
            "--token-env",
            metavar="VAR",
            help="the environment variable holding the Chroma server's access token (kept in "
            "the system keyring for that server from then on)",
        )
        parser.add_argument(
            "--offline-copy",
            action="store_true",
            help="keep a copy of the server collection here, searched when the server "
            "cannot be reached",
        )
    offline = index_sub.add_parser(
        "offline-copy",
        help="keep (on) or delete (off) this computer's copy of a server collection",
    )
    offline.add_argument("name", help="the server collection, as named here")
    offline.add_argument("state", choices=("on", "off"))

    search = sub.add_parser("search", help="search the indexed documents")
    search.add_argument("query", help="what to look for (use quotes)")
    search.add_argument(
        "--collection", action="append", help="search only this collection (repeatable)"
    )
    search.add_argument("-k", type=int, default=5, help="number of passages (default 5)")


def run(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    try:
        library = open_library(
            paths, new_query_embedder if args.command == "search" else new_embedder
        )
        try:
            if args.command == "search":
                return _search(library, args.query, args.collection, args.k, out)
            return _index_command(library, args, out)
        finally:
            library.close()
    except RetrievalError as exc:
        print(f"footnote: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR


def _server_command(library: DocumentLibrary, args: argparse.Namespace, out: TextIO) -> int | None:
    """The commands only about server collections (None: not one of them)."""
    if args.index_command in {"add", "connect"} and args.token_env:
        url = args.server
        if url and not _use_token(library, url, args.token_env):
            return EXIT_ERROR
    if args.index_command == "add" and args.server:
        return _add_to_server(library, Path(args.dir), args, out)
    if args.index_command == "connect":
        return _connect(library, args, out)
    if args.index_command == "offline-copy":
        return _offline_copy(library, args.name, args.state == "on", out)
    return None


def _index_command(library: DocumentLibrary, args: argparse.Namespace, out: TextIO) -> int:
    served = _server_command(library, args, out)
    if served is not None:
        return served
    if args.index_command == "add":
        return _add(
            library,
            Path(args.dir),
            args.collection,
            args.exclude,
            out,
            follow_links_outside=args.follow_links_outside,
        )
    if args.index_command == "update":
        return _update(library, args.collection, out)
    if args.index_command == "remove":
        if library.servers.find(args.name) is not None:
            library.servers.remove(args.name)
            out.write(f"forgot the server collection “{args.name}” here (the server keeps it)\n")
        else:
            library.remove_collection(args.name)
            out.write(f"removed the collection “{args.name}” (its files are untouched)\n")
        return 0
    return _status(library, args.collection, out)


def _update(library: DocumentLibrary, name: str | None, out: TextIO) -> int:
    """Index what changed (one collection, or all), then refresh the offline
    copies of server collections (``name``'s alone when it is one)."""
    if name is not None and library.servers.find(name) is not None:
        return _sync_copies(library, [name], out)
    if name is not None:
        library.collection(name)  # CollectionNotFound, with the names
    code = _index(library, name, out)
    if name is None and code == 0:
        copies = [r.name for r in library.servers.refs() if r.offline_copy]
        code = _sync_copies(library, copies, out)
    return code


def _add(
    library: DocumentLibrary,
    target: Path,
    name: str | None,
    excludes: list[str],
    out: TextIO,
    *,
    follow_links_outside: bool | None = None,
) -> int:
    target = target.expanduser().absolute()
    if not target.exists():
        print(f"footnote: error: {display_path(target)} does not exist.", file=sys.stderr)
        return EXIT_ERROR
    name = name or target.name or str(target)
    existing = library.find_collection(name)
    if existing is None:
        library.add_collection(
            name, [target], excludes, follow_links_outside=bool(follow_links_outside)
        )
    else:
        library.update_collection(
            name,
            roots=[*existing.roots, target],
            excludes=[*existing.excludes, *(e for e in excludes if e not in existing.excludes)],
            follow_links_outside=follow_links_outside,
        )
    return _index(library, name, out)


def _add_to_server(
    library: DocumentLibrary, target: Path, args: argparse.Namespace, out: TextIO
) -> int:
    target = target.expanduser().absolute()
    if not target.exists():
        print(f"footnote: error: {display_path(target)} does not exist.", file=sys.stderr)
        return EXIT_ERROR
    name = args.collection or target.name or str(target)
    cancel = threading.Event()
    code = _print_run(
        library.servers.index(args.server, name, [target], cancel, excludes=args.exclude),
        cancel,
        out,
    )
    if code != 0:
        return code
    known = library.servers.find(name)
    if known is None and library.find_collection(name) is None:
        known = library.servers.add(name, args.server, name, check=False)
        out.write(f"“{name}” is searchable here too (it lives on {args.server})\n")
    elif known is None:
        out.write(
            f"a collection here is already called “{name}”; to search the server's, run: "
            f"python -m app index connect {args.server} {name} --as NEW_NAME\n"
        )
    if known is not None and args.offline_copy:
        return _offline_copy(library, known.name, True, out)
    return 0


def _connect(library: DocumentLibrary, args: argparse.Namespace, out: TextIO) -> int:
    ref = library.servers.add(
        args.local_name or args.name,
        args.server,
        args.name,
        parse_path_map(args.map),
    )
    status = library.servers.check(ref.name)
    out.write(
        f"“{ref.name}” is searchable here: {status.chunks} chunks on {ref.url} "
        f"(collection “{ref.remote_name}”)\n"
    )
    for server_prefix, local_prefix in ref.path_map:
        out.write(f"  files under {server_prefix} open from {local_prefix}\n")
    if args.offline_copy:
        return _offline_copy(library, ref.name, True, out)
    return 0


def _use_token(library: DocumentLibrary, url: str, variable: str) -> bool:
    """The token in ``variable`` for the server at ``url``: used now, kept in
    the keyring (where there is none, this run only, and a note says so)."""
    token = os.environ.get(variable, "").strip()
    if not token:
        print(
            f"footnote: error: the environment variable {variable} is empty or not set.",
            file=sys.stderr,
        )
        return False
    library.servers.use_token(url, token)
    not_kept = save_chroma_token(url, token)
    if not_kept is not None:
        print(f"footnote: note: {not_kept}", file=sys.stderr)
    return True


def _offline_copy(library: DocumentLibrary, name: str, wanted: bool, out: TextIO) -> int:
    """Keep (and make now) or delete this computer's copy of ``name``."""
    if library.servers.find(name) is None:
        library.collection(name)  # CollectionNotFound, with the names
        print(
            f"footnote: error: “{name}” is a collection of this computer's; only a server "
            "collection has an offline copy.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    library.servers.set_offline_copy(name, wanted)
    if not wanted:
        out.write(f"deleted this computer's copy of “{name}”; it is searched on its server only\n")
        return 0
    return _sync_copies(library, [name], out)


def _sync_copies(library: DocumentLibrary, names: list[str], out: TextIO) -> int:
    """Refresh these offline copies, printing progress; 1 if a server failed."""
    code = 0
    for name in names:
        ref = library.servers.find(name)
        if ref is None or not ref.offline_copy:
            out.write(f"{name}: no offline copy (python -m app index offline-copy {name} on)\n")
            continue
        cancel = threading.Event()

        def handle(event: CopyEvent, line: ProgressLine, name: str = name) -> None:
            if isinstance(event, CopyProgress):
                line.show(
                    f"copying {name} from its server: {event.passages_done}/"
                    f"{event.passages_total} passages"
                )
            else:
                line.end()
                out.write(_copy_line(event))

        try:
            result = run_with_progress(
                library.servers.sync_copy(name, cancel),
                cancel,
                handle,
                stopped_text="stopped. The passages copied so far stay; run the same command "
                "again to copy the rest.",
                line=ProgressLine(interval_s=PROGRESS_INTERVAL_S),
            )
        except ChromaServerError as exc:
            print(f"footnote: error: {name}: {exc.message}", file=sys.stderr)
            code = EXIT_ERROR
            continue
        if result != 0:
            return result
    return code


def _copy_line(event: CopyFinished) -> str:
    if event.unchanged:
        return (
            f"{event.collection}: offline copy up to date ({event.passages} passages; "
            "nothing changed on the server)\n"
        )
    return (
        f"{event.collection}: offline copy of {event.passages} passages "
        f"({event.added} copied, {event.removed} dropped) in {event.seconds:.1f} s\n"
    )


def _index(library: DocumentLibrary, name: str | None, out: TextIO) -> int:
    """Run an index of ``name`` (all when None), printing progress; Ctrl+C
    stops it within about a second (the run's own stop, then exit 130)."""
    cancel = threading.Event()
    return _print_run(library.index(name, cancel), cancel, out)


def _print_run(events: Iterator[IngestEvent], cancel: threading.Event, out: TextIO) -> int:
    """Print an index run's progress and summary; Ctrl+C sets ``cancel``."""

    def handle(event: IngestEvent, line: ProgressLine) -> None:
        if isinstance(event, IngestProgress | VectorsRebuilding):
            last = isinstance(event, VectorsRebuilding) and (
                event.passages_done == event.passages_total
            )
            line.show(_progress_line(event), final=last)
        elif isinstance(event, FileFailed):
            line.message(f"{event.path}: {event.state}: {event.reason}")
        elif isinstance(event, IngestFinished):
            line.end()
            out.write(_summary_line(event))

    return run_with_progress(
        events,
        cancel,
        handle,
        stopped_text=STOPPED_TEXT,
        line=ProgressLine(interval_s=PROGRESS_INTERVAL_S),
    )


def _summary_line(event: IngestFinished) -> str:
    s = event.summary
    rebuilt = (
        f"; the search index was repaired: {s.vectors_rebuilt} passages embedded again "
        "from the stored text"
        if s.vectors_rebuilt
        else ""
    )
    return (
        f"{s.collection}: {s.indexed} files indexed, {s.unchanged} unchanged, "
        f"{s.failed} failed, {s.skipped} skipped, {s.removed} removed; "
        f"{s.chunks_added} chunks "
        f"in {s.seconds:.1f} s{rebuilt}\n"
    )


def _progress_line(p: IngestEvent) -> str:
    eta = ""
    if isinstance(p, IngestProgress | VectorsRebuilding) and p.eta_s is not None:
        eta = f", about {_duration(p.eta_s)} left"
    if isinstance(p, VectorsRebuilding):
        return (
            f"rebuilding the search index of {p.collection} ({p.reason}): "
            f"{p.passages_done}/{p.passages_total} passages{eta}"
        )
    assert isinstance(p, IngestProgress)
    return f"{p.files_done}/{p.files_total} files, {p.chunks_done} chunks{eta}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _status(library: DocumentLibrary, name: str | None, out: TextIO) -> int:
    infos = [i for i in library.collections() if name is None or i.name == name]
    servers = [r for r in library.servers.refs() if name is None or r.name == name]
    if name is not None and not infos and not servers:
        library.collection(name)  # raises CollectionNotFound with the known names
    if not infos and not servers:
        out.write("no collections yet: python -m app index add FOLDER\n")
        return 0
    code = _server_status(library, servers, out)
    if infos:
        _local_status(library, infos, name, out)
    return code


def _local_status(
    library: DocumentLibrary, infos: list[CollectionInfo], name: str | None, out: TextIO
) -> None:
    stores = library.check_stores(name)
    for info in infos:
        states = ", ".join(f"{count} {state}" for state, count in sorted(info.states.items()))
        out.write(f"{info.name}: {info.files} files ({states or 'none'}), {info.chunks} chunks\n")
        for root in info.roots:
            out.write(f"  folder: {display_path(root)}\n")
        if info.name in stores:
            out.write(f"  {stores[info.name].describe()}\n")
        links = []
        skipped = []
        for health in library.file_health(info.name):
            if is_failure(health.state):
                out.write(f"  {health.state}: {health.path}: {health.reason}\n")
            elif health.state == FileState.LINK_OUTSIDE:
                links.append(health)
            elif health.state in NOTHING_TO_READ_STATES:
                skipped.append(health)
        for health in skipped:  # not failures: a type it does not read, or no text
            out.write(f"  skipped: {health.path}: {health.reason}\n")
        for link in links:
            out.write(f"  link skipped: {link.path}: {link.reason}\n")
        if links:
            out.write(
                "  (to read links like these, run index add FOLDER --collection "
                f"{info.name!r} --follow-links-outside)\n"
            )


def _server_status(library: DocumentLibrary, refs: list[ServerCollectionRef], out: TextIO) -> int:
    """Each server collection, as its server says now; 1 if one cannot be reached."""
    code = 0
    for ref in refs:
        out.write(f"{ref.name}: on the Chroma server {ref.url} (collection “{ref.remote_name}”)\n")
        try:
            status = library.servers.check(ref.name)
        except ChromaServerError as exc:
            out.write(f"  unavailable: {exc.message}\n")
            code = EXIT_ERROR
            continue
        out.write(f"  {status.chunks} chunks, embedded by {status.model_id}\n")
        for server_prefix, local_prefix in ref.path_map:
            out.write(f"  files under {server_prefix} open from {local_prefix}\n")
    for ref in refs:  # also when its server is down: that is when the copy answers
        copy = library.servers.copy_info(ref.name) if ref.offline_copy else None
        if copy is not None:
            out.write(
                f"{ref.name}: offline copy on this computer: {copy.passages} passages, "
                f"from {copy_time_text(copy.synced_ns)}\n"
            )
    return code


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
    servers = {r.name for r in library.servers.refs()}
    for name in collections or [c.name for c in library.collections()] + sorted(servers):
        if name in servers:
            problem = library.servers.problem(name)
            from_copy, synced_ns = library.servers.answered_from_copy(name)
            if problem is not None and from_copy:
                print(
                    f"footnote: note: {name} answered from this computer's offline copy of "
                    f"{copy_time_text(synced_ns)}: {problem.message}",
                    file=sys.stderr,
                )
            elif problem is not None:
                print(
                    f"footnote: note: {name} was not searched: {problem.message}", file=sys.stderr
                )
            continue
        health = library.vector_health(name)
        if not health.ok:
            print(f"footnote: note: {name}: {health.describe()}", file=sys.stderr)
    if not passages:
        out.write("no passages found\n")
        return 0
    for n, passage in enumerate(passages, start=1):
        excerpt = " ".join(passage.text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[: EXCERPT_CHARS - 1] + "…"
        out.write(f"[{n}] {passage.citation}  (score {passage.score:.3f})\n    {excerpt}\n")
    return 0
