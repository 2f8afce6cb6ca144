"""Where Footnote keeps its files.

Per-OS folders from platformdirs by default. Setting ``FOOTNOTE_HOME`` puts
everything (config, data, cache, models, logs) in that one folder: tests use it
to stay sandboxed, and a portable install on a USB stick uses it too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "Footnote"
HOME_ENV = "FOOTNOTE_HOME"


@dataclass(frozen=True)
class AppPaths:
    config: Path
    data: Path
    cache: Path
    logs: Path
    models: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> AppPaths:
        home = environ.get(HOME_ENV, "").strip()
        if home:
            root = Path(home).expanduser().resolve()
            return cls(
                config=root / "config",
                data=root / "data",
                cache=root / "cache",
                logs=root / "logs",
                models=root / "models",
            )
        import platformdirs

        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        data = Path(dirs.user_data_dir)
        return cls(
            config=Path(dirs.user_config_dir),
            data=data,
            cache=Path(dirs.user_cache_dir),
            logs=Path(dirs.user_log_dir),
            models=data / "models",
        )

    def ensure(self) -> AppPaths:
        for folder in (self.config, self.data, self.cache, self.logs, self.models):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def history_db(self) -> Path:
        return self.data / "conversations.sqlite3"

    @property
    def documents(self) -> Path:
        """The document index: collections, manifest, chunks, chroma vectors."""
        return self.data / "documents"

    @property
    def log_file(self) -> Path:
        return self.logs / "footnote.log"
