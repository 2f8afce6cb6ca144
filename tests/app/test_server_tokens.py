"""Access tokens per Chroma server: typed in Add a server collection…, kept
in the system keyring under that server's address (never in a file), sent
to that server only; with no keyring, used this session only and the banner
says so. The server is a real ``chroma run`` behind a small proxy on
127.0.0.1 that wants a token (``chroma run`` itself has no auth)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.paths import AppPaths
from app.widgets.server_collection_dialog import ServerCollectionDialog, ServerCollectionForm
from app.wiring.chroma_tokens import (
    CHROMA_TOKEN_ENV,
    KEYRING_SERVICE,
    NO_KEYRING_TEXT,
    chroma_token,
    save_chroma_token,
)
from app.wiring.libraries import open_library
from retrieval.errors import ServerDenied
from tests.app.conftest import close
from tests.chroma_server import RunningChroma, running_chroma, token_proxy
from tests.engine.test_server_key import MemoryKeyring

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

TIMEOUT_MS = 60_000
TOKEN = "s3cret-team-token"
POLICY = "Train tickets over 200 euros need the heron form, signed by a team lead.\n"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[RunningChroma]:
    from retrieval.documents import DocumentLibrary

    work = tmp_path_factory.mktemp("chroma")
    (work / "share").mkdir()
    (work / "share" / "travel.md").write_text(f"# Travel\n\n{POLICY}")
    with running_chroma(work / "server") as server:
        library = DocumentLibrary(work / "indexer", lambda: embedder)
        try:
            list(
                library.servers.index(server.url, "team-docs", [work / "share"], threading.Event())
            )
        finally:
            library.close()
        yield server


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


@pytest.fixture
def window(qtbot, qapp: QApplication, paths: AppPaths, embedder: Embedder) -> Iterator[MainWindow]:
    configure_application(qapp)
    shown = build_main_window(paths, open_documents=lambda: open_library(paths, lambda: embedder))
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    close(shown)


def _names(window: MainWindow) -> list[str]:
    return [row[0] for row in window.documents_page.collection_rows()]


def test_each_server_has_its_own_token_and_the_variable_covers_the_others(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CHROMA_TOKEN_ENV, raising=False)
    assert save_chroma_token("team-box:8000", "alpha") is None
    assert memory_keyring.entries == {(KEYRING_SERVICE, "http://team-box:8000"): "alpha"}
    assert chroma_token("http://team-box:8000/") == "alpha"
    assert chroma_token("http://other-box:8000") is None
    monkeypatch.setenv(CHROMA_TOKEN_ENV, "shared")
    assert chroma_token("http://other-box:8000") == "shared"
    assert chroma_token("http://team-box:8000") == "alpha"  # its own wins
    assert save_chroma_token("http://team-box:8000", "") is None  # empty: removed
    assert chroma_token("http://team-box:8000") == "shared"


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_a_token_is_not_kept_and_says_why_in_one_sentence() -> None:
    told = save_chroma_token("http://team-box:8000", "alpha")
    assert told == NO_KEYRING_TEXT
    assert told.count(". ") == 0 and "never written to a file" in told
    assert chroma_token("http://team-box:8000") is None


def test_the_dialog_takes_a_token_that_no_repr_shows(qtbot) -> None:
    dialog = ServerCollectionDialog()
    qtbot.addWidget(dialog)
    dialog.url.setText("team-box:8000")
    dialog.remote_name.setText("team-docs")
    dialog.token.setText(f" {TOKEN} ")
    form = dialog.form()
    assert form.token == TOKEN
    assert TOKEN not in repr(form)


def test_a_token_typed_when_adding_is_kept_in_the_keyring_and_sent_to_that_server(
    qtbot,
    window: MainWindow,
    chroma: RunningChroma,
    memory_keyring: MemoryKeyring,
    paths: AppPaths,
    embedder: Embedder,
) -> None:
    controller = window.documents_controller
    window.show_documents()
    with token_proxy(chroma.url, TOKEN) as (guarded, seen):
        controller.add_server_collection(ServerCollectionForm(guarded, "team-docs", "Locked", ()))
        qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT_MS)
        assert "refused access (HTTP 401)" in window.banner.text()
        assert "Locked" not in _names(window)

        controller.add_server_collection(
            ServerCollectionForm(guarded, "team-docs", "Team", (), token=TOKEN)
        )
        qtbot.waitUntil(lambda: "Team" in _names(window), timeout=TIMEOUT_MS)
        assert memory_keyring.entries == {(KEYRING_SERVICE, guarded): TOKEN}
        found = controller.library.search("heron form for train tickets", ["Team"], k=1)
        assert found and "heron form" in found[0].text
        assert seen[0] is None and seen[-1] == f"Bearer {TOKEN}"

        # Started again: the token comes from the keyring.
        later = open_library(paths, lambda: embedder)
        try:
            assert later.servers.check("Team").chunks == 1
        finally:
            later.close()


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_the_token_works_this_session_and_the_banner_says_so(
    qtbot, window: MainWindow, chroma: RunningChroma, paths: AppPaths, embedder: Embedder
) -> None:
    controller = window.documents_controller
    window.show_documents()
    with token_proxy(chroma.url, TOKEN) as (guarded, _seen):
        controller.add_server_collection(
            ServerCollectionForm(guarded, "team-docs", "Team", (), token=TOKEN)
        )
        qtbot.waitUntil(lambda: "Team" in _names(window), timeout=TIMEOUT_MS)
        assert window.banner.text() == NO_KEYRING_TEXT
        found = controller.library.search("heron form for train tickets", ["Team"], k=1)
        assert found and "heron form" in found[0].text

        later = open_library(paths, lambda: embedder)  # the next session has no token
        try:
            with pytest.raises(ServerDenied):
                later.servers.check("Team")
        finally:
            later.close()
