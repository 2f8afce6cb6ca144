"""`python -m app index add --server`, `index connect`, `index status`,
`search` and `ledger` with a collection on a real Chroma server
(``chroma run`` on 127.0.0.1), in a sandboxed FOOTNOTE_HOME."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import commands as cli
from app.wiring import libraries
from retrieval.embedding import Embedder
from tests.chroma_server import RunningChroma, free_port, running_chroma


@pytest.fixture(scope="module")
def shared_embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


@pytest.fixture(autouse=True)
def one_embedder(monkeypatch: pytest.MonkeyPatch, shared_embedder: Embedder) -> None:
    monkeypatch.setattr(libraries, "Embedder", lambda model=None: shared_embedder)


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningChroma]:
    with running_chroma(tmp_path_factory.mktemp("chroma")) as server:
        yield server


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("share") / "Handbook"
    folder.mkdir()
    (folder / "travel.md").write_text(
        "# Travel\n\n## Expenses\n\nTrain tickets over 200 euros need the heron form.\n"
    )
    (folder / "office.txt").write_text("The office opens at eight and closes at six.\n")
    return folder


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_index_into_a_server_then_search_it_here(
    chroma: RunningChroma, share: Path, capsys: pytest.CaptureFixture[str], footnote_home: Path
) -> None:
    code, out = run("index", "add", str(share), "--server", chroma.url, "--collection", "team")
    assert code == 0, capsys.readouterr().err
    assert out.startswith("team: 2 files indexed, 0 unchanged, 0 failed")
    assert f"“team” is searchable here too (it lives on {chroma.url})" in out
    # nothing of the text was kept on this machine
    assert not (footnote_home / "data" / "documents" / "chroma").exists()

    code, out = run("search", "which form for expensive train tickets", "--collection", "team")
    assert code == 0
    assert out.startswith("[1] travel.md › Travel › Expenses")

    code, out = run("index", "status")
    assert code == 0
    assert f"team: on the Chroma server {chroma.url} (collection “team”)" in out
    assert "2 chunks, embedded by all-MiniLM-L6-v2@" in out

    # the privacy ledger says where the question went
    code, out = run("ledger")
    assert code == 0
    assert f"Chroma server {chroma.url}" in out
    assert "which form for expensive train tickets" in out

    code, out = run("index", "remove", "team")
    assert code == 0 and "the server keeps it" in out
    code, out = run("index", "status")
    assert out.startswith("no collections yet")


def test_connect_from_another_machine_with_a_path_mapping(
    chroma: RunningChroma, share: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("index", "add", str(share), "--server", chroma.url, "--collection", "handbook")
    run("index", "remove", "handbook")  # as if this were another machine
    mounted = tmp_path / "Volumes" / "Handbook"
    code, out = run(
        "index", "connect", chroma.url, "handbook", "--as", "Shared", "--map", f"{share}={mounted}"
    )
    assert code == 0, capsys.readouterr().err
    assert f"“Shared” is searchable here: 2 chunks on {chroma.url}" in out
    assert f"files under {share} open from {mounted}" in out
    code, out = run("search", "when does the office open", "--collection", "Shared", "-k", "1")
    assert out.startswith("[1] office.txt")


def test_server_failures_are_one_sentence(
    chroma: RunningChroma, capsys: pytest.CaptureFixture[str]
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    assert run("index", "connect", down, "team")[0] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"footnote: error: Footnote cannot reach the Chroma server at {down}")
    assert run("index", "connect", chroma.url, "no-such-collection")[0] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"footnote: error: The Chroma server at {chroma.url} has no collection called "
        "“no-such-collection”; check the name, or index documents into it first."
    ]
    assert run("index", "connect", "ftp://x", "team")[0] == 1
    assert "not a Chroma server address" in capsys.readouterr().err


def test_an_offline_copy_answers_while_the_server_is_down_and_goes_when_off(
    tmp_path: Path, share: Path, capsys: pytest.CaptureFixture[str], footnote_home: Path
) -> None:
    with running_chroma(tmp_path / "server") as server:
        code, _ = run("index", "add", str(share), "--server", server.url, "--collection", "crew")
        assert code == 0, capsys.readouterr().err
        run("index", "remove", "crew")  # forgotten here; connected again with a copy
        code, out = run("index", "connect", server.url, "crew", "--as", "Crew", "--offline-copy")
        assert code == 0, capsys.readouterr().err
        assert "Crew: offline copy of 2 passages (2 copied, 0 dropped)" in out
        code, out = run("index", "update", "--collection", "Crew")
        assert code == 0 and "Crew: offline copy up to date (2 passages" in out
        code, out = run("index", "status", "--collection", "Crew")
        assert code == 0 and "Crew: offline copy on this computer: 2 passages, from " in out
        server.stop()

        capsys.readouterr()
        code, out = run("search", "which form for expensive train tickets", "--collection", "Crew")
        assert code == 0 and out.startswith("[1] travel.md › Travel › Expenses")
        err = capsys.readouterr().err
        assert "Crew answered from this computer's offline copy of 20" in err
        assert "cannot reach the Chroma server" in err

        code, out = run("index", "offline-copy", "Crew", "off")
        assert code == 0 and "deleted this computer's copy of “Crew”" in out
        code, out = run("search", "which form for expensive train tickets", "--collection", "Crew")
        assert code == 1
        assert "cannot reach the Chroma server" in capsys.readouterr().err
        code, out = run("index", "offline-copy", "Crew", "on")
        assert code == 1  # its server is down: nothing to copy from, said in one line
        assert "footnote: error: Crew: Footnote cannot reach" in capsys.readouterr().err


def test_a_token_from_the_environment_is_kept_for_that_server(
    chroma: RunningChroma,
    share: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keyring

    from app.wiring.chroma_tokens import KEYRING_SERVICE
    from tests.chroma_server import token_proxy
    from tests.engine.test_server_key import MemoryKeyring

    run("index", "add", str(share), "--server", chroma.url, "--collection", "guarded")
    before = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        with token_proxy(chroma.url, "t0ken") as (proxy, seen):
            code, _ = run("index", "connect", proxy, "guarded", "--as", "Guarded")
            assert code == 1 and "refused access (HTTP 401)" in capsys.readouterr().err
            monkeypatch.setenv("TEAM_TOKEN", "t0ken")
            code, out = run(
                "index", "connect", proxy, "guarded", "--as", "Guarded", "--token-env", "TEAM_TOKEN"
            )
            assert code == 0, capsys.readouterr().err
            assert memory.entries == {(KEYRING_SERVICE, proxy): "t0ken"}
            monkeypatch.delenv("TEAM_TOKEN")
            code, out = run("index", "status", "--collection", "Guarded")  # from the keyring
            assert code == 0 and "2 chunks" in out
            assert seen[-1] == "Bearer t0ken"
            code, _ = run("index", "connect", proxy, "x", "--token-env", "TEAM_TOKEN")
            assert code == 1
            assert "TEAM_TOKEN is empty or not set" in capsys.readouterr().err
    finally:
        keyring.set_keyring(before)
