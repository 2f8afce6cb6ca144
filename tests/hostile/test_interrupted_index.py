"""Stopping an index run: what the CLI says is what happens. Finished files
stay indexed; a file cut off part-way is indexed again from its start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from retrieval import file_reader
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import IngestFinished, IngestProgress

SMALL_FILES = 3
TIMEOUT_S = 300


def _write_docs(folder: Path, big_paragraphs: int) -> Path:
    folder.mkdir()
    for n in range(SMALL_FILES):
        (folder / f"small-{n}.md").write_text(f"# Small {n}\n\nA few words about herons.\n")
    big = "\n\n".join(
        f"Paragraph {p}: " + "the heron counts reeds by the river. " * 12
        for p in range(big_paragraphs)
    )
    (folder / "z-big.txt").write_text(big)  # read after the small ones
    return folder


def test_finished_files_are_kept_and_a_cut_off_file_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _write_docs(tmp_path / "docs", big_paragraphs=160)
    # The large file reaches the index in parts of 8 chunks, as a real large
    # file does in parts of PART_CHUNKS: it can be stopped half stored.
    monkeypatch.setattr(file_reader, "PART_CHUNKS", 8)
    library = DocumentLibrary(tmp_path / "index", Embedder, flush_chunks=8)
    try:
        library.add_collection("docs", [docs], [])
        cancel = threading.Event()
        for event in library.index("docs", cancel):
            if (
                isinstance(event, IngestProgress)
                and event.files_done == SMALL_FILES
                and event.chunks_done > SMALL_FILES + 8
            ):
                cancel.set()  # the small files are done, the big one part-way
        (info,) = library.collections()
        assert info.states.get("indexed") == SMALL_FILES
        assert info.files == SMALL_FILES + 1

        events = list(library.index("docs", threading.Event()))
        summary = next(e for e in events if isinstance(e, IngestFinished)).summary
        assert (summary.unchanged, summary.indexed) == (SMALL_FILES, 1)
        whole = summary.chunks_added + summary.chunks_reused
        (info,) = library.collections()
        assert info.states == {"indexed": SMALL_FILES + 1}
        assert info.chunks == SMALL_FILES + whole  # no half of it stored twice
    finally:
        library.close()


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    seen = b""
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        chunk = os.read(fd, 4096)
        assert chunk, seen  # the command ended before showing progress
        seen += chunk
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child")
@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_says_what_is_kept(tmp_path: Path, footnote_home: Path) -> None:
    docs = _write_docs(tmp_path / "docs", big_paragraphs=3000)  # minutes of embedding
    env = {**os.environ, "FOOTNOTE_HOME": str(footnote_home), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "index", "add", str(docs)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stderr is not None
        _read_until(child.stderr.fileno(), b" files, ", time.monotonic() + TIMEOUT_S)
        child.send_signal(signal.SIGINT)
        _out, err_bytes = child.communicate(timeout=TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    err = err_bytes.decode()
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "The files finished so far stay indexed" in err
    assert "a file cut off part-way starts over" in err
    assert "resume" not in err  # it does not resume a file, so it does not say so
