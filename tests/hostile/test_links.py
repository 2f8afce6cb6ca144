"""Links out of a collection's folders are not followed unless the user allows
it for that collection (#21 item 4): a link to a secret file, or to a folder
elsewhere, dropped inside an indexed folder, must not make that text
searchable. Real files, links and index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.documents import DocumentLibrary
from retrieval.ingest_events import FileFailed
from tests.hostile.index_helpers import embedder, open_library, run_index, write_notes

__all__ = ["embedder", "open_library"]  # fixtures used below

SECRET = "Password hint: the otter sleeps under the marigold bridge."


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A collection folder holding links: to a file outside, to a folder
    outside, to a file inside (another name for it) and to a folder inside."""
    docs = tmp_path / "docs"
    write_notes(docs, 2)
    (docs / "sub").mkdir()
    (docs / "sub" / "inner.md").write_text("# Inner\n\nThe pelican counted fishbones.\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(SECRET + "\n")
    (outside / "private").mkdir()
    (outside / "private" / "diary.md").write_text("# Diary\n\nThe otter stole the marigold.\n")
    (docs / "passwd-link.txt").symlink_to(secret)
    (docs / "private-link").symlink_to(outside / "private", target_is_directory=True)
    (docs / "inner-alias.md").symlink_to(docs / "sub" / "inner.md")
    (docs / "sub-link").symlink_to(docs / "sub", target_is_directory=True)
    return {"docs": docs, "secret": secret, "private": outside / "private"}


def texts(library: DocumentLibrary) -> str:
    return " ".join(p.text for p in library.search("otter marigold pelican heron", k=20))


def test_links_out_of_the_folders_are_skipped_and_listed(
    tree: dict[str, Path], open_library: Callable[[], DocumentLibrary]
) -> None:
    library = open_library()
    library.add_collection("docs", [tree["docs"]])

    events, summary = run_index(library, "docs")

    assert "otter" not in texts(library)  # neither the secret nor the diary
    assert "pelican" in texts(library)  # links inside the collection are fine
    assert summary.indexed == 3
    health = {Path(h.path).name: h for h in library.file_health("docs")}
    assert health["passwd-link.txt"].state == "link_outside"
    assert health["passwd-link.txt"].reason == (
        f"link to {tree['secret']}, outside this collection's folders"
    )
    assert health["private-link"].reason == (
        f"link to {tree['private']}, outside this collection's folders"
    )
    assert "diary.md" not in " ".join(health)
    # said during the run too, and never counted as a failure to retry
    skipped = [e for e in events if isinstance(e, FileFailed) and e.state == "link_outside"]
    assert len(skipped) == 2
    assert library.collections()[0].states.get("link_outside") == 2
    library.retry_failed("docs")
    still = {Path(h.path).name: h.state for h in library.file_health("docs")}
    assert still["passwd-link.txt"] == still["private-link"] == "link_outside"


def test_links_outside_are_followed_when_allowed_and_dropped_when_not(
    tree: dict[str, Path], open_library: Callable[[], DocumentLibrary]
) -> None:
    library = open_library()
    library.add_collection("docs", [tree["docs"]], follow_links_outside=True)
    run_index(library, "docs")
    assert "otter sleeps" in texts(library) and "otter stole" in texts(library)

    library.update_collection("docs", follow_links_outside=False)
    _, summary = run_index(library, "docs")

    assert summary.removed == 2
    assert "otter" not in texts(library)
    assert not library.collection("docs").follow_links_outside


def test_a_link_to_etc_passwd_is_not_read(
    tmp_path: Path, open_library: Callable[[], DocumentLibrary]
) -> None:
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd on this system")
    docs = tmp_path / "docs"
    write_notes(docs, 1)
    (docs / "passwd.txt").symlink_to(passwd)
    library = open_library()
    library.add_collection("docs", [docs])

    run_index(library, "docs")

    first_user = passwd.read_text().split(":", 1)[0]  # "root" nearly everywhere
    assert all(first_user not in p.text for p in library.search(first_user, k=20))
    (health,) = [h for h in library.file_health("docs") if h.path.endswith("passwd.txt")]
    assert health.reason == "link to /etc/passwd, outside this collection's folders"


def test_a_root_that_is_a_link_is_the_users_choice(
    tmp_path: Path, open_library: Callable[[], DocumentLibrary]
) -> None:
    real = tmp_path / "real-notes"
    write_notes(real, 2)
    (real / "self-link.md").symlink_to(real / "note1.md")
    chosen = tmp_path / "notes-shortcut"
    chosen.symlink_to(real, target_is_directory=True)
    library = open_library()
    library.add_collection("notes", [chosen])

    _, summary = run_index(library, "notes")

    assert summary.indexed == 2  # the link inside points inside the (real) root
    states = {Path(h.path).name: h.state for h in library.file_health("notes")}
    assert states["self-link.md"] == "duplicate"
