"""Opening a source: a PDF at the cited page where the viewer can be told
(the commands are checked, no viewer is started), and a sentence whenever
nothing could open it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices

from app.widgets.pdf_viewer import Viewer, default_pdf_viewer, page_command, parse_desktop_entry
from app.widgets.sources_panel import open_source
from engine.passages import SourcePassage

PDF = "/home/ana/Papers/report 2024.pdf"


def viewer(exec_line: str, name: str = "Viewer") -> Viewer:
    parsed = parse_desktop_entry(f"[Desktop Entry]\nName={name}\nExec={exec_line}\n", "x.desktop")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("exec_line", "expected"),
    [
        ("evince %U", ["evince", "--page-index=4", PDF]),
        ("/usr/bin/okular %U", ["/usr/bin/okular", "--page", "4", PDF]),
        ("zathura %U", ["zathura", "--page=4", PDF]),
        ("atril %U", ["atril", "--page-index=4", PDF]),
        (
            "env GDK_BACKEND=x11 evince %U",
            ["env", "GDK_BACKEND=x11", "evince", "--page-index=4", PDF],
        ),
        (
            "/usr/lib/firefox/firefox --new-window %u",
            ["/usr/lib/firefox/firefox", "file:///home/ana/Papers/report%202024.pdf#page=4"],
        ),
        ("chromium %U", ["chromium", "file:///home/ana/Papers/report%202024.pdf#page=4"]),
    ],
)
def test_known_viewers_are_told_the_page(exec_line: str, expected: list[str]) -> None:
    assert page_command(viewer(exec_line), PDF, 4) == expected


@pytest.mark.parametrize(
    "exec_line",
    [
        "xournalpp %f",  # no page option known
        "/usr/bin/flatpak run --branch=stable --command=evince org.gnome.Evince @@u %U @@",
    ],
)
def test_other_viewers_get_no_page_command(exec_line: str) -> None:
    assert page_command(viewer(exec_line), PDF, 4) is None


def test_the_desktop_entry_is_read_from_its_own_group() -> None:
    text = (
        "[Desktop Entry]\nName=Document Viewer\nName[de]=Dokumentenbetrachter\n"
        'Exec="/opt/my viewer/evince" %U\n\n'
        "[Desktop Action new-window]\nExec=evince --new-window\n"
    )
    found = parse_desktop_entry(text, "org.gnome.Evince.desktop")
    assert found == Viewer(
        "org.gnome.Evince.desktop", "Document Viewer", ("/opt/my viewer/evince",)
    )
    assert found.program == "evince"
    assert parse_desktop_entry("[Desktop Entry]\nName=Broken\n", "b.desktop") is None


def test_the_default_pdf_viewer_comes_from_xdg_mime_and_its_desktop_file(tmp_path: Path) -> None:
    apps = tmp_path / "applications"
    (apps / "kde4").mkdir(parents=True)
    (apps / "org.gnome.Evince.desktop").write_text("[Desktop Entry]\nName=Evince\nExec=evince %U\n")
    (apps / "kde4" / "okular.desktop").write_text("[Desktop Entry]\nName=Okular\nExec=okular %U\n")
    asked: list[list[str]] = []

    def answer(with_id: str):
        def run(command: list[str]) -> str:
            asked.append(command)
            return with_id

        return run

    found = default_pdf_viewer(answer("org.gnome.Evince.desktop\n"), [apps])
    assert found is not None and found.program == "evince" and found.name == "Evince"
    assert asked[0] == ["xdg-mime", "query", "default", "application/pdf"]
    found = default_pdf_viewer(answer("kde4-okular.desktop\n"), [apps])
    assert found is not None and found.program == "okular"
    assert default_pdf_viewer(answer(""), [apps]) is None  # no default set
    assert default_pdf_viewer(answer("gone.desktop\n"), [apps]) is None

    def missing(_command: list[str]) -> str:
        raise FileNotFoundError("xdg-mime")

    assert default_pdf_viewer(missing, [apps]) is None  # no xdg-utils


@pytest.fixture
def pdf_source(tmp_path: Path) -> SourcePassage:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    return SourcePassage("…", "report.pdf p. 7", "document", {"path": str(path), "page": 7})


def test_a_pdf_opens_at_its_page_when_the_viewer_takes_one(pdf_source: SourcePassage) -> None:
    launched: list[list[str]] = []
    opened: list[QUrl] = []
    outcome = open_source(
        pdf_source,
        platform="linux",
        viewer=lambda: viewer("evince %U", "Document Viewer"),
        launch=lambda command: launched.append(command) or True,
        open_url=lambda url: opened.append(url) or True,
    )
    path = pdf_source.location["path"]
    assert launched == [["evince", "--page-index=7", path]] and not opened
    assert outcome.ok and outcome.message == "Opened report.pdf at page 7 in Document Viewer."


def test_a_pdf_opens_normally_and_says_the_page_otherwise(pdf_source: SourcePassage) -> None:
    opened: list[QUrl] = []
    for found, started in (
        (viewer("xournalpp %f"), True),
        (viewer("evince %U"), False),
        (None, True),
    ):
        outcome = open_source(
            pdf_source,
            platform="linux",
            viewer=lambda found=found: found,
            launch=lambda _command, started=started: started,
            open_url=lambda url: opened.append(url) or True,
        )
        assert outcome.ok
        assert "cannot be told the page, so go to page 7" in outcome.message
    assert [u.toLocalFile() for u in opened] == [pdf_source.location["path"]] * 3


def test_nothing_that_could_open_a_source_is_said(pdf_source: SourcePassage) -> None:
    outcome = open_source(pdf_source, platform="darwin", open_url=lambda _url: False)
    assert not outcome.ok
    assert outcome.message.startswith("No program on this computer could open report.pdf")
    gone = SourcePassage("…", "old.md", "document", {"path": "/nowhere/old.md"})
    outcome = open_source(gone, open_url=lambda _url: True)
    assert not outcome.ok and "is no longer at /nowhere/old.md" in outcome.message
    web = SourcePassage("…", "Example", "web", {"url": "https://example.org/a"})
    outcome = open_source(web, open_url=lambda _url: False)
    assert not outcome.ok and "No web browser could be started" in outcome.message


def test_the_window_says_when_a_source_cannot_be_opened(
    qtbot, open_window, pdf_source: SourcePassage, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = open_window()
    monkeypatch.setattr("app.widgets.sources_panel._pdf_viewer", lambda: None)  # no real viewer
    results = iter([False, True])
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: next(results)))
    answer = window.chat.add_message("assistant", "It is on page 7 [1].", sources=[pdf_source])
    row = answer.sources_panel.rows[0]

    qtbot.mouseClick(row, Qt.MouseButton.LeftButton)  # before: nothing happened, nothing said
    assert "No program on this computer could open report.pdf" in window.banner.text()
    window.banner.hide()
    qtbot.mouseClick(row, Qt.MouseButton.LeftButton)
    assert "go to page 7" in window.statusBar().currentMessage()
    assert not window.banner.isVisible()
