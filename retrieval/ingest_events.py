"""What ``index_collection`` yields while it works (plain data, Qt-free).

The app's generic worker re-emits them as signals; the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestProgress:
    files_done: int
    files_total: int  # files needing work in this run (unchanged ones are not counted)
    chunks_done: int
    current_path: str
    eta_s: float | None  # None until there is a rate to extrapolate from


@dataclass(frozen=True)
class FileIndexed:
    path: str
    chunks: int


@dataclass(frozen=True)
class FileFailed:
    path: str
    state: str  # "failed", "no_text", "encrypted", "timeout", "unreadable", ...
    reason: str


@dataclass(frozen=True)
class IngestSummary:
    collection: str
    indexed: int  # files (re)indexed in this run
    unchanged: int
    failed: int  # files that should be read and could not (manifest.is_failure)
    removed: int  # deleted or newly excluded files whose chunks were removed
    chunks_added: int
    chunks_reused: int  # embeddings reused by content hash (renames, unchanged paragraphs)
    seconds: float
    cancelled: bool
    # passages whose vectors were made again from their stored text (a lost
    # or damaged vector store healed before this run; see store_health)
    vectors_rebuilt: int = 0
    # files with nothing Footnote can read: a type it does not read, or no
    # text (manifest.NOTHING_TO_READ_STATES); not failures
    skipped: int = 0


@dataclass(frozen=True)
class IngestFinished:
    summary: IngestSummary


@dataclass(frozen=True)
class VectorsRebuilding:
    """The collection's vectors are being made again from its stored passages
    (no file is read): the vector store was lost, damaged or out of step."""

    collection: str
    reason: str  # what was wrong, in plain words
    passages_done: int
    passages_total: int
    eta_s: float | None


IngestEvent = IngestProgress | FileIndexed | FileFailed | IngestFinished | VectorsRebuilding
