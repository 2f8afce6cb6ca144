"""Conversations on the command line: list, export and import.

    python -m app conversations
    python -m app export "Trip planning" --format md -o trip.md
    python -m app import trip.json

Export writes Markdown (the branch the window shows, citations as
footnotes) or JSON (every version, sources, models); import reads such a
JSON file back as a new conversation (``engine.export``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Any, TextIO

from app.paths import AppPaths
from engine.export import (
    EXPORT_FORMATS,
    ExportFormat,
    export_text,
    find_conversation,
    import_conversation,
    read_conversation_file,
    write_file,
)
from engine.history import ConversationStore

COMMANDS = frozenset({"conversations", "export", "import"})


def add_parsers(sub: Any) -> None:
    sub.add_parser("conversations", help="list the conversations, most recent first, with ids")
    export = sub.add_parser(
        "export", help="write a conversation as Markdown (with footnotes) or JSON"
    )
    export.add_argument("conversation", help="its id or title (the start of a title will do)")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="md: to read and share; json: everything, to import again "
        "(default: from -o's extension, else md)",
    )
    export.add_argument("-o", "--output", help="the file to write (default: stdout)")
    imp = sub.add_parser("import", help="add a conversation exported as JSON")
    imp.add_argument("file", help="a .json file written by export or File → Export…")


def run(args: argparse.Namespace, paths: AppPaths, out: TextIO) -> int:
    store = ConversationStore(paths.ensure().history_db)
    try:
        if args.command == "conversations":
            return _list(store, out)
        if args.command == "export":
            return _export(store, args, out)
        return _import(store, Path(args.file), out)
    finally:
        store.close()


def _list(store: ConversationStore, out: TextIO) -> int:
    conversations = store.conversations()
    if not conversations:
        out.write("No conversations yet.\n")
    for conversation in conversations:
        when = _dt.datetime.fromtimestamp(conversation.updated_at).strftime("%Y-%m-%d %H:%M")
        out.write(f"{conversation.id:>5}  {when}  {conversation.title}\n")
    return 0


def export_format(requested: str | None, output: str | None) -> ExportFormat:
    if requested in EXPORT_FORMATS:
        return requested
    if output and output.lower().endswith(".json"):
        return "json"
    return "md"


def _export(store: ConversationStore, args: argparse.Namespace, out: TextIO) -> int:
    conversation = find_conversation(store, args.conversation)
    fmt = export_format(args.format, args.output)
    text = export_text(store, conversation.id, fmt)
    if not args.output:
        out.write(text)
        return 0
    target = Path(args.output).expanduser()
    write_file(target, text)
    out.write(f"Wrote “{conversation.title}” to {target}\n")
    return 0


def _import(store: ConversationStore, file: Path, out: TextIO) -> int:
    conversation = import_conversation(store, read_conversation_file(file.expanduser()))
    count = len(store.all_messages(conversation.id))
    out.write(
        f"Imported “{conversation.title}” ({count} message{'s' if count != 1 else ''}) "
        f"as conversation {conversation.id}.\n"
    )
    return 0
