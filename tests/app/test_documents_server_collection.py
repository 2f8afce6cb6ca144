"""A collection on a real Chroma server (``chroma run`` on 127.0.0.1) in the
real window: added from the Documents page, shown with where it lives,
searched by the grounding like any collection (and written to the privacy
ledger), never while reading ahead, refused when another embedding model
built it, and forgotten here by Remove."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.paths import AppPaths
from app.widgets.server_collection_dialog import ServerCollectionDialog, ServerCollectionForm
from app.wiring.grounding import GroundingChoice, GroundingSource, ledger_path
from app.wiring.libraries import open_library
from engine.context import ContextRequest
from retrieval.chroma_server import ChromaServer
from retrieval.web.ledger import Ledger
from tests.app.conftest import close
from tests.chroma_server import RunningChroma, running_chroma

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

TIMEOUT_MS = 60_000
POLICY = "Train tickets over 200 euros need the heron form, signed by a team lead.\n"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[RunningChroma]:
    """A server holding "team-docs" (one policy file, indexed from /srv-like
    folder) and "other-model" (built, it says, by another embedder)."""
    from retrieval.documents import DocumentLibrary

    work = tmp_path_factory.mktemp("chroma")
    share = work / "share"
    share.mkdir()
    (share / "travel.md").write_text(f"# Travel\n\n## Expenses\n\n{POLICY}")
    with running_chroma(work / "server") as server:
        library = DocumentLibrary(work / "indexer", lambda: embedder)
        try:
            list(library.servers.index(server.url, "team-docs", [share], threading.Event()))
        finally:
            library.close()
        with ChromaServer(server.url) as client:
            client.create_collection(
                "other-model", {"hnsw:space": "cosine", "footnote:embedder": "e5@1"}
            )
        yield server


@pytest.fixture
def window(qtbot, qapp: QApplication, paths: AppPaths, embedder: Embedder) -> Iterator[MainWindow]:
    """The app's window; its library opened as the app opens it (ledger,
    token), sharing the module's embedder."""
    configure_application(qapp)
    shown = build_main_window(paths, open_documents=lambda: open_library(paths, lambda: embedder))
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    close(shown)


def _rows(window: MainWindow) -> dict[str, tuple[str, str, str]]:
    return {n: (f, p, s) for n, f, p, s in window.documents_page.collection_rows()}


def test_the_dialog_checks_what_was_typed(qtbot) -> None:
    dialog = ServerCollectionDialog()
    qtbot.addWidget(dialog)
    dialog.url.setText("team-server:8000")
    dialog.remote_name.setText("team-docs")
    dialog.path_map.setPlainText("/srv/share=/Volumes/share\n")
    assert dialog.form() == ServerCollectionForm(
        "http://team-server:8000", "team-docs", "team-docs", (("/srv/share", "/Volumes/share"),)
    )
    dialog.path_map.setPlainText("/srv/share")
    dialog.accept()  # not closed: the error says how to write it
    assert dialog.result() != ServerCollectionDialog.DialogCode.Accepted
    assert "SERVER_PREFIX=LOCAL_PREFIX" in dialog.error.text()


def test_a_server_collection_is_added_shown_searched_and_removed(
    qtbot, window: MainWindow, chroma: RunningChroma, paths: AppPaths
) -> None:
    page, controller = window.documents_page, window.documents_controller
    window.show_documents()
    controller.add_server_collection(
        ServerCollectionForm(chroma.url, "team-docs", "Team", (("/nowhere", "/elsewhere"),))
    )
    qtbot.waitUntil(lambda: "Team" in _rows(window), timeout=TIMEOUT_MS)
    assert _rows(window)["Team"] == ("", "1", f"On the server {chroma.url}")
    assert "Team" in controller.collection_names()
    page.collections.selectRow(list(_rows(window)).index("Team"))
    assert f"lives on {chroma.url}" in page.files_title.text()
    assert page.remove_button.isEnabled() and not page.excludes_button.isEnabled()

    # The grounding searches it as any collection, and the ledger says so first.
    library = controller.library
    source = GroundingSource(library, None, GroundingChoice(collections=("Team",)))
    found = _run(source, "Which form do I need for an expensive train ticket?")
    assert found and "heron form" in getattr(found[0], "text", "")
    entries = Ledger(ledger_path(paths.data)).entries()
    assert entries[0].provider == f"Chroma server {chroma.url}"
    assert entries[0].text == "Which form do I need for an expensive train ticket?"

    # Reading ahead (while the user types) never sends anything to a server.
    ahead = GroundingSource(library, None, GroundingChoice(collections=None, servers=False))
    assert _run(ahead, "Which form for an expensive train ticket, and who signs") == []
    assert len(Ledger(ledger_path(paths.data)).entries()) == 1

    # Remove forgets it here; the server keeps it.
    window.confirm = lambda title, text: True  # type: ignore[method-assign]
    controller.remove("Team")
    qtbot.waitUntil(lambda: "Team" not in _rows(window), timeout=TIMEOUT_MS)
    with ChromaServer(chroma.url) as client:
        assert client.collection("team-docs").count() == 1


def test_a_collection_of_another_embedding_model_is_refused_with_its_reason(
    qtbot, window: MainWindow, chroma: RunningChroma
) -> None:
    window.show_documents()
    window.documents_controller.add_server_collection(
        ServerCollectionForm(chroma.url, "other-model", "Other", ())
    )
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT_MS)
    assert "built with the embedding model e5@1" in window.banner.text()
    assert "Other" not in _rows(window)


def _run(source: GroundingSource, question: str) -> list[object]:
    generator = source(ContextRequest(question), threading.Event())
    try:
        while True:
            next(generator)
    except StopIteration as stop:
        return list(stop.value)


def test_unreachable_server_is_said_on_its_row(
    qtbot, window: MainWindow, tmp_path: Path, embedder: Embedder
) -> None:
    with running_chroma(tmp_path / "server") as server:
        (tmp_path / "share").mkdir()
        (tmp_path / "share" / "a.txt").write_text(POLICY)
        library = window.documents_controller.library
        list(library.servers.index(server.url, "brief", [tmp_path / "share"], threading.Event()))
        library.servers.add("Brief", server.url, "brief")
    window.documents_controller.recheck_servers()
    qtbot.waitUntil(
        lambda: _rows(window).get("Brief", ("", "", ""))[2].startswith("Not reachable"),
        timeout=TIMEOUT_MS,
    )


def test_a_server_passage_opens_its_mapped_file_or_is_shown_whole(qtbot, tmp_path: Path) -> None:
    from PySide6.QtCore import QUrl

    from app.widgets.sources_panel import SourcesPanel, open_source
    from engine.passages import SourcePassage

    long_text = "The heron form is signed by a team lead. " * 10
    here = tmp_path / "travel.md"
    here.write_text(long_text)
    opened: list[QUrl] = []

    def passage(path: str) -> SourcePassage:
        location = {"path": path, "heading_path": ["Travel"], "server": "http://team:8000"}
        return SourcePassage(long_text, "travel.md › Travel", "document", location)

    reachable = open_source(passage(str(here)), open_url=lambda url: opened.append(url) or True)
    assert reachable.ok and opened == [QUrl.fromLocalFile(str(here))]

    away = passage("/srv/share/travel.md")
    outcome = open_source(away, open_url=lambda url: opened.append(url) or True)
    assert not outcome.ok and outcome.show_passage and len(opened) == 1
    assert "indexed on http://team:8000" in outcome.message
    assert "cannot reach it at /srv/share/travel.md" in outcome.message
    panel = SourcesPanel([away])
    qtbot.addWidget(panel)
    assert panel.rows[0].text().count("heron form") < 10  # an excerpt first
    assert panel.open(1) is False
    assert panel.rows[0].text().count("heron form") == 10  # then the whole passage


def _events(source: GroundingSource, question: str) -> tuple[list[object], list[object]]:
    """(what the grounding yielded, the passages it returned)."""
    generator = source(ContextRequest(question), threading.Event())
    yielded: list[object] = []
    try:
        while True:
            yielded.append(next(generator))
    except StopIteration as stop:
        return yielded, list(stop.value)


def test_an_offline_copy_is_kept_answers_while_the_server_is_down_and_goes_when_off(
    qtbot, window: MainWindow, tmp_path: Path, embedder: Embedder, paths: AppPaths
) -> None:
    from engine.events import Notice

    page, controller = window.documents_page, window.documents_controller
    window.show_documents()
    with running_chroma(tmp_path / "server") as server:
        (tmp_path / "share").mkdir()
        (tmp_path / "share" / "travel.md").write_text(f"# Travel\n\n{POLICY}")
        library = controller.library
        list(
            library.servers.index(server.url, "crew-docs", [tmp_path / "share"], threading.Event())
        )
        controller.add_server_collection(
            ServerCollectionForm(server.url, "crew-docs", "Crew", (), offline_copy=True)
        )
        qtbot.waitUntil(
            lambda: "offline copy of 20" in _rows(window).get("Crew", ("", "", ""))[2],
            timeout=TIMEOUT_MS,
        )
        assert _rows(window)["Crew"][2].startswith(f"On the server {server.url} · offline copy")
        page.collections.selectRow(list(_rows(window)).index("Crew"))
        assert page.offline_button.isVisible() and page.offline_button.isChecked()
        assert page.path_map_button.isVisible() and not page.excludes_button.isVisible()
        state = page.collections.item(list(_rows(window)).index("Crew"), 3)
        assert state is not None and "offline copy (1 passages" in state.toolTip()
    # the server is down now
    source = GroundingSource(library, None, GroundingChoice(collections=("Crew",)))
    yielded, found = _events(source, "Which form do I need for an expensive train ticket?")
    assert found and "heron form" in getattr(found[0], "text", "")
    notices = [e.text for e in yielded if isinstance(e, Notice)]
    assert len(notices) == 1
    assert notices[0].startswith("“Crew” answered from this computer's offline copy of 20")
    assert "cannot reach the Chroma server" in notices[0]
    controller.refresh()
    qtbot.waitUntil(
        lambda: _rows(window)["Crew"][2].startswith("Not reachable: answers from the offline copy"),
        timeout=TIMEOUT_MS,
    )

    # Removing it would say the copy goes too (answered No here).
    asked: list[str] = []
    window.confirm = lambda title, text: asked.append(text) or False  # type: ignore[method-assign]
    controller.remove("Crew")
    assert asked and asked[0].endswith("this computer's offline copy of it is deleted.")

    # Off: the copy is deleted, and the row says nothing of a copy.
    page.collections.selectRow(list(_rows(window)).index("Crew"))
    page.offline_button.click()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: _rows(window)["Crew"][2] == f"Not reachable: {server.url}", timeout=TIMEOUT_MS
    )
    assert library.servers.copy_info("Crew") is None
    assert not page.offline_button.isChecked()


def test_the_path_mapping_is_edited_after_adding(
    qtbot, window: MainWindow, chroma: RunningChroma, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.widgets.server_collection_dialog import PathMapDialog

    page, controller = window.documents_page, window.documents_controller
    window.show_documents()
    controller.add_server_collection(
        ServerCollectionForm(chroma.url, "team-docs", "Mapped", (("/srv/a", "/mnt/a"),))
    )
    qtbot.waitUntil(lambda: "Mapped" in _rows(window), timeout=TIMEOUT_MS)
    page.collections.selectRow(list(_rows(window)).index("Mapped"))

    seen: list[str] = []

    def answer(dialog: PathMapDialog) -> int:
        seen.append(dialog.path_map.toPlainText())
        dialog.path_map.setPlainText("/srv/share=/Volumes/share\n/srv/b = /mnt/b\n")
        dialog.accept()
        return PathMapDialog.DialogCode.Accepted.value

    monkeypatch.setattr(PathMapDialog, "exec", answer)
    page.path_map_button.click()
    assert seen == ["/srv/a=/mnt/a\n"]  # the dialog opens with the mapping as it is
    qtbot.waitUntil(
        lambda: (
            (ref := controller.library.servers.find("Mapped")) is not None
            and ref.path_map == (("/srv/share", "/Volumes/share"), ("/srv/b", "/mnt/b"))
        ),
        timeout=TIMEOUT_MS,
    )
    dialog = PathMapDialog("Mapped", ())
    qtbot.addWidget(dialog)
    dialog.path_map.setPlainText("/srv/share")
    dialog.accept()  # not closed: the error says how to write it
    assert dialog.result() != PathMapDialog.DialogCode.Accepted
    assert "SERVER_PREFIX=LOCAL_PREFIX" in dialog.error.text()


def test_a_folder_is_indexed_into_a_server_collection_from_the_window(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    page, controller = window.documents_page, window.documents_controller
    window.show_documents()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "travel.md").write_text(f"# Travel\n\n{POLICY}")
    (second / "office.md").write_text("# Office\n\nThe office on Quay Street opens at eight.\n")
    with running_chroma(tmp_path / "server") as server:
        library = controller.library
        list(library.servers.index(server.url, "shared-docs", [first], threading.Event()))
        controller.add_server_collection(
            ServerCollectionForm(server.url, "shared-docs", "Shared", ())
        )
        qtbot.waitUntil(
            lambda: _rows(window).get("Shared", ("", "", ""))[1] == "1", timeout=TIMEOUT_MS
        )
        page.collections.selectRow(list(_rows(window)).index("Shared"))
        assert page.server_folder_button.isVisible()

        asked: list[str] = []

        def choose(_parent: object, caption: str, *args: object) -> str:
            asked.append(caption)
            return str(second)

        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
        page.server_folder_button.click()
        assert asked == [f"Choose a folder to index into “Shared” on {server.url}"]
        qtbot.waitUntil(lambda: _rows(window)["Shared"][1] == "2", timeout=TIMEOUT_MS)
        assert _rows(window)["Shared"][2] == f"On the server {server.url}"
        found = library.search("When does the office open?", ["Shared"], k=1)
        assert found and "Quay Street" in found[0].text
        assert found[0].locator.path == str(second / "office.md")
        assert library.collections() == []  # nothing of it indexed on this computer
