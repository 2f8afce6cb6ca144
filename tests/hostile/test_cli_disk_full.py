"""A full disk during `python -m app index add`: one sentence, exit 1, no traceback.

The disk really fills, in the real write paths (SQLite's, chromadb's Rust
store, Python's), two ways:

- a full file system: the command runs in its own user and mount namespace
  (``unshare -rm``, no root needed where user namespaces are enabled) with a
  small tmpfs mounted over the data folder, so writes fail with ENOSPC and
  SQLite says "database or disk is full". Skipped where namespaces are off.
- a file-size limit, which works on any POSIX system: the child's
  RLIMIT_FSIZE caps every file it writes, and the write that would grow a
  file past it fails with EFBIG where a full disk fails with ENOSPC (SQLite
  reports that one as a "disk I/O error"). SIGXFSZ, which would otherwise
  kill the process, is ignored by every Python process (CPython sets it to
  SIG_IGN at start-up), so the error reaches the code.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FILE_SIZE_LIMIT_BYTES = 384 * 1024  # above any file before indexing, below the index
TMPFS_SIZE = "640k"  # holds the empty stores, not the index
FILES = 24
PARAGRAPHS_PER_FILE = 40
TIMEOUT_S = 300


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def _write_documents(folder: Path) -> None:
    folder.mkdir()
    for f in range(FILES):
        paragraphs = [
            f"## Section {p}\n\nFile {f}, paragraph {p}: the heron number {f * 1000 + p} "
            "nests by the river and counts the reeds it passes every morning. " * 3
            for p in range(PARAGRAPHS_PER_FILE)
        ]
        (folder / f"notes-{f:02d}.md").write_text(f"# Notes {f}\n\n" + "\n\n".join(paragraphs))


def _index_add(docs: Path, home: Path, how: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FOOTNOTE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "app", "index", "add", str(docs)]
    if how == "full file system":
        data = home / "data"
        data.mkdir(parents=True)
        mount = f'mount -t tmpfs -o size={TMPFS_SIZE} footnote-test "$0" && exec "$@"'
        command = ["unshare", "-rm", "sh", "-c", mount, str(data), *command]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    return subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=_limit_file_size,  # the limit must apply to the child only
        check=False,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX limits and namespaces")
@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("full file system", "footnote: error: the disk is full: Footnote could not write to"),
        ("file size limit", "footnote: error: a disk error stopped the command"),
    ],
)
def test_index_add_on_a_full_disk_is_one_sentence(
    tmp_path: Path, footnote_home: Path, how: str, said: str
) -> None:
    if how == "full file system" and not _namespaces_work():
        pytest.skip("user namespaces are not available here (unshare -rm)")
    docs = tmp_path / "Notes"
    _write_documents(docs)

    done = _index_add(docs, footnote_home, how)

    err = done.stderr
    assert "Traceback" not in err, err
    assert done.returncode == 1, (done.returncode, done.stdout, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(said), err
    assert "free" in last.lower() and str(footnote_home / "data") in last
    assert "0 failed" not in done.stdout  # it did not claim to have finished
