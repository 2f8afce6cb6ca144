"""Indexing real files into a real index (chromadb + FTS5 + manifest) with the
real MiniLM: what a user notices — files found, re-indexed only when changed,
bad files listed with reasons, nothing left behind by deletes and renames."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import (
    FileFailed,
    FileIndexed,
    IngestEvent,
    IngestFinished,
    IngestSummary,
)
from tests.retrieval.make_files import page_text, write_bad_files, write_good_files, write_text_pdf


def run_index(
    library: DocumentLibrary, name: str = "docs"
) -> tuple[IngestSummary, list[IngestEvent]]:
    events = list(library.index(name, threading.Event()))
    finished = [e for e in events if isinstance(e, IngestFinished)]
    assert len(finished) == 1
    return finished[0].summary, events


def states(library: DocumentLibrary, name: str = "docs") -> dict[str, str]:
    return {Path(h.path).name: h.state for h in library.file_health(name)}


def assert_consistent(library: DocumentLibrary, name: str = "docs") -> None:
    """Both indexes hold exactly the same chunks, all of indexed files, once."""
    vectors, lexical, orphans = library.consistency(name)
    assert len(vectors) == len(set(vectors))
    assert sorted(vectors) == sorted(lexical)
    assert orphans == []
    expected = sum(h.chunks for h in library.file_health(name) if h.state == "indexed")
    assert len(lexical) == expected


def paths_in_index(library: DocumentLibrary, name: str = "docs") -> set[str]:
    with library._db.transaction() as db:  # the test reads the store directly
        rows = db.execute("SELECT DISTINCT path FROM chunks").fetchall()
    return {Path(r[0]).name for r in rows}


def test_indexes_every_kind_and_finds_pdf_pages(library: DocumentLibrary, tmp_path: Path) -> None:
    write_good_files(tmp_path / "docs")
    library.add_collection("docs", [tmp_path / "docs"])

    summary, events = run_index(library)

    assert summary.indexed == 7 and summary.failed == 0
    assert {Path(e.path).name for e in events if isinstance(e, FileIndexed)} == {
        "report.pdf",
        "quarterly.docx",
        "guide.md",
        "docs.rst",
        "handbook.html",
        "module.py",
        "cafe.txt",
    }
    assert set(states(library).values()) == {"indexed"}
    assert_consistent(library)
    top = library.search("zebra2 marker", k=3)
    assert top[0].citation == "report.pdf, p. 2"
    assert top[0].locator.page == 2 and top[0].kind == "document"
    assert top[0].location["path"].endswith("report.pdf")
    # Scores are the query's cosine similarity (comparable with web passages').
    assert all(-1.0 <= p.score <= 1.0 for p in top)
    assert top[0].score > 0.2


def test_an_unrelated_question_scores_low_and_a_matching_one_high(
    library: DocumentLibrary, tmp_path: Path
) -> None:
    """What the Auto web-search rule relies on: document scores mean relevance."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "harbour.md").write_text(
        "# Lighthouse\n\nThe Velmora harbour lighthouse was built in 1873 by the engineer "
        "Ada Brightwater.\n"
    )
    (folder / "soup.md").write_text("# Soup\n\nSimmer red lentils with onion and cumin.\n")
    library.add_collection("docs", [folder])
    run_index(library)
    related = library.search("Velmora harbour lighthouse engineer", k=1)
    unrelated = library.search("price of bitcoin futures in Tokyo", k=1)
    assert related and unrelated
    assert related[0].score > unrelated[0].score


def test_second_run_reads_nothing_and_touch_is_not_a_change(
    library: DocumentLibrary, tmp_path: Path
) -> None:
    files = write_good_files(tmp_path / "docs")
    library.add_collection("docs", [tmp_path / "docs"])
    run_index(library)

    again, _ = run_index(library)
    assert (again.indexed, again.chunks_added, again.unchanged) == (0, 0, 7)

    stat = files["markdown"].stat()
    os.utime(files["markdown"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched, _ = run_index(library)
    assert (touched.indexed, touched.chunks_added) == (0, 0)
    assert states(library)["guide.md"] == "indexed"
    # and the new mtime was recorded: the next run does not even hash it
    assert run_index(library)[0].unchanged == 7


def test_edit_add_delete_rename_leave_no_orphans(library: DocumentLibrary, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    files = write_good_files(docs)
    library.add_collection("docs", [docs])
    run_index(library)

    # edit: only the edited file is re-indexed; its old text can no longer be found
    files["markdown"].write_text("# Install guide\n\nUse the quokka installer on every machine.\n")
    # add
    write_text_pdf(docs / "new.pdf", [page_text(7), page_text(8)])
    # delete
    files["code"].unlink()
    summary, _ = run_index(library)
    assert summary.indexed == 2 and summary.removed == 1
    assert "module.py" not in paths_in_index(library)
    assert states(library).get("module.py") is None
    assert library.search("quokka installer", k=1)[0].citation.startswith("guide.md")
    assert library.search("zebra8", k=1)[0].citation == "new.pdf, p. 2"
    assert_consistent(library)

    # rename: same content under a new name, old name gone, vectors reused
    files["pdf"].rename(docs / "renamed.pdf")
    renamed, _ = run_index(library)
    assert renamed.removed == 1 and renamed.indexed == 1
    assert renamed.chunks_reused == renamed.chunks_added > 0
    assert "report.pdf" not in paths_in_index(library)
    assert library.search("zebra3", k=1)[0].citation == "renamed.pdf, p. 3"
    assert_consistent(library)


def test_exclude_globs_and_defaults(library: DocumentLibrary, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_good_files(docs)
    (docs / "drafts").mkdir()
    (docs / "drafts" / "draft.md").write_text("# Draft\n\nThe walrus plan.\n")
    (docs / "node_modules" / "pkg").mkdir(parents=True)
    (docs / "node_modules" / "pkg" / "readme.md").write_text("# Pkg\n\nThe walrus package.\n")
    (docs / "notes.log").write_text("walrus log line\n")
    library.add_collection("docs", [docs], excludes=["drafts/", "*.log"])

    run_index(library)

    indexed = paths_in_index(library)
    assert {"draft.md", "readme.md", "notes.log"}.isdisjoint(indexed)
    health = {Path(h.path).name: h for h in library.file_health("docs")}
    assert health["notes.log"].state == "excluded" and "*.log" in health["notes.log"].reason
    assert health["drafts"].state == "excluded"
    assert not any("walrus" in p.text for p in library.search("walrus", k=20))

    # a new exclude removes what was indexed under it
    library.update_collection("docs", excludes=["drafts/", "*.log", "*.py"])
    summary, _ = run_index(library)
    assert summary.removed == 1
    assert "module.py" not in paths_in_index(library)
    assert_consistent(library)


def test_bad_files_are_listed_with_reasons(library: DocumentLibrary, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_bad_files(docs / "bad")
    write_text_pdf(docs / "good.pdf", [page_text(1)])
    library.add_collection("docs", [docs])

    summary, events = run_index(library)

    failed = {Path(e.path).name: e for e in events if isinstance(e, FileFailed)}
    assert summary.indexed == 1
    assert failed["secret.pdf"].state == "encrypted"
    assert failed["scan.pdf"].state == "no_text"
    assert failed["empty.txt"].state == "no_text"
    assert failed["photo.txt"].state == "binary"
    assert failed["broken.pdf"].state == "failed"
    assert failed["truncated.pdf"].state == "failed"
    assert all(e.reason for e in failed.values())
    health = {Path(h.path).name: h for h in library.file_health("docs")}
    assert "password" in health["secret.pdf"].reason
    assert health["good.pdf"].state == "indexed"
    assert_consistent(library)

    # Nothing to read (an image, an empty file, a scan without text) is
    # skipped, not failed; the files Footnote should read and could not are.
    assert summary.skipped == 3
    assert summary.failed == 3  # secret.pdf, broken.pdf, truncated.pdf

    # failures are settled: not retried until the user asks (or the file changes)
    assert run_index(library)[0].failed == 0
    assert library.retry_failed("docs") == 4  # those and pipe.txt; not the skipped ones
    again = run_index(library)[0]
    assert again.failed == summary.failed and again.skipped == 0


def test_file_with_undecodable_name(library: DocumentLibrary, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    name = os.fsdecode(b"caf\xe9.md")
    (docs / name).write_text("# Menu\n\nThe ocelot espresso is strong.\n")
    library.add_collection("docs", [docs])

    summary, _ = run_index(library)

    assert summary.indexed == 1
    hit = library.search("ocelot espresso", k=1)[0]
    assert hit.locator.path == str(docs / name)  # opens the real file
    assert Path(hit.locator.path or "").read_text().startswith("# Menu")
    assert_consistent(library)


def test_cancel_then_resume(tmp_path: Path, embedder: Embedder) -> None:
    # small batches: each file is written (and can be cancelled after) on its own
    library = DocumentLibrary(tmp_path / "index", lambda: embedder, flush_chunks=2)
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        write_text_pdf(docs / f"r{n}.pdf", [page_text(n * 10 + p) for p in range(1, 4)])
    library.add_collection("docs", [docs])
    cancel = threading.Event()
    done = []
    for event in library.index("docs", cancel):
        if isinstance(event, FileIndexed):
            done.append(event.path)
            cancel.set()
        if isinstance(event, IngestFinished):
            assert event.summary.cancelled
    assert 1 <= len(done) < 6

    summary, _ = run_index(library)
    assert summary.indexed == 6 - len(done)
    assert set(states(library).values()) == {"indexed"}
    assert_consistent(library)
    library.close()


def test_remove_collection_keeps_files(library: DocumentLibrary, tmp_path: Path) -> None:
    files = write_good_files(tmp_path / "docs")
    library.add_collection("docs", [tmp_path / "docs"])
    run_index(library)
    library.remove_collection("docs")
    assert library.collections() == []
    assert all(p.exists() for p in files.values())
    assert library._vectors.names() == []
    assert library.search("zebra2") == []  # no collection left to search


def test_collections_report_counts(library: DocumentLibrary, tmp_path: Path) -> None:
    write_good_files(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    library.add_collection("a", [tmp_path / "a"])
    library.add_collection("b", [tmp_path / "b"])
    list(library.index(None, threading.Event()))
    infos = {i.name: i for i in library.collections()}
    assert infos["a"].files == infos["b"].files == 7
    assert infos["a"].states == {"indexed": 7}
    assert infos["a"].chunks == infos["b"].chunks > 0
    only_b = library.search("zebra1", ["b"], k=3)
    assert all("/b/" in (p.locator.path or "") for p in only_b)
