"""A conversation as a file: Markdown to read and share, JSON to keep and import.

**Markdown** is the branch shown (what the window shows), each answer's
citations [1], [2] turned into footnotes that keep where the source is: the
file with its page, heading path or lines, or the web page's title and URL.

**JSON** is everything: every version of every message (each with its
parent, so the branches are kept), the sources given to each answer (their
excerpt, citation and location), which model wrote each answer, and the
conversation's options. :func:`import_conversation` reads it back into a new
conversation; exporting that again gives the same JSON except for
``exported_at`` (message ids are numbered within the file, and timestamps
are kept), see ``tests/engine/test_export.py``. The JSON, version 1::

    {"format": "footnote-conversation", "version": 1,
     "exported_at": "2026-12-06T07:00:00+00:00",   # not read back
     "title": "…", "created_at": 1733468400.5, "updated_at": …,  # Unix seconds
     "model": "Phi-3-mini-4k-instruct-q4.gguf",  # of the newest answer, or null
     "options": {"web": "auto", …},             # the conversation's choices
     "current": 6,       # the message the branch shown ends with
     "messages": [       # every version, oldest first; a parent comes first
       {"id": 1, "parent": null, "role": "user", "content": "…",
        "version": 1, "versions": 2,           # among its parent's children
        "created_at": …,
        "sent_as": "…",                         # only if the model read other text
        "sent_sources": [{…}],                  # a question's passages, as sent
        "finish_reason": "stop", "model": "…",  # answers
        "sources": [{"n": 1, "citation": "…", "kind": "document",
                     "location": {"path": "…", "page": 3}, "text": "…",
                     "id": "…", "score": 0.8}]}]}
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from engine.branches import children_of, versions
from engine.context import SourcePassage
from engine.errors import EngineError, HistoryError
from engine.history import (
    Conversation,
    ConversationStore,
    NewMessage,
    StoredMessage,
    StoredSource,
)

FORMAT_NAME = "footnote-conversation"
FORMAT_VERSION = 1
ExportFormat = Literal["md", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("md", "json")
# A JSON file bigger than this is not a conversation Footnote wrote.
MAX_IMPORT_BYTES = 256 * 1024 * 1024

ROLE_HEADINGS = {"user": "You", "assistant": "Footnote", "system": "System"}
FINISH_NOTES = {
    "cancelled": "Stopped before the end",
    "length": "Cut short",
    "interrupted": "Interrupted: Footnote closed before this answer was finished",
}

# [1] or [1, 2], as the window links them (app.widgets.markdown_render).
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(\[:])")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:.+?)\1")


class ConversationNotFound(EngineError):
    """No conversation has that id or title."""


class ConversationFileError(EngineError):
    """A file to import is not a conversation Footnote can read."""


# ---------------------------------------------------------------------- finding


def find_conversation(store: ConversationStore, id_or_title: str) -> Conversation:
    """A conversation by its id, else by its exact title, else by the start
    of its title; the most recently active when several match."""
    wanted = id_or_title.strip()
    if wanted.isdigit():
        found = store.get_conversation(int(wanted))
        if found is not None:
            return found
    every = store.conversations()
    for matches in (
        [c for c in every if c.title == wanted],
        [c for c in every if c.title.casefold() == wanted.casefold()],
        [c for c in every if c.title.casefold().startswith(wanted.casefold())],
    ):
        if matches:
            return matches[0]
    raise ConversationNotFound(
        f"No conversation has the id or title “{wanted}”. "
        "The window's conversation list shows their titles."
    )


# ---------------------------------------------------------------------- JSON


def conversation_to_dict(
    store: ConversationStore, conversation_id: int, *, now: _dt.datetime | None = None
) -> dict[str, Any]:
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"Conversation {conversation_id} no longer exists.")
    everything = store.all_messages(conversation_id)
    local = {m.id: n for n, m in enumerate(everything, start=1)}
    children = children_of({m.id: m.parent_id for m in everything})
    head = store.head_id(conversation_id)
    models = [m.model for m in everything if m.role == "assistant" and m.model]
    messages = []
    for message in everything:
        siblings = versions(children, message.parent_id)
        item: dict[str, Any] = {
            "id": local[message.id],
            "parent": local.get(message.parent_id) if message.parent_id is not None else None,
            "role": message.role,
            "content": message.content,
            "version": siblings.index(message.id) + 1 if message.id in siblings else 1,
            "versions": max(len(siblings), 1),
            "created_at": message.created_at,
        }
        if message.model_content is not None:
            item["sent_as"] = message.model_content  # what the model read (with its sources)
        if message.sent_sources:
            item["sent_sources"] = [source.to_json() for source in message.sent_sources]
        if message.finish_reason is not None:
            item["finish_reason"] = message.finish_reason
        if message.model:
            item["model"] = message.model
        if message.sources:
            item["sources"] = [source.to_json() for source in message.sources]
        messages.append(item)
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "exported_at": (now or _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds"),
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "model": models[-1] if models else None,
        "options": store.conversation_options(conversation_id),
        "current": local.get(head) if head is not None else None,
        "messages": messages,
    }


def conversation_to_json(store: ConversationStore, conversation_id: int) -> str:
    data = conversation_to_dict(store, conversation_id)
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


def import_conversation(store: ConversationStore, data: Mapping[str, Any]) -> Conversation:
    """Add the conversation in ``data`` (what :func:`conversation_to_dict`
    made) as a new conversation; all of it or nothing."""
    if data.get("format") != FORMAT_NAME:
        raise ConversationFileError(
            "This file is not a conversation exported by Footnote (its “format” is not "
            f"“{FORMAT_NAME}”). Export one with File → Export… as JSON."
        )
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConversationFileError(
            f"This conversation was exported by a newer Footnote (file version {version}). "
            "Update Footnote to import it."
        )
    raw = data.get("messages")
    if not isinstance(raw, list):
        raise ConversationFileError("This conversation file has no list of messages.")
    index_of: dict[Any, int] = {}
    new: list[NewMessage] = []
    for position, item in enumerate(raw):
        new.append(_new_message(item, position, index_of))
        index_of[item.get("id", position + 1)] = position
    current = data.get("current")
    try:
        return store.insert_conversation(
            str(data.get("title") or ""),
            new,
            head=index_of.get(current) if current is not None else None,
            created_at=_number(data.get("created_at")),
            updated_at=_number(data.get("updated_at")),
            options=data.get("options") if isinstance(data.get("options"), dict) else None,
        )
    except HistoryError as exc:
        raise ConversationFileError(
            f"This conversation could not be imported: {exc}", detail=exc.detail
        ) from exc


def read_conversation_file(path: Path) -> dict[str, Any]:
    """The JSON of a conversation file, or a sentence saying why not."""
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ConversationFileError(
                f"{path.name} is too big to be a conversation exported by Footnote."
            )
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConversationFileError(
            f"Could not read {path}: {exc.strerror or exc}.", detail=repr(exc)
        ) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConversationFileError(
            f"{path.name} is not a JSON file (it is damaged, or another kind of file). "
            "Import a conversation exported by Footnote as JSON.",
            detail=repr(exc),
        ) from exc
    if not isinstance(data, dict):
        raise ConversationFileError(f"{path.name} is not a conversation exported by Footnote.")
    return data


def _new_message(item: Any, position: int, index_of: Mapping[Any, int]) -> NewMessage:
    where = f"Message {position + 1} of this conversation file"
    if not isinstance(item, dict):
        raise ConversationFileError(f"{where} is not a message.")
    role = item.get("role")
    if role not in ("user", "assistant", "system"):
        raise ConversationFileError(f"{where} has no role (user or assistant).")
    parent = item.get("parent")
    if parent is not None and parent not in index_of:
        raise ConversationFileError(f"{where} follows a message that is not before it.")
    sources_raw = item.get("sources") or []
    sent_raw = item.get("sent_sources") or []
    if not isinstance(sources_raw, list) or not isinstance(sent_raw, list):
        raise ConversationFileError(f"{where} has unreadable sources.")
    return NewMessage(
        role=role,
        content=str(item.get("content") or ""),
        parent=None if parent is None else index_of[parent],
        model_content=str(item["sent_as"]) if item.get("sent_as") is not None else None,
        finish_reason=str(item["finish_reason"]) if item.get("finish_reason") else None,
        created_at=_number(item.get("created_at")) or 0.0,
        sources=[_source(s, where) for s in sources_raw],
        model=str(item["model"]) if item.get("model") else None,
        sent_sources=[_source(s, where) for s in sent_raw],
    )


def _source(item: Any, where: str) -> SourcePassage:
    if not isinstance(item, dict) or not isinstance(item.get("location", {}), dict):
        raise ConversationFileError(f"{where} has an unreadable source.")
    return SourcePassage(
        text=str(item.get("text") or ""),
        citation=str(item.get("citation") or ""),
        kind="web" if item.get("kind") == "web" else "document",
        location=dict(item.get("location") or {}),
        id=str(item.get("id") or ""),
        score=_number(item.get("score")) or 0.0,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------- Markdown


def conversation_to_markdown(
    store: ConversationStore, conversation_id: int, *, now: _dt.datetime | None = None
) -> str:
    """The branch shown, as Markdown, with each answer's citations as footnotes."""
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"Conversation {conversation_id} no longer exists.")
    messages = store.messages(conversation_id)
    models = sorted({m.model for m in messages if m.model})
    when = (now or _dt.datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M")
    about = [f"Exported from Footnote on {when}"]
    if models:
        about.append(f"model {', '.join(models)}")
    lines = [f"# {_one_line(conversation.title)}", "", f"*{' · '.join(about)}*", ""]
    footnotes: list[str] = []
    for message in messages:
        lines.append(f"## {ROLE_HEADINGS.get(message.role, message.role)}")
        lines.append("")
        if message.role == "assistant":
            body, notes = _cited(message, len(footnotes))
            footnotes.extend(notes)
        else:
            body = message.content
        lines.append(body.strip() or "*(empty)*")
        lines.append("")
        meta = []
        if message.finish_reason in FINISH_NOTES:
            meta.append(FINISH_NOTES[message.finish_reason or ""])
        if len(message.versions) > 1:
            meta.append(
                f"version {message.version} of {len(message.versions)}; "
                "the others are in the JSON export"
            )
        if meta:
            lines.extend([f"*{' · '.join(meta)}*", ""])
    if footnotes:
        lines.extend(["---", "", *footnotes, ""])
    return "\n".join(lines).rstrip() + "\n"


def _cited(message: StoredMessage, numbered_before: int) -> tuple[str, list[str]]:
    """The answer with [n] as footnote references, and its footnotes (every
    source it was given; those it did not cite are named after it)."""
    sources = message.sources
    if not sources:
        return message.content, []
    label = {s.n: numbered_before + i for i, s in enumerate(sources, start=1)}
    cited: set[int] = set()

    def reference(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        if not all(n in label for n in numbers):
            return match.group(0)
        cited.update(numbers)
        return "".join(f"[^{label[n]}]" for n in numbers)

    body = _outside_code(message.content, lambda text: _CITATION.sub(reference, text))
    uncited = [s for s in sources if s.n not in cited]
    if uncited:
        refs = ", ".join(f"[^{label[s.n]}]" for s in uncited)
        body = f"{body.rstrip()}\n\n*Also given, not cited:* {refs}"
    return body, [f"[^{label[s.n]}]: {footnote_text(s)}" for s in sources]


def footnote_text(source: StoredSource) -> str:
    """Where a source is, for a reader: the file (linked) with its page,
    heading path or lines, or the page's title linked to its URL."""
    location = source.location
    if source.kind == "web":
        url = str(location.get("url") or "")
        title = _one_line(str(location.get("title") or "")) or source.citation or url
        return f"[{_escape_link_text(title)}](<{url}>)" if url else _one_line(title)
    path = str(location.get("path") or "")
    name = Path(path).name if path else _one_line(source.citation) or "document"
    parts = [f"[{_escape_link_text(name)}](<{_file_uri(path)}>)" if path else name]
    where = _where_in(location)
    if where:
        parts.append(where)
    return ", ".join(parts)


def _where_in(location: Mapping[str, Any]) -> str:
    found = []
    if location.get("page") is not None:
        found.append(f"p. {location['page']}")
    headings = location.get("heading_path")
    if isinstance(headings, (list, tuple)) and headings:
        found.append(" › ".join(_one_line(str(h)) for h in headings))
    start, end = location.get("line_start"), location.get("line_end")
    if start is not None:
        found.append(f"lines {start}–{end}" if end not in (None, start) else f"line {start}")
    return ", ".join(found)


def _file_uri(path: str) -> str:
    try:
        return Path(path).as_uri()
    except ValueError:  # a relative path (an imported conversation from elsewhere)
        return path.replace(" ", "%20")


def _escape_link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _outside_code(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text outside code blocks and inline code:
    "[1]" inside code is code, not a citation."""
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            pieces, last = [], 0
            for match in _INLINE_CODE.finditer(line):
                pieces.append(change(line[last : match.start()]))
                pieces.append(match.group(0))
                last = match.end()
            pieces.append(change(line[last:]))
            out.append("".join(pieces))
    return "\n".join(out)


def write_file(target: Path, text: str) -> None:
    """Write the whole export or nothing (a temp file beside it, then a rename):
    an export that fails half way never leaves half a file under its name."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            Path(temp).replace(target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConversationFileError(
            f"Could not write {target}: {exc.strerror or exc}. "
            "Choose a folder you can write to, with some free space.",
            detail=repr(exc),
        ) from exc


def export_text(store: ConversationStore, conversation_id: int, fmt: ExportFormat) -> str:
    if fmt == "json":
        return conversation_to_json(store, conversation_id)
    return conversation_to_markdown(store, conversation_id)


def suggested_file_name(title: str, fmt: ExportFormat) -> str:
    """A file name from the title, safe on every system."""
    stem = re.sub(r"[^\w\- ]+", "", title, flags=re.UNICODE).strip()[:60].strip() or "conversation"
    return f"{stem}.{fmt}"
