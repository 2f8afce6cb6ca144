"""The folder watcher reports changed files under a collection's roots,
debounced, and never the excluded ones."""

from __future__ import annotations

import threading
from pathlib import Path

from retrieval.discovery import ExcludeRules
from retrieval.watcher import FolderWatcher

WAIT_S = 30.0


def test_watcher_reports_changes_but_not_excluded(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "notes.md").write_text("# Notes\n")
    reported: list[set[Path]] = []
    got = threading.Event()

    def on_change(paths: set[Path]) -> None:
        reported.append(paths)
        if tmp_path / "new.md" in paths:
            got.set()

    watcher = FolderWatcher(
        [tmp_path], ExcludeRules.with_defaults(["*.log"]), on_change, debounce_ms=200
    )
    watcher.start()
    try:
        assert watcher.wait_ready(WAIT_S)
        (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        (tmp_path / "build.log").write_text("noise\n")
        (tmp_path / "notes.md").write_text("# Notes\n\nEdited.\n")
        (tmp_path / "new.md").write_text("# New\n")
        assert got.wait(WAIT_S)
    finally:
        watcher.stop()
    everything = set().union(*reported)
    assert tmp_path / "notes.md" in everything
    assert tmp_path / ".git" / "HEAD" not in everything
    assert tmp_path / "build.log" not in everything
    assert not any(t.name == "footnote-watcher" for t in threading.enumerate())


def test_watcher_of_a_missing_folder_stops_cleanly(tmp_path: Path) -> None:
    watcher = FolderWatcher([tmp_path / "gone"], ExcludeRules(), lambda paths: None)
    watcher.start()
    assert watcher.wait_ready(WAIT_S)
    watcher.stop()
