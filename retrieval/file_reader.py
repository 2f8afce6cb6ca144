"""Reading one file for the indexer: hash it, parse it, chunk it.

Runs on the indexer's parser thread (the parsing itself runs in the parser's
worker processes), and hands the embedder ``ReadItem``s: parts of a file's
chunks, or word that it was only touched, vanished, or failed with a reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from retrieval.discovery import FoundFile
from retrieval.locator import Locator
from retrieval.manifest import FileRecord
from retrieval.safe_open import Identity, NotTheScannedFile, ReadStalled, ReadStopped, sha256_of

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A huge file is handed from the parser thread to the embedder in parts of
# this many chunks, so it streams instead of sitting in memory whole.
PART_CHUNKS = 512
# No chunk longer than this reaches the embedder, whatever the chunker: the
# embedder tokenizes a text whole before it truncates, so one 16 MB "chunk"
# once held an index run for minutes. The product's chunker stays under
# 2,000 characters (``chunking.CHUNK_MAX_CHARS_PER_TOKEN``); whole passages
# of a benchmark corpus run to a few thousand.
EMBED_MAX_CHUNK_CHARS = 64 * 1024


class ChunkLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def locator(self) -> Locator: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def id(self) -> str: ...


class EmbedderLike(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def max_tokens(self) -> int: ...
    def count_tokens(self, text: str) -> int: ...
    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class FileParseError(Exception):
    """A file could not be read into chunks; ``state`` and ``reason`` go to the manifest."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


# path, embedder -> the file's chunks; raises FileParseError.
FileChunker = Callable[[Path, EmbedderLike], Iterator[ChunkLike]]


def parse_and_chunk(path: Path, embedder: EmbedderLike) -> Iterator[ChunkLike]:
    """The product's chunker: parse in a worker process, split by structure
    within the embedder's token limit."""
    from retrieval.chunking import (
        CHUNK_MAX_TOKENS,
        CHUNK_OVERLAP_TOKENS,
        CHUNK_STALL_TIMEOUT_S,
        chunk_sections,
    )
    from retrieval.errors import ParseFailed
    from retrieval.parsing.worker import parse_file

    try:
        # the parser's own defaults: a timeout for progress, a memory cap
        sections = parse_file(path)
        # The chunker's limit keeps a margin below the model's own (256 for MiniLM).
        max_tokens = min(CHUNK_MAX_TOKENS, embedder.max_tokens)
        # The parser's timeout covers the worker; the chunker's watchdog the
        # chunking here (a file that yields no chunk for a minute is skipped).
        try:
            yield from chunk_sections(
                path,
                sections,
                embedder.count_tokens,
                max_tokens,
                CHUNK_OVERLAP_TOKENS,
                stall_timeout_s=CHUNK_STALL_TIMEOUT_S,
            )
        finally:
            # Stopped early (the chunk watchdog, a cancel): stop the parser's
            # worker now, not when the exception's frames are collected.
            close = getattr(sections, "close", None)
            if close is not None:
                close()
    except ParseFailed as exc:
        raise FileParseError(exc.state, exc.message) from exc


@dataclass
class Work:
    """A file this run must look at, and its manifest row if it had one."""

    found: FoundFile
    old: FileRecord | None


@dataclass
class ReadItem:
    """One message from the parser thread to the embedder."""

    work: Work
    sha256: str | None = None
    chunks: list[ChunkLike] = field(default_factory=list)
    first: bool = True
    last: bool = True
    touched: bool = False  # same content, new mtime: no re-index
    vanished: bool = False  # deleted before it could be read
    failure: FileParseError | None = None


def read_file(
    unit: Work, chunker: FileChunker, embedder: EmbedderLike, stopped: Callable[[], bool]
) -> Iterator[ReadItem]:
    """Hash ``unit``'s file, then (unless only touched) parse it into parts of
    chunks; a failure or a vanished file is an item too, never an exception.
    Nothing more comes once ``stopped()``, within ``safe_open.STOP_POLL_S``.

    The file must still be the one the scan found (``safe_open``): one
    replaced by another file since counts as vanished (the next scan looks at
    what is there now); one replaced by a pipe or a device is not read."""
    from retrieval.parsing.worker import ParseStopped, parse_guard

    path = unit.found.path
    identity = Identity.of(unit.found)
    sha = _hash(unit, identity, stopped)
    if not isinstance(sha, str):
        if sha is not None:
            yield sha
        return
    if unit.old is not None and unit.old.sha256 == sha and unit.old.state == "indexed":
        yield ReadItem(unit, sha, touched=True)
        return
    part: list[ChunkLike] = []
    first = True
    try:
        # The parse (in a worker process, wherever the chunker starts it on
        # this thread) re-checks the file's identity and stops with us.
        with parse_guard(path, identity, stopped):
            for chunk in chunker(path, embedder):
                if len(chunk.text) > EMBED_MAX_CHUNK_CHARS:
                    raise _oversized(path, len(chunk.text))
                part.append(chunk)
                if len(part) >= PART_CHUNKS:
                    yield ReadItem(unit, sha, part, first=first, last=False)
                    part, first = [], False
                    if stopped():
                        return
    except ParseStopped:
        return
    except FileParseError as exc:
        yield ReadItem(unit, sha, first=first, failure=exc)
        return
    yield ReadItem(unit, sha, part, first=first, last=True)


def _hash(
    unit: Work, identity: Identity | None, stopped: Callable[[], bool]
) -> str | ReadItem | None:
    """The file's SHA-256; or the item that says why there is none; or None
    when stopped."""
    try:
        return sha256_of(unit.found.path, identity, stopped)
    except ReadStopped:
        return None
    except (NotTheScannedFile, FileNotFoundError) as exc:
        # gone, or another file in its place: the next scan sees what is there now
        if not isinstance(exc, NotTheScannedFile) or exc.replaced:
            return ReadItem(unit, vanished=True)
        return ReadItem(unit, failure=FileParseError("unreadable", exc.reason))
    except ReadStalled as exc:
        return ReadItem(unit, failure=FileParseError("timeout", str(exc.strerror)))
    except OSError as exc:
        return ReadItem(unit, failure=FileParseError("unreadable", _os_reason(exc)))


def path_key(path: Path) -> str:
    """A file's path as stored (manifest, chunks, vector metadata). SQLite and
    chroma take only valid UTF-8, and a file name need not be (Python keeps
    undecodable bytes as lone surrogates): those bytes are written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def storable(text: str) -> str:
    """``text`` without lone surrogates (from a damaged file), which SQLite refuses."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file (never blocks on a pipe; see ``safe_open``)."""
    return sha256_of(path, None)


def _oversized(path: Path, chars: int) -> FileParseError:
    from retrieval.discovery import display_path

    return FileParseError(
        "failed",
        f"{display_path(path.name)}: it was cut into a passage of {chars:,} characters, "
        f"more than the {EMBED_MAX_CHUNK_CHARS:,} a passage may hold; skipped",
    )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied: Footnote may not read it"
    return f"cannot be read ({exc.strerror or exc.__class__.__name__})"
