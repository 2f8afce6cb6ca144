from __future__ import annotations

import json
from pathlib import Path

from app.paths import AppPaths
from app.settings import Settings, load_settings, save_settings


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(model_path="/m/phi3.gguf", context_tokens=2048, temperature=0.2)
    save_settings(path, settings)
    loaded = load_settings(path)
    assert loaded.problem is None
    assert loaded.settings == settings
    assert json.loads(path.read_text())["version"] == 1


def test_corrupt_file_is_set_aside_and_defaults_used(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"model_path": "/m/phi3.gg')  # truncated by a crash or full disk
    loaded = load_settings(path)
    assert loaded.settings == Settings()
    assert loaded.problem and "settings.json.bad" in loaded.problem
    (backup,) = tmp_path.glob("settings.json.bad-*")
    assert backup.read_text().startswith('{"model_path"')


def test_wrong_types_fall_back_per_field(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "context_tokens": "big", "temperature": 1}))
    settings = load_settings(path).settings
    assert settings.context_tokens == Settings().context_tokens
    assert settings.temperature == 1.0


def test_footnote_home_redirects_every_folder(tmp_path: Path) -> None:
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(tmp_path)})
    for folder in (paths.config, paths.data, paths.cache, paths.logs, paths.models):
        assert folder.is_relative_to(tmp_path.resolve())
