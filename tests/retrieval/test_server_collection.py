"""A shared collection on a real Chroma server (``chroma run`` on 127.0.0.1):
indexed from files, searched with the same hybrid ranking as a local
collection, refused when another embedding model built it, and every
server failure one clear sentence with nothing lost."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.chroma_server import ChromaServer
from retrieval.errors import (
    ChromaServerError,
    ServerCollectionMismatch,
    ServerCollectionMissing,
    ServerDenied,
    ServerUnreachable,
)
from retrieval.ingest_events import FileFailed, FileIndexed, IngestEvent, IngestFinished
from retrieval.server_collections import map_path, parse_path_map
from retrieval.server_index import server_files
from tests.chroma_server import RunningChroma, answering, running_chroma
from tests.retrieval.make_files import write_good_files

if TYPE_CHECKING:
    from retrieval.documents import DocumentLibrary
    from retrieval.embedding import Embedder

NOTES = (
    "# Release checklist\n\n"
    "Before a release, run the frobnicator with --frob-level 3 and read its report.\n\n"
    "## Rollback\n\nIf the canary fails, roll back with the E4711 procedure.\n"
)
RECIPES = "Bake the bread at 220 degrees for forty minutes, then let it cool on a rack.\n"


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningChroma]:
    with running_chroma(tmp_path_factory.mktemp("chroma")) as server:
        yield server


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The team's folder: every kind of file Footnote reads, and two notes."""
    folder = tmp_path_factory.mktemp("share")
    write_good_files(folder / "docs")
    write_bytes(folder / "notes" / "release.md", NOTES.encode())
    write_bytes(folder / "notes" / "bread.txt", RECIPES.encode())
    return folder


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run(events: Iterator[IngestEvent]) -> list[IngestEvent]:
    return list(events)


def _summary(events: list[IngestEvent]) -> IngestFinished:
    last = events[-1]
    assert isinstance(last, IngestFinished)
    return last


@pytest.fixture(scope="module")
def indexed(chroma: RunningChroma, share: Path, embedder: Embedder) -> str:
    """The share indexed once into the server's collection "team-docs"
    (from a library whose own store stays empty)."""
    from retrieval.documents import DocumentLibrary

    work = share.parent / "indexer-home"
    library = DocumentLibrary(work, lambda: embedder)
    try:
        events = _run(library.servers.index(chroma.url, "team-docs", [share], threading.Event()))
    finally:
        library.close()
    summary = _summary(events).summary
    assert summary.indexed == 9 and summary.failed == 0, events
    return "team-docs"


def test_indexed_files_are_searched_on_the_server_with_their_locators(
    library: DocumentLibrary, chroma: RunningChroma, indexed: str, share: Path
) -> None:
    library.servers.add("Team", chroma.url, indexed)
    found = library.search("How do I roll back when the canary fails?", ["Team"], k=3)
    assert found, "the server's collection answered nothing"
    top = found[0]
    assert "E4711" in top.text
    assert top.locator.path == str(share / "notes" / "release.md")
    assert top.citation == "release.md › Release checklist › Rollback"
    # the score is the passage's cosine, as for local passages (web merging relies on it)
    assert 0.2 < top.score <= 1.0
    pdf = library.search("Page marker zebra2", ["Team"], k=1)[0]
    assert pdf.locator.page == 2 and pdf.locator.path.endswith("report.pdf")


def test_the_server_ranks_like_the_same_files_indexed_locally(
    library: DocumentLibrary, chroma: RunningChroma, indexed: str, share: Path
) -> None:
    library.servers.add("Team", chroma.url, indexed)
    library.add_collection("Mine", [share])
    _run(library.index("Mine", threading.Event()))
    for question in (
        "How do I roll back when the canary fails?",
        "frob-level",  # an identifier: found by the lexical side
        "what temperature for bread",
        "Page marker zebra3",
    ):
        local = [p.id for p in library.search(question, ["Mine"], k=3)]
        remote = [p.id for p in library.search(question, ["Team"], k=3)]
        assert local[0] == remote[0], question
        assert len(set(local) & set(remote)) >= 2, question


def test_a_passage_only_its_words_find_comes_from_the_server(
    library: DocumentLibrary, chroma: RunningChroma, indexed: str
) -> None:
    """The lexical side works over HTTP: the chunk holding the option is
    found (and ranked first) although a question of one identifier is
    nearly meaningless to MiniLM."""
    library.servers.add("Team", chroma.url, indexed)
    found = library.search("--frob-level", ["Team"], k=5)
    assert "--frob-level" in found[0].text
    assert found[0].lexical_rank == 1
    assert found[0].matched_identifiers == ("--frob-level",)


def test_server_and_local_collections_are_searched_together(
    library: DocumentLibrary, chroma: RunningChroma, indexed: str, tmp_path: Path
) -> None:
    library.servers.add("Team", chroma.url, indexed)
    write_bytes(tmp_path / "mine" / "plants.txt", b"Water the ferns every Tuesday morning.\n")
    library.add_collection("Mine", [tmp_path / "mine"])
    _run(library.index("Mine", threading.Event()))
    everything = library.search("When do I water the ferns?", None, k=4)
    assert everything[0].locator.path == str(tmp_path / "mine" / "plants.txt")
    assert any("E4711" in p.text for p in library.search("canary rollback procedure", None, k=4))


def test_a_second_run_from_another_machine_redoes_nothing_and_follows_changes(
    chroma: RunningChroma, share: Path, embedder: Embedder, tmp_path: Path
) -> None:
    """The server is the manifest: a run with an empty local home skips
    unchanged files, re-reads a changed one and drops a deleted one."""
    from retrieval.documents import DocumentLibrary

    folder = tmp_path / "copy"
    shutil.copytree(share / "notes", folder)
    first = DocumentLibrary(tmp_path / "one", lambda: embedder)
    second = DocumentLibrary(tmp_path / "two", lambda: embedder)
    try:
        events = _run(first.servers.index(chroma.url, "incremental", [folder], threading.Event()))
        assert _summary(events).summary.indexed == 2
        again = _run(second.servers.index(chroma.url, "incremental", [folder], threading.Event()))
        assert _summary(again).summary.indexed == 0
        assert _summary(again).summary.unchanged == 2
        (folder / "bread.txt").write_text("Rye bread wants a long, slow rise overnight.\n")
        (folder / "release.md").unlink()
        changed = _run(second.servers.index(chroma.url, "incremental", [folder], threading.Event()))
        summary = _summary(changed).summary
        assert (summary.indexed, summary.removed) == (1, 1)
        collection = second.servers.server(chroma.url).collection("incremental")
        held = server_files(collection)
        assert list(held) == [str(folder / "bread.txt")]
        assert collection.count() == 1
        assert "Rye" in collection.get(include=("documents",)).documents[0]
        assert not any(p.startswith(str(share)) for p in held)  # other folders untouched
        assert not list((tmp_path / "two").glob("chroma/*"))  # no local copy of the text
    finally:
        first.close()
        second.close()


def test_a_file_that_cannot_be_read_is_listed_and_the_run_goes_on(
    chroma: RunningChroma, embedder: Embedder, tmp_path: Path
) -> None:
    from retrieval.documents import DocumentLibrary

    write_bytes(tmp_path / "in" / "ok.txt", RECIPES.encode())
    write_bytes(tmp_path / "in" / "broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    library = DocumentLibrary(tmp_path / "home", lambda: embedder)
    try:
        events = _run(
            library.servers.index(chroma.url, "partly", [tmp_path / "in"], threading.Event())
        )
    finally:
        library.close()
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert [Path(e.path).name for e in failed] == ["broken.pdf"]
    assert [Path(e.path).name for e in events if isinstance(e, FileIndexed)] == ["ok.txt"]


def test_a_collection_built_by_another_embedding_model_is_refused(
    library: DocumentLibrary, chroma: RunningChroma, share: Path
) -> None:
    server = ChromaServer(chroma.url)
    try:
        server.create_collection(
            "other-model",
            {"hnsw:space": "cosine", "footnote:format": 1, "footnote:embedder": "e5-large@1234"},
        )
        server.create_collection("not-footnote", {"owner": "someone else"})
    finally:
        server.close()
    with pytest.raises(ServerCollectionMismatch, match=r"built with the embedding model e5-large"):
        library.servers.add("Other", chroma.url, "other-model")
    with pytest.raises(ServerCollectionMismatch, match=r"not made by Footnote"):
        library.servers.add("Foreign", chroma.url, "not-footnote")
    assert library.servers.refs() == []  # nothing registered
    with pytest.raises(ServerCollectionMismatch):
        _run(library.servers.index(chroma.url, "other-model", [share], threading.Event()))
    # registered without the check (a server that was down), then searched: refused too
    library.servers.add("Other", chroma.url, "other-model", check=False)
    with pytest.raises(ServerCollectionMismatch, match=r"their vectors do not compare"):
        library.search("anything", ["Other"])


def test_a_missing_collection_is_named(library: DocumentLibrary, chroma: RunningChroma) -> None:
    with pytest.raises(ServerCollectionMissing, match=r"has no collection called “nope”"):
        library.servers.add("Nope", chroma.url, "nope")


def test_a_server_that_goes_down_is_one_sentence_and_local_search_goes_on(
    library: DocumentLibrary, embedder: Embedder, tmp_path: Path
) -> None:
    write_bytes(tmp_path / "team" / "a.txt", NOTES.encode())
    write_bytes(tmp_path / "mine" / "b.txt", RECIPES.encode())
    library.add_collection("Mine", [tmp_path / "mine"])
    _run(library.index("Mine", threading.Event()))
    with running_chroma(tmp_path / "server") as server:
        _run(library.servers.index(server.url, "team", [tmp_path / "team"], threading.Event()))
        library.servers.add("Team", server.url, "team")
        assert library.search("canary rollback", ["Team"])
        server.stop()
        with pytest.raises(ServerUnreachable) as raised:
            library.search("canary rollback", ["Team"])
    message = raised.value.message
    assert server.url in message and "check that it is running" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert library.servers.problem("Team") is raised.value
    # the next questions do not wait on it again for a while (an unplugged
    # host would cost each one the connect timeout); an explicit check asks
    asked: list[str] = []
    library.servers.before_query = lambda url, question: asked.append(question)
    with pytest.raises(ServerUnreachable):
        library.search("canary rollback", ["Team"])
    assert asked == []
    with pytest.raises(ServerUnreachable):
        library.servers.check("Team")
    # searching everything still answers from the local collection
    found = library.search("bread temperature", None)
    assert found and found[0].locator.path == str(tmp_path / "mine" / "b.txt")
    assert [r.name for r in library.servers.refs()] == ["Team"]  # nothing forgotten


def test_refusals_and_silence_are_typed() -> None:
    with (
        answering(401, b"<html>401 Authorization Required</html>") as url,
        ChromaServer(url, token="wrong") as server,
        pytest.raises(ServerDenied) as denied,
    ):
        server.collection("team")
    assert "refused access (HTTP 401)" in denied.value.message
    with (
        answering(502, b"Bad Gateway") as url,
        ChromaServer(url) as server,
        pytest.raises(ChromaServerError, match=r"HTTP 502"),
    ):
        server.heartbeat()
    with (
        answering(404) as url,
        ChromaServer(url) as server,
        pytest.raises(ChromaServerError, match=r"Chroma's API"),
    ):
        server.heartbeat()
    # a server that accepts the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            ChromaServer(url, read_timeout_s=0.5) as server,
            pytest.raises(ServerUnreachable, match=r"did not answer in time"),
        ):
            server.heartbeat()
    with pytest.raises(ChromaServerError, match=r"not a Chroma server address"):
        ChromaServer("ftp://example")


def test_paths_map_from_the_server_to_this_machine(
    library: DocumentLibrary, chroma: RunningChroma, indexed: str, share: Path, tmp_path: Path
) -> None:
    mounted = tmp_path / "mnt" / "team"
    shutil.copytree(share, mounted)
    library.servers.add("Team", chroma.url, indexed, parse_path_map([f"{share}={mounted}"]))
    top = library.search("How do I roll back when the canary fails?", ["Team"], k=1)[0]
    assert top.locator.path == str(mounted / "notes" / "release.md")
    assert Path(top.locator.path).read_text() == NOTES


def test_path_mapping_rules() -> None:
    mapping = parse_path_map(["/srv/share=/Volumes/share", "/srv=C:\\srv"])
    assert map_path("/srv/share/a/b.pdf", mapping) == "/Volumes/share/a/b.pdf"
    assert map_path("/srv/share", mapping) == "/Volumes/share"
    assert map_path("/srv/shared/x.txt", mapping) == "C:\\srv\\shared\\x.txt"
    assert map_path("/home/x.txt", mapping) == "/home/x.txt"
    with pytest.raises(Exception, match=r"SERVER_PREFIX=LOCAL_PREFIX"):
        parse_path_map(["/srv/share"])


def test_questions_are_announced_before_they_go_to_the_server(
    chroma: RunningChroma, indexed: str, embedder: Embedder, tmp_path: Path
) -> None:
    from retrieval.documents import DocumentLibrary

    sent: list[tuple[str, str]] = []
    library = DocumentLibrary(
        tmp_path / "home", lambda: embedder, before_server_query=lambda u, q: sent.append((u, q))
    )
    try:
        library.servers.add("Team", chroma.url, indexed)
        library.search("canary rollback", ["Team"])
    finally:
        library.close()
    assert sent == [(chroma.url, "canary rollback")]
