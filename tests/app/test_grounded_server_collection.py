"""A conversation grounded on a collection that lives on a real Chroma
server (``chroma run`` on 127.0.0.1), in the real window with the tiny
Phi-3 on real llama.cpp: the composer's chooser lists it beside this
computer's collections, and a turn limited to it cites its passage (and
only its), the question written to the privacy ledger first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.paths import AppPaths
from app.widgets.server_collection_dialog import ServerCollectionForm
from app.wiring.grounding import ledger_path
from app.wiring.libraries import open_library
from engine.events import Progress
from retrieval.source_decision import SourceMode
from retrieval.web.ledger import Ledger
from tests.app.conftest import close, wait_for_answer, wait_for_model
from tests.app.test_documents_page import wait_idle
from tests.chroma_server import RunningChroma, running_chroma

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

QUESTION = "What is the travel budget of the team?"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture
def team_server(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[RunningChroma, Path]]:
    """A server holding "team-docs": the team's budget plan."""
    from retrieval.documents import DocumentLibrary

    share = tmp_path / "share"
    share.mkdir()
    (share / "plan.md").write_text(
        "# Budget\n\nThe 2025 travel budget of the team is 12,400 euros, approved in March.\n"
    )
    with running_chroma(tmp_path / "server") as server:
        indexer = DocumentLibrary(tmp_path / "indexer", lambda: embedder)
        try:
            list(indexer.servers.index(server.url, "team-docs", [share], threading.Event()))
        finally:
            indexer.close()
        yield server, share


@pytest.fixture
def window(
    qtbot,
    qapp: QApplication,
    paths: AppPaths,
    embedder: Embedder,
    configure,
    tiny_model: Path,
) -> Iterator[MainWindow]:
    configure_application(qapp)
    configure(model_path=str(tiny_model))
    shown = build_main_window(paths, open_documents=lambda: open_library(paths, lambda: embedder))
    qtbot.addWidget(shown)
    shown.show()
    wait_for_model(qtbot, shown)
    yield shown
    close(shown)


def test_the_chooser_lists_a_server_collection_and_a_turn_on_it_alone_cites_it(
    qtbot,
    window: MainWindow,
    team_server: tuple[RunningChroma, Path],
    tmp_path: Path,
    paths: AppPaths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, share = team_server
    # This computer's own collection, which also speaks of a travel budget.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text(
        "# Trips\n\nMy own travel budget for the team offsite is 300 euros.\n"
    )
    controller = window.documents_controller
    controller.add_paths([mine], "mine")
    controller.add_server_collection(ServerCollectionForm(server.url, "team-docs", "Team", ()))
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: {"mine", "Team"} <= set(controller.collection_names()))
    window._show_home_page()

    chooser = window.composer.collections_chooser
    qtbot.waitUntil(lambda: {"mine", "Team"} <= set(chooser._names), timeout=TIMEOUT_MS)
    listed = [a.text() for a in chooser.menu().actions()]
    assert "Team" in listed and "mine" in listed
    chooser.choose_mode(SourceMode.ALWAYS)  # the tiny model's answer is not the point
    chooser.toggle_collection("mine")  # leave this computer's out: the server's alone
    assert chooser.chosen == ("Team",)

    statuses: list[str] = []
    window.engine.turn_event.connect(
        lambda _id, event: statuses.append(event.text) if isinstance(event, Progress) else None
    )
    window.send(QUESTION)
    wait_for_answer(qtbot, window)

    assert "Looking in your documents…" in statuses
    answer = window.chat.bubbles()[-1]
    panel = answer.sources_panel
    assert panel is not None and len(panel.rows) == 1
    row = panel.rows[0].text()
    assert "[1]" in row and "plan.md" in row and "12,400 euros" in row
    assert "300 euros" not in row and "notes.md" not in row
    assert window.store.conversation_options(window.conversation_id)["collections"] == ["Team"]
    entries = Ledger(ledger_path(paths.data)).entries()
    assert [e.provider for e in entries] == [f"Chroma server {server.url}"]
    assert entries[0].text == QUESTION

    # The file is reachable here at the path the server recorded: the row opens it.
    opened: list[QUrl] = []
    monkeypatch.setattr(
        QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(QUrl(url)) or True)
    )
    qtbot.mouseClick(panel.rows[0], Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in opened] == [str(share / "plan.md")]
