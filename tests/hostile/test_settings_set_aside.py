"""A settings file that cannot be read, or was written by a newer Footnote, is
kept under a name of its own (a second one never overwrites the first backup),
and the window says so once, naming the backup."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from app.main_window import MainWindow
from app.paths import AppPaths
from app.settings import SETTINGS_VERSION, load_settings
from tests.app.conftest import (  # noqa: F401 - the GUI fixtures, shared
    no_modal_dialogs,
    open_window,
    paths,
)

DAMAGED = '{"model_path": "/models/phi3.gg'  # cut off by a crash
NEWER = json.dumps({"version": SETTINGS_VERSION + 1, "model_path": "/m/phi4.gguf"})


def test_two_bad_settings_files_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(DAMAGED)
    first = load_settings(path)
    path.write_text(NEWER)
    second = load_settings(path)

    backups = sorted(tmp_path.glob("settings.json.bad*"))
    assert len(backups) == 2
    assert {b.read_text() for b in backups} == {DAMAGED, NEWER}
    assert not path.exists()
    for loaded in (first, second):
        assert loaded.problem is not None
    assert first.problem != second.problem  # each names its own backup
    assert "newer Footnote" in (second.problem or "")


def test_the_window_names_the_backup(
    qtbot,
    open_window: Callable[[], MainWindow],  # noqa: F811
    paths: AppPaths,  # noqa: F811
) -> None:
    paths.settings_file.write_text(NEWER)

    window = open_window()

    (backup,) = paths.settings_file.parent.glob("settings.json.bad*")
    qtbot.waitUntil(lambda: backup.name in window.banner.text(), timeout=5000)
    assert "defaults are in use" in window.banner.text().lower()
    assert backup.read_text() == NEWER
    # Said once: the file is gone from its place, so the next start is quiet.
    assert load_settings(paths.settings_file).problem is None
