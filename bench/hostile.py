"""Hostile files: text with a huge junk tail, indexed beside a good file.

    .venv/bin/python -m bench.hostile                  # 200 MB tails
    .venv/bin/python -m bench.hostile --tail-mb 16

A probe found that NUL, control characters and zero-width spaces count as
0 MiniLM tokens, so one chunk swallowed a whole run of them and chunking
turned quadratic: a 16 MB NUL tail took 103 s and became one 16 MB chunk; a
200 MB one made no progress for 16 minutes, and the good file beside it was
never indexed.

Index: for each kind of junk, a folder holds ``tailed.log`` (about 70 KB of
text, more than the sniffer's sample, then ``--tail-mb`` of junk, then one
last line) and ``good.md``; ``DocumentLibrary.index`` indexes it from
scratch (parser worker processes, MiniLM on the CPU, chroma, FTS5). Reported:
seconds, both files' states, the tailed file's chunks, the largest chunk in
characters, and whether its last line can be found.

Chunker: ``chunk_sections`` alone, in this process, on 32 KB sections of
each junk handed over untouched (as a PDF or Word parser may hand them), up
to ``--chunk-mb``: seconds, chunks, and characters given to the tokenizer.

A case that runs past ``--limit-s`` is cancelled and reported as such.
Prints Markdown tables and writes ``bench/results/hostile.json``.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.generation import write_results
from engine.hardware import physical_cores
from retrieval.chunking import chunk_sections, count_tokens_with
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import IngestFinished
from retrieval.parsing import Section

MB = 1 << 20
TEXT = ("The harbour log records every ship that entered the port. " * 1200).encode()
LAST_LINE = b"\nLast line of the log: all clear at the harbour.\n"
GOOD = "# Tide tables\n\nThe harbour master keeps the tide tables by the door.\n"
# Tails as bytes on disk (the index cases).
TAILS: dict[str, bytes] = {
    "NUL": b"\x00",
    "zero-width space": "\u200b".encode(),
    "undecodable bytes": b"\xff",
}
# Junk as decoded text (the chunker cases).
JUNK: dict[str, str] = {
    "NUL": "\x00",
    "zero-width space": "\u200b",
    "U+FFFD": "\ufffd",
    "combining accent": "\u0301",
    "letters, no spaces": "x",
}
WRITE_BLOCK_BYTES = 8 * MB


def write_tailed(path: Path, unit: bytes, tail_bytes: int) -> None:
    block = unit * (WRITE_BLOCK_BYTES // len(unit))
    with path.open("wb") as out:
        out.write(TEXT)
        written = 0
        while written < tail_bytes:
            part = block[: tail_bytes - written]
            out.write(part)
            written += len(part)
        out.write(LAST_LINE)


def index_case(
    embedder: Embedder, work: Path, unit: bytes, tail_bytes: int, limit_s: float
) -> dict[str, object]:
    folder = work / "docs"
    folder.mkdir(parents=True)
    write_tailed(folder / "tailed.log", unit, tail_bytes)
    (folder / "good.md").write_text(GOOD)
    library = DocumentLibrary(work / "index", lambda: embedder)
    cancel = threading.Event()
    timer = threading.Timer(limit_s, cancel.set)
    try:
        library.add_collection("hostile", [folder])
        timer.start()
        started = time.perf_counter()
        summary = None
        for event in library.index("hostile", cancel):
            if isinstance(event, IngestFinished):
                summary = event.summary
        seconds = time.perf_counter() - started
        timer.cancel()
        health = {Path(h.path).name: h for h in library.file_health("hostile")}
        with library._db.transaction() as db:
            texts = [r[0] for r in db.execute("SELECT text FROM chunks")]
        hits = library.search("last line of the log all clear at the harbour", k=1)
    finally:
        timer.cancel()
        library.close()
    tailed, good = health["tailed.log"], health["good.md"]
    return {
        "file_mb": round((len(TEXT) + tail_bytes + len(LAST_LINE)) / MB, 1),
        "seconds": round(seconds, 1),
        "cancelled_at_limit": bool(summary is None or summary.cancelled),
        "tailed_state": tailed.state,
        "tailed_reason": tailed.reason,
        "tailed_chunks": tailed.chunks,
        "good_state": good.state,
        "largest_chunk_chars": max((len(t) for t in texts), default=0),
        "last_line_found": bool(hits and "all clear" in hits[0].text),
    }


def chunker_case(count: Callable[[str], int], junk: str, chars: int) -> dict[str, object]:
    tokenized = 0

    def metered(text: str) -> int:
        nonlocal tokenized
        tokenized += len(text)
        return count(text)

    block = (junk * (32 * 1024 // len(junk) + 1))[: 32 * 1024]
    real = Section(TEXT.decode()[:4000])

    def sections() -> Iterator[Section]:
        yield real
        for _ in range(chars // len(block)):
            yield Section(block)
        yield real

    started = time.perf_counter()
    chunks = list(chunk_sections(Path("scan.pdf"), sections(), metered))
    return {
        "junk_mb": round(chars / MB, 1),
        "seconds": round(time.perf_counter() - started, 2),
        "chunks": len(chunks),
        "largest_chunk_chars": max(len(c.text) for c in chunks),
        "tokenized_chars": tokenized,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tail-mb", type=int, default=200, help="junk after the text (MB)")
    parser.add_argument(
        "--chunk-mb", type=int, default=16, help="junk for the chunker alone (M characters)"
    )
    parser.add_argument("--limit-s", type=float, default=600.0, help="cancel a case after this")
    args = parser.parse_args()

    embedder = Embedder()
    embedder.load()
    embedder.embed_documents(["warm up the model"] * 8)
    count = count_tokens_with(embedder._loaded().tokenizer.backend_tokenizer)

    index_rows: dict[str, dict[str, object]] = {}
    for name, unit in TAILS.items():
        with tempfile.TemporaryDirectory() as work:
            index_rows[name] = index_case(
                embedder, Path(work), unit, args.tail_mb * MB, args.limit_s
            )
        print(f"indexed: {name} {index_rows[name]}", flush=True)
    chunk_rows = {
        name: chunker_case(count, junk, args.chunk_mb * MB) for name, junk in JUNK.items()
    }
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{physical_cores()} physical cores, {platform.system()}",
        "tail_mb": args.tail_mb,
        "limit_s": args.limit_s,
        "index": index_rows,
        "chunker": chunk_rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }

    print(f"\nIndexing text + {args.tail_mb} MB of junk beside a good file\n")
    print(
        "| tail | file MB | seconds | tailed.log | chunks | largest chunk "
        "| last line found | good.md |"
    )
    print("|---|---:|---:|---|---:|---:|---|---|")
    for name, row in index_rows.items():
        state = row["tailed_state"] if not row["cancelled_at_limit"] else "cancelled at limit"
        print(
            f"| {name} | {row['file_mb']} | {row['seconds']} | {state} | {row['tailed_chunks']} "
            f"| {row['largest_chunk_chars']} | {row['last_line_found']} | {row['good_state']} |"
        )
    print(f"\nChunker alone on {args.chunk_mb} MB of junk sections (plus two real ones)\n")
    print("| junk | seconds | chunks | largest chunk | tokenized chars |")
    print("|---|---:|---:|---:|---:|")
    for name, row in chunk_rows.items():
        print(
            f"| {name} | {row['seconds']} | {row['chunks']} | {row['largest_chunk_chars']} "
            f"| {row['tokenized_chars']:,} |"
        )
    print(f"({results['machine']}, peak RSS {results['peak_rss_mb']} MB)")
    write_results("hostile.json", results)


if __name__ == "__main__":
    main()
