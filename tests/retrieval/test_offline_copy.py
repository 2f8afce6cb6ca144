"""An offline copy of a server collection (made only when the user asks),
against a real ``chroma run`` on 127.0.0.1: pulled as the server holds it,
refreshed only when the server's change marker moved, searched with the
same hybrid ranking when the server is down (saying from when), and gone
when the choice is turned off or the collection removed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.chroma_server import ChromaServer
from retrieval.errors import ServerDenied, ServerUnreachable
from retrieval.offline_copy import CopyFinished, CopyProgress
from retrieval.server_index import CHANGED_KEY
from tests.chroma_server import RunningChroma, running_chroma

if TYPE_CHECKING:
    from retrieval.documents import DocumentLibrary
    from retrieval.embedding import Embedder

NOTES = (
    "# Release checklist\n\n"
    "Before a release, run the frobnicator with --frob-level 3 and read its report.\n\n"
    "## Rollback\n\nIf the canary fails, roll back with the E4711 procedure.\n"
)
RECIPES = "Bake the bread at 220 degrees for forty minutes, then let it cool on a rack.\n"
QUESTION = "How do I roll back when the canary fails?"


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "release.md").write_text(NOTES)
    (folder / "notes" / "bread.txt").write_text(RECIPES)
    return folder


def _index(library: DocumentLibrary, url: str, share: Path) -> None:
    list(library.servers.index(url, "team-docs", [share], threading.Event()))


def _sync(library: DocumentLibrary, name: str) -> tuple[list[CopyProgress], CopyFinished]:
    events = list(library.servers.sync_copy(name, threading.Event()))
    last = events[-1]
    assert isinstance(last, CopyFinished), events
    return [e for e in events if isinstance(e, CopyProgress)], last


def _copy_rows(library: DocumentLibrary) -> int:
    db = library._db.connection()
    return int(
        db.execute(
            "SELECT COUNT(*) FROM chunks c JOIN collections k ON k.id = c.collection_id "
            "WHERE k.copy_of IS NOT NULL"
        ).fetchone()[0]
    )


def _vector_stores(library: DocumentLibrary) -> list[str]:
    return library._vectors.names()


@pytest.fixture
def team(
    tmp_path: Path, share: Path, library: DocumentLibrary, embedder: Embedder
) -> Iterator[tuple[RunningChroma, DocumentLibrary]]:
    """A running server holding the share as "team-docs", registered here as
    "Team" (its paths mapped to /mnt/team), with an offline copy asked for."""
    from retrieval.documents import DocumentLibrary

    with running_chroma(tmp_path / "server") as server:
        indexer = DocumentLibrary(tmp_path / "indexer", lambda: embedder)
        try:
            _index(indexer, server.url, share)
        finally:
            indexer.close()
        library.servers.add("Team", server.url, "team-docs", ((str(share), "/mnt/team"),))
        library.servers.set_offline_copy("Team", True)
        yield server, library


def test_the_copy_answers_from_this_computer_when_the_server_is_down(
    team: tuple[RunningChroma, DocumentLibrary],
) -> None:
    server, library = team
    url = server.url
    with ChromaServer(url) as client:
        on_server = client.collection("team-docs").count()
    progress, finished = _sync(library, "Team")
    assert finished.passages == on_server == finished.added and not finished.cancelled
    assert progress[-1].passages_done == progress[-1].passages_total == on_server
    info = library.servers.copy_info("Team")
    assert info is not None and info.passages == on_server
    assert info.synced_ns == finished.synced_ns

    # Reachable: the server answers, not the copy.
    from_server = library.search(QUESTION, ["Team"], k=3)
    assert library.servers.answered_from_copy("Team") == (False, None)

    # Down: the same search, on this computer, from the copy (vectors and words).
    server.stop()
    from_copy = library.search(QUESTION, ["Team"], k=3)
    assert [p.id for p in from_copy] == [p.id for p in from_server]
    top = from_copy[0]
    assert "E4711" in top.text and top.dense_rank == 1
    assert top.locator.path == "/mnt/team/notes/release.md"  # mapped, as the server's are
    assert top.locator.server == url
    assert library.servers.answered_from_copy("Team") == (True, finished.synced_ns)
    assert isinstance(library.servers.problem("Team"), ServerUnreachable)
    # an identifier only the words find
    assert "frob-level" in library.search("--frob-level", ["Team"], k=1)[0].text


def test_a_refresh_lists_nothing_until_the_server_changes(
    team: tuple[RunningChroma, DocumentLibrary], share: Path, tmp_path: Path, embedder: Embedder
) -> None:
    from retrieval.documents import DocumentLibrary

    server, library = team
    url = server.url
    _, first = _sync(library, "Team")
    _, again = _sync(library, "Team")
    assert again.unchanged and again.added == again.removed == 0
    assert again.passages == first.passages

    # Another machine changes the share on the server: the marker moves.
    with ChromaServer(url) as client:
        before = client.collection("team-docs").metadata[CHANGED_KEY]
    (share / "notes" / "bread.txt").unlink()
    (share / "notes" / "tea.md").write_text("# Tea\n\nSteep green tea at 80 degrees.\n")
    other = DocumentLibrary(tmp_path / "other-indexer", lambda: embedder)
    try:
        _index(other, url, share)
    finally:
        other.close()
    with ChromaServer(url) as client:
        collection = client.collection("team-docs")
        assert collection.metadata[CHANGED_KEY] != before
        on_server = collection.count()
    _, changed = _sync(library, "Team")
    assert not changed.unchanged
    assert changed.added == 1 and changed.removed == 1  # only the difference crossed
    assert changed.passages == on_server
    assert "80 degrees" in library.search("green tea temperature", ["Team"], k=1)[0].text


def test_turning_the_copy_off_or_removing_the_collection_deletes_it(
    team: tuple[RunningChroma, DocumentLibrary],
) -> None:
    _, library = team
    stores_before = set(_vector_stores(library))
    _sync(library, "Team")
    assert _copy_rows(library) > 0
    assert len(set(_vector_stores(library)) - stores_before) == 1

    library.servers.set_offline_copy("Team", False)
    assert _copy_rows(library) == 0
    assert set(_vector_stores(library)) == stores_before
    assert library.servers.copy_info("Team") is None
    ref = library.servers.find("Team")
    assert ref is not None and not ref.offline_copy and ref.copy_synced_ns is None

    library.servers.set_offline_copy("Team", True)
    _sync(library, "Team")
    library.servers.remove("Team")
    assert _copy_rows(library) == 0
    assert set(_vector_stores(library)) == stores_before
    # the copy never shows as a collection of the user's
    assert library.collections() == []


def test_a_refusal_is_not_answered_from_the_copy(
    team: tuple[RunningChroma, DocumentLibrary],
) -> None:
    """Access refused or the collection gone is the team's decision, not an outage."""
    _, library = team
    _sync(library, "Team")
    ref = library.servers.find("Team")
    assert ref is not None
    assert library.servers.copies_for([(ref, ServerDenied("no"))]) == []
    answering = library.servers.copies_for([(ref, ServerUnreachable("down"))])
    assert [r.name for r, _ in answering] == ["Team"]
