"""Discovery: which files a collection indexes, and why others are skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.discovery import (
    DEFAULT_EXCLUDES,
    ExcludeRules,
    FoundFile,
    SkippedFile,
    discover,
    display_path,
)
from retrieval.errors import BadExcludePattern
from tests.retrieval.make_files import write_non_utf8_name


def touch(path: Path, text: str = "text\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walk(
    roots: list[Path], rules: ExcludeRules | None = None
) -> tuple[list[Path], list[SkippedFile]]:
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    for item in discover(roots, rules or ExcludeRules()):
        if isinstance(item, FoundFile):
            found.append(item.path)
        else:
            skipped.append(item)
    return found, skipped


def rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_default_excludes_skip_vcs_dependencies_builds_hidden_and_temp_files(
    tmp_path: Path,
) -> None:
    for name in [
        "notes/plan.md",
        "notes/deep/er/idea.txt",
        "report.pdf",
        ".git/config",
        "app/node_modules/lib/index.js",
        "app/build/out.txt",
        "app/dist/bundle.js",
        "rust/target/debug/x.txt",
        ".venv/lib/site.py",
        "src/__pycache__/m.cpython-311.pyc",
        ".hidden.md",
        ".config/settings.txt",
        "~$report.docx",
        "draft.tmp",
        "draft.md~",
    ]:
        touch(tmp_path / name)

    found, skipped = walk([tmp_path])

    assert rel(tmp_path, found) == ["notes/deep/er/idea.txt", "notes/plan.md", "report.pdf"]
    excluded = {s.path.relative_to(tmp_path).as_posix(): s for s in skipped}
    assert all(s.state == "excluded" for s in skipped)
    # A folder is reported once, not file by file, and the reason names the pattern.
    assert excluded["app/node_modules"].is_dir
    assert "node_modules/" in excluded["app/node_modules"].reason
    assert "app/node_modules/lib/index.js" not in excluded
    assert excluded["~$report.docx"].reason == "matches the exclude pattern '~$*'"
    assert set(excluded) == {
        ".git", "app/node_modules", "app/build", "app/dist", "rust/target", ".venv",
        "src/__pycache__", ".hidden.md", ".config", "~$report.docx", "draft.tmp", "draft.md~",
    }  # fmt: skip


def test_user_patterns_use_gitignore_semantics(tmp_path: Path) -> None:
    for name in ["a.log", "keep.log", "logs/x.txt", "top/x.txt", "sub/top/y.txt", "sub/z.md"]:
        touch(tmp_path / name)
    rules = ExcludeRules.with_defaults(["*.log", "!keep.log", "logs/", "/top/"])

    found, skipped = walk([tmp_path], rules)

    assert rel(tmp_path, found) == ["keep.log", "sub/top/y.txt", "sub/z.md"]
    assert {s.path.name for s in skipped} == {"a.log", "logs", "top"}
    assert rules.matches("deep/a.log", is_dir=False)
    assert not rules.matches("keep.log", is_dir=False)
    # "logs/" names folders only: a file called logs is kept.
    assert not rules.matches("logs", is_dir=False)
    assert rules.matches("logs", is_dir=True)


def test_no_patterns_excludes_nothing(tmp_path: Path) -> None:
    touch(tmp_path / ".hidden")
    touch(tmp_path / "node_modules/x.js")
    found, skipped = walk([tmp_path], ExcludeRules([]))
    assert rel(tmp_path, found) == [".hidden", "node_modules/x.js"]
    assert skipped == []
    assert ".*" in DEFAULT_EXCLUDES


def test_files_come_with_size_and_mtime_in_a_stable_order(tmp_path: Path) -> None:
    for name in ["b.txt", "a/z.txt", "a/b.txt", "c.md"]:
        touch(tmp_path / name, name * 3)
    items = list(discover([tmp_path]))
    assert items == list(discover([tmp_path]))
    found = [i for i in items if isinstance(i, FoundFile)]
    assert rel(tmp_path, [f.path for f in found]) == ["a/b.txt", "a/z.txt", "b.txt", "c.md"]
    first = found[0]
    assert first.size == len("a/b.txt") * 3
    assert first.mtime_ns == (tmp_path / "a/b.txt").stat().st_mtime_ns


def test_symlink_loops_end_and_each_real_file_is_found_once(tmp_path: Path) -> None:
    touch(tmp_path / "docs/a.md")
    (tmp_path / "docs/loop").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "docs/up").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "docs/alias.md").symlink_to(tmp_path / "docs/a.md")
    outside = touch(tmp_path.parent / f"{tmp_path.name}-outside" / "far.txt")
    (tmp_path / "docs/far-link.txt").symlink_to(outside)
    (tmp_path / "self").symlink_to(tmp_path / "self")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")

    found, skipped = walk([tmp_path])

    # A symlinked file outside the tree is not followed (unless the
    # collection allows it); one inside is found once.
    assert sorted(rel(tmp_path, found)) == ["docs/a.md"]
    reasons = {s.path.name: (s.state, s.reason) for s in skipped}
    assert reasons["far-link.txt"] == (
        "link_outside",
        f"link to {outside}, outside this collection's folders",
    )
    allowed = [
        i.path for i in discover([tmp_path], follow_links_outside=True) if isinstance(i, FoundFile)
    ]
    assert tmp_path / "docs/far-link.txt" in allowed
    assert reasons["loop"][0] == "duplicate"
    assert reasons["up"][0] == "duplicate"
    assert "loop" in reasons["up"][1]
    assert reasons["alias.md"] == (
        "duplicate",
        f"the same file as {tmp_path / 'docs/a.md'}, indexed under that name",
    )
    assert reasons["self"] == ("unreadable", "a symbolic link that points to itself (a loop)")
    assert reasons["dangling.txt"][0] == "unreadable"
    assert "broken symbolic link" in reasons["dangling.txt"][1]


def test_roots_that_are_files_missing_or_overlapping(tmp_path: Path) -> None:
    hidden = touch(tmp_path / "folder/.notes.md")
    plain = touch(tmp_path / "folder/plain.txt")

    found, skipped = walk([hidden, tmp_path / "folder", tmp_path / "nope"])

    # A file dropped on purpose is indexed even if a pattern would exclude it;
    # the folder root then skips it as excluded and finds plain.txt once.
    assert found == [hidden, plain]
    states = [(s.path.name, s.state) for s in skipped]
    assert states == [(".notes.md", "excluded"), ("nope", "unreadable")]
    assert any(s.reason.startswith("not found") for s in skipped)


def test_special_files_are_skipped_not_opened(tmp_path: Path) -> None:
    touch(tmp_path / "ok.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    found, skipped = walk([tmp_path])
    assert rel(tmp_path, found) == ["ok.txt"]
    assert [(s.path.name, s.state, s.reason) for s in skipped] == [
        ("pipe.txt", "unreadable", "not a regular file (a named pipe)")
    ]


def test_non_utf8_file_names_are_found_and_openable(tmp_path: Path) -> None:
    path = write_non_utf8_name(tmp_path)
    found, skipped = walk([tmp_path])
    assert found == [path] and skipped == []
    assert found[0].read_text() == "Bytes in the name are not UTF-8.\n"
    assert display_path(found[0].name) == "caf\ufffd.txt"
    assert ExcludeRules.with_defaults(["caf*.txt"]).matches(os.fsdecode(b"caf\xe9.txt"), False)


UNREADABLE_SCRIPT = """
import os, sys
from pathlib import Path
from retrieval.discovery import discover, FoundFile
# Open the tree first: pytest's temp folders are private to root.
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.setgid(65534); os.setuid(65534)  # nobody: chmod 000 binds it, unlike root
for item in discover([Path(f"/proc/self/fd/{fd}")]):
    kind = "found" if isinstance(item, FoundFile) else item.state
    print(kind, Path(item.path).name, getattr(item, "reason", ""), sep="|")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and setuid")
def test_unreadable_folders_are_skipped_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    touch(root / "open/a.txt")
    touch(root / "closed/secret.txt")
    (root / "closed").chmod(0o000)
    if os.geteuid() == 0:
        # Root ignores permissions: walk as "nobody" in a child process.
        command = [sys.executable, "-c", UNREADABLE_SCRIPT, str(root)]
        repo = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
    else:
        lines = []
        for item in discover([root]):
            kind = "found" if isinstance(item, FoundFile) else item.state
            lines.append(f"{kind}|{item.path.name}|{getattr(item, 'reason', '')}")
    (root / "closed").chmod(0o755)
    assert lines == [
        "unreadable|closed|permission denied: Footnote may not read it",
        "found|a.txt|",
    ]


def test_an_invalid_pattern_is_refused_with_its_text() -> None:
    with pytest.raises(BadExcludePattern, match=r"the exclude pattern '!' is not valid"):
        ExcludeRules.with_defaults(["*.log", "!"])
