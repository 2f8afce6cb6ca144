"""The Documents page on the real window: real files (PDF, DOCX, Markdown, a
corrupt PDF), the real MiniLM embedder, real chromadb and SQLite in the
sandboxed FOOTNOTE_HOME, real folder watchers. Every wait is on a condition."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.pages.documents import problem_color
from app.paths import AppPaths
from app.workers.documents import TaskEvent
from retrieval.ingest_events import FileFailed, FileIndexed, IngestProgress
from tests.app.conftest import close
from tests.app.test_main_window import drop_file
from tests.retrieval.make_files import MARKDOWN, page_text, write_docx, write_text_pdf

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

INDEX_TIMEOUT_MS = 120_000  # the first run imports torch and chromadb on 2 cores


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the offline package, loaded once per session."""
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture
def docs_window(
    qtbot, qapp: QApplication, paths: AppPaths, embedder: Embedder
) -> Iterator[Callable[[], MainWindow]]:
    """The app's window, its document library sharing the session's embedder."""
    from retrieval.documents import DocumentLibrary

    configure_application(qapp)
    opened: list[MainWindow] = []

    def start() -> MainWindow:
        window = build_main_window(
            paths, open_documents=lambda: DocumentLibrary(paths.documents, lambda: embedder)
        )
        qtbot.addWidget(window)
        window.show()
        opened.append(window)
        return window

    yield start
    for window in opened:
        close(window)


def write_documents(folder: Path) -> Path:
    """Tiny documents of each kind (embedding is slow here) and a corrupt PDF."""
    folder.mkdir(parents=True)
    write_text_pdf(folder / "report.pdf", [page_text(1, words=40), page_text(2, words=40)])
    write_docx(folder / "quarterly.docx")
    (folder / "guide.md").write_text(MARKDOWN)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    return folder


def wait_idle(qtbot, window: MainWindow) -> None:
    """Until no document work is running or queued and the page was read back."""
    controller = window.documents_controller
    qtbot.waitUntil(
        lambda: not controller.busy and controller._reader.current is None,
        timeout=INDEX_TIMEOUT_MS,
    )
    qtbot.waitUntil(lambda: not controller._reader.pending, timeout=10_000)


def file_states(window: MainWindow) -> dict[str, tuple[str, str]]:
    return {name: (state, why) for name, state, why in window.documents_page.file_rows()}


def test_dropped_folder_is_indexed_with_progress_and_the_failed_file_has_its_reason(
    qtbot, docs_window, tmp_path
) -> None:
    folder = write_documents(tmp_path / "Reports")
    window = docs_window()
    page, controller = window.documents_page, window.documents_controller
    window.show_documents()
    assert page.empty.isVisible()
    assert "Drop folders here" in page.empty.text()

    progress_rows: list[list[tuple[str, str, str, str]]] = []
    status_texts: list[str] = []

    def on_event(item: TaskEvent) -> None:
        if isinstance(item.event, IngestProgress) and item.event.files_total:
            progress_rows.append(page.collection_rows())
            status_texts.append(window.indexing_label.text())

    controller._writer.progressed.connect(on_event)
    drop_file(window, folder)
    assert window.pages.currentWidget() is page
    wait_idle(qtbot, window)

    # Progress was shown while it ran: on the page and in the status bar.
    assert progress_rows, "no progress was shown"
    assert any("/ 4 files" in rows[0][3] for rows in progress_rows), progress_rows
    assert any(text.startswith("Indexing ") and "/4 files" in text for text in status_texts)
    assert not window.indexing_label.isVisible()

    [(name, files, passages, state)] = page.collection_rows()
    assert (name, files, state) == ("Reports", "3", "1 failed")
    assert int(passages) >= 3
    states = file_states(window)
    assert states["report.pdf"][0] == "Indexed"
    assert states["quarterly.docx"][0] == "Indexed"
    assert states["guide.md"][0] == "Indexed"
    broken_state, broken_why = states["broken.pdf"]
    assert broken_state == "Failed"
    assert "broken.pdf" in broken_why
    page.problems_only.setChecked(True)
    assert [row[0] for row in page.file_rows()] == ["broken.pdf"]
    page.problems_only.setChecked(False)
    assert controller.collection_names() == ["Reports"]

    # An incremental run leaves the failed file alone; Retry failed reads it again.
    failed_paths: list[str] = []
    controller._writer.progressed.connect(
        lambda item: (
            failed_paths.append(Path(item.event.path).name)
            if isinstance(item.event, FileFailed)
            else None
        )
    )
    controller.index("Reports")
    wait_idle(qtbot, window)
    assert failed_paths == []
    assert page.retry_button.isEnabled()
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert failed_paths == ["broken.pdf"]
    assert page.collection_rows()[0][3] == "1 failed"

    # A new exclude pattern takes the Markdown file out of the index.
    controller.set_excludes("Reports", ["*.md"])
    wait_idle(qtbot, window)
    guide_state, guide_why = file_states(window)["guide.md"]
    assert guide_state == "Excluded"
    assert "*.md" in guide_why
    assert page.collection_rows()[0][1] == "2"
    assert all(
        Path(p.locator.path).name != "guide.md" for p in controller.library.search("Wayland")
    )

    # Remove asks first; No keeps everything.
    asked: list[str] = []
    window.confirm = lambda title, text: asked.append(text) is not None  # type: ignore[method-assign]
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert "your files are not touched" in asked[0]
    wait_idle(qtbot, window)
    assert controller.collection_names() == ["Reports"]
    window.confirm = lambda title, text: True  # type: ignore[method-assign]
    changed: list[bool] = []
    controller.collections_changed.connect(lambda: changed.append(True))
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert controller.collection_names() == []
    assert changed
    assert page.empty.isVisible()
    assert controller.library.collections() == []
    # The files themselves are untouched.
    assert sorted(p.name for p in folder.iterdir()) == [
        "broken.pdf",
        "guide.md",
        "quarterly.docx",
        "report.pdf",
    ]


def test_the_watcher_indexes_a_file_added_while_the_app_runs(qtbot, docs_window, tmp_path) -> None:
    folder = tmp_path / "Notes"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nThe first note is about apples.\n")
    window = docs_window()
    name = window.add_documents([folder])
    assert name == "Notes"
    wait_idle(qtbot, window)
    controller = window.documents_controller
    qtbot.waitUntil(lambda: controller.watching(name), timeout=10_000)

    (folder / "second.md").write_text("# Second\n\nThe second note is about pears.\n")
    (folder / ".hidden.md").write_text("# Hidden\n\nExcluded by the default patterns.\n")
    qtbot.waitUntil(
        lambda: file_states(window).get("second.md", ("",))[0] == "Indexed",
        timeout=INDEX_TIMEOUT_MS,
    )
    wait_idle(qtbot, window)
    assert window.documents_page.collection_rows()[0][1] == "2"
    assert file_states(window)[".hidden.md"][0] == "Excluded"
    hits = controller.library.search("pears")
    assert hits and Path(hits[0].locator.path).name == "second.md"


def test_a_second_collection_from_the_same_folder_name_gets_a_unique_name(
    qtbot, docs_window, tmp_path
) -> None:
    window = docs_window()
    first = tmp_path / "a" / "Notes"
    second = tmp_path / "b" / "Notes"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "note.md").write_text("# Note\n\nA short note.\n")
    assert window.add_documents([first]) == "Notes"
    assert window.add_documents([second]) == "Notes 2"
    wait_idle(qtbot, window)
    assert window.documents_controller.collection_names() == ["Notes", "Notes 2"]


def test_closing_mid_indexing_exits_cleanly_and_the_next_start_finishes(
    qtbot, docs_window, tmp_path
) -> None:
    folder = tmp_path / "Many"
    folder.mkdir()
    for n in range(8):
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\n{page_text(n, words=150)}\n")
    window = docs_window()
    closed_at: list[IngestProgress] = []

    def close_on_progress(item: TaskEvent) -> None:
        event = item.event
        if isinstance(event, IngestProgress) and event.files_total and not closed_at:
            closed_at.append(event)
            window.close()

    window.documents_controller._writer.progressed.connect(close_on_progress)
    window.add_documents([folder])
    qtbot.waitUntil(lambda: bool(closed_at), timeout=INDEX_TIMEOUT_MS)
    close(window)
    assert window.jobs.keys() == []
    assert not window.documents_controller._watchers
    assert closed_at[0].files_done < closed_at[0].files_total

    # The next start rescans (a few seconds after the window shows) and finishes.
    again = docs_window()
    rows = again.documents_page.collection_rows
    qtbot.waitUntil(
        lambda: bool(rows()) and rows()[0][1] == "8" and not again.documents_controller.busy,
        timeout=INDEX_TIMEOUT_MS,
    )
    wait_idle(qtbot, again)
    [(_name, files, _passages, state)] = again.documents_page.collection_rows()
    assert (files, state) == ("8", "Up to date")


def test_skipped_files_are_apart_from_failed_ones_and_states_show_while_indexing(
    qtbot, docs_window, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image and an empty file are skipped, not failed; files turn
    "Indexed" and the count grows during the run, not only at its end; and
    after "Only problems" is switched off no indexed file stays red."""
    folder = tmp_path / "Mixed"
    folder.mkdir()
    (folder / "guide.md").write_text(MARKDOWN)
    (folder / "budget.md").write_text("# Budget\n\nThe heron budget doubled.\n")
    (folder / "empty.md").write_text("")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (folder / "zz-broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    window = docs_window()
    page, controller = window.documents_page, window.documents_controller
    window.show_documents()

    # Hold the run after its first indexed file, until the page has shown it.
    library = controller.library
    real_index = library.index
    held = threading.Event()

    def held_index(name: str | None, cancel: threading.Event) -> Iterator[object]:
        for event in real_index(name, cancel):
            yield event
            if isinstance(event, FileIndexed):
                held.wait(60)

    monkeypatch.setattr(library, "index", held_index)
    controller.add_paths([folder])
    try:
        qtbot.waitUntil(
            lambda: any(state == "Indexed" for _, state, _ in page.file_rows()),
            timeout=INDEX_TIMEOUT_MS,
        )
        assert controller.busy  # shown during the run
        indexed_now = sum(state == "Indexed" for _, state, _ in page.file_rows())
        assert page.collection_rows()[0][1] == str(indexed_now)  # the count, live
    finally:
        held.set()
    wait_idle(qtbot, window)

    [(_, files, _, state)] = page.collection_rows()
    assert (files, state) == ("2", "1 failed, 2 skipped")
    states = file_states(window)
    assert states["photo.png"][0] == "Skipped: file type"
    assert ".png" in states["photo.png"][1]
    assert states["empty.md"][0] == "Skipped: no text"
    assert states["zz-broken.pdf"][0] == "Failed"
    assert page.retry_button.isEnabled()

    def colours() -> dict[str, QColor]:
        return {
            page.files.item(row, 0).text(): page.files.item(row, 1).foreground().color()
            for row in range(page.files.rowCount())
        }

    # (the failed file sorts last: under "Only problems" it is row 0, where
    # an indexed file is once the filter is off)
    red = problem_color()
    assert colours()["zz-broken.pdf"] == red
    page.problems_only.setChecked(True)
    assert [row[0] for row in page.file_rows()] == ["zz-broken.pdf"]
    page.problems_only.setChecked(False)
    after = colours()
    assert after["zz-broken.pdf"] == red
    assert [name for name, colour in after.items() if colour == red] == ["zz-broken.pdf"]
