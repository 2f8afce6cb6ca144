"""`python -m app index add/status/remove` and `search`: the real library,
real files, real MiniLM, in a sandboxed FOOTNOTE_HOME."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import commands as cli
from app.cli import documents as cli_documents
from app.paths import AppPaths
from app.wiring import libraries
from retrieval.embedding import Embedder
from tests.retrieval.make_files import page_text, write_bytes, write_text_pdf


@pytest.fixture(scope="module")
def shared_embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


@pytest.fixture(autouse=True)
def one_embedder(monkeypatch: pytest.MonkeyPatch, shared_embedder: Embedder) -> None:
    """Each command opens the library anew, as a real run does; the (real)
    model is loaded once per module to keep the tests quick."""
    monkeypatch.setattr(libraries, "Embedder", lambda model=None: shared_embedder)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "Reports"
    docs.mkdir()
    write_text_pdf(docs / "report.pdf", [page_text(1), page_text(2), page_text(3)])
    (docs / "notes.md").write_text("# Notes\n\n## Budget\n\nThe heron budget doubled.\n")
    write_bytes(docs / "broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    (docs / "scratch.tmp.md").write_text("# Scratch\n\nheron scratch\n")
    return docs


def test_index_add_status_search_remove(
    folder: Path, capsys: pytest.CaptureFixture[str], footnote_home: Path
) -> None:
    code, out = run("index", "add", str(folder), "--exclude", "scratch*")
    assert code == 0
    assert out.startswith("Reports: 2 files indexed, 0 unchanged, 1 failed")
    err = capsys.readouterr().err
    assert "broken.pdf: failed:" in err and "files" in err  # progress and the failure

    code, out = run("index", "status")
    assert code == 0
    assert "Reports: 4 files" in out and "2 indexed" in out
    failed = [line for line in out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "broken.pdf" in failed[0] and "damaged" in failed[0]
    assert "scratch" not in "".join(failed)  # excluded is not a failure

    code, out = run("search", "zebra3 marker", "-k", "2")
    assert code == 0
    assert out.splitlines()[0].startswith("[1] report.pdf, p. 3")
    code, out = run("search", "heron budget", "--collection", "Reports", "-k", "1")
    assert out.startswith("[1] notes.md › Notes › Budget")

    # running it again re-reads nothing
    code, out = run("index", "add", str(folder))
    assert "0 files indexed, 3 unchanged" in out  # the excluded one is not read at all

    assert (footnote_home / "data" / "documents").is_dir()
    code, out = run("index", "remove", "Reports")
    assert code == 0 and "untouched" in out
    assert (folder / "report.pdf").exists()
    code, out = run("index", "status")
    assert out.startswith("no collections yet")


def test_bad_input_is_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    assert run("index", "add", str(tmp_path / "missing"))[0] == 1
    assert capsys.readouterr().err.strip().endswith("does not exist.")
    assert run("index", "remove", "nope")[0] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no collection called “nope”" in err[0]
    assert run("search", "x", "--collection", "nope")[0] == 1
    assert run("search", "x", "-k", "0")[0] == 1
    assert run("index", "status", "--collection", "nope")[0] == 1


def test_cli_exit_status_from_a_real_process(tmp_path: Path, footnote_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "index", "add", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env={**os.environ, "FOOTNOTE_HOME": str(footnote_home)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"footnote: error: {tmp_path / 'missing'} does not exist."
    ]


LEAN_SEARCH = """
import sys
from app.__main__ import main
code = main(sys.argv[1:])
heavy = sorted({"torch", "sentence_transformers", "transformers", "llama_cpp", "PySide6"}
               & set(sys.modules))
print("heavy:", heavy, file=sys.stderr)
sys.exit(code)
"""


def test_search_starts_lean_and_ranks_as_the_window(
    folder: Path, footnote_home: Path, shared_embedder: Embedder
) -> None:
    """`python -m app search` never imports torch, llama.cpp or Qt, and finds
    the same passages, in the same order with the same scores, as the
    library with the full model (the window's)."""
    run("index", "add", str(folder))
    paths = AppPaths.from_environment()
    library = libraries.open_library(paths, lambda: shared_embedder)
    try:
        expected = io.StringIO()
        assert cli_documents._search(library, "heron budget doubled", None, 3, expected) == 0
    finally:
        library.close()

    done = subprocess.run(
        [sys.executable, "-c", LEAN_SEARCH, "search", "heron budget doubled", "-k", "3"],
        capture_output=True,
        text=True,
        env={**os.environ, "FOOTNOTE_HOME": str(footnote_home)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stderr
    assert done.stdout == expected.getvalue()
    assert done.stdout.startswith("[1] notes.md › Notes › Budget")


def test_files_with_nothing_to_read_are_skipped_not_failed(
    tmp_path: Path, footnote_home: Path
) -> None:
    docs = tmp_path / "Mixed"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nThe heron budget doubled.\n")
    (docs / "empty.md").write_text("")
    write_bytes(docs / "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    code, out = run("index", "add", str(docs))
    assert code == 0
    assert out.startswith("Mixed: 1 files indexed, 0 unchanged, 0 failed, 2 skipped")
    code, out = run("index", "status")
    assert "failed:" not in out
    skipped = sorted(line.split(":")[1].strip() for line in out.splitlines() if "skipped:" in line)
    assert [Path(p).name for p in skipped] == ["empty.md", "photo.png"]
