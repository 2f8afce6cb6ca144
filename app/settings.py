"""User settings: a versioned JSON file written atomically.

A settings file that cannot be read (damaged, or written by a newer Footnote)
is set aside under a name with the time in it (``settings.json.bad-20250314-
093015``, never overwriting an earlier backup) rather than overwritten, and
the app starts with defaults and says so, naming the backup.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.model import DEFAULT_CONTEXT_TOKENS

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
DEFAULT_SYSTEM_PROMPT = (
    "You are Footnote, a helpful assistant that runs privately on the user's own computer. "
    "Answer clearly and concisely, and use Markdown for lists, tables and code."
)


@dataclass
class Settings:
    model_path: str = ""
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    threads: int = 0  # 0: physical cores
    temperature: float = 0.7
    kv_cache_8bit: bool = False  # q8_0 KV cache + flash attention: half the context memory
    # -1: automatic (as many layers as the GPU's free memory holds), 0: CPU only,
    # N: N layers (more than the model has means all of them).
    gpu_layers: int = -1
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    window_geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""
    last_conversation_id: int = 0
    recent_models: list[str] = field(default_factory=list)
    # Answer speed: engine.budget.FirstWordTarget's value (fast/balanced/thorough).
    answer_speed: str = "balanced"
    # This machine's measured prompt speed per model file (PromptSpeed.to_dict()).
    prompt_speeds: dict[str, Any] = field(default_factory=dict)
    # The web mode a new conversation starts with (WebMode's value): "off"
    # until the user turns web search on once, then what they chose last.
    default_web_mode: str = "off"
    # Web search (app.wiring.grounding.WebOptions).
    web_searxng_url: str = ""
    web_region: str = "wt-wt"  # retrieval.web.results.NO_REGION: no region
    web_safesearch: str = "moderate"  # off | moderate | strict
    web_allow_local_fetch: bool = False  # loopback/intranet pages; off by default
    # Look: app.style.colors.ThemeChoice's value (system | light | dark).
    theme: str = "system"
    # A model server (app.wiring.model_server): with use_model_server on,
    # answers are computed there instead of here. Its API key is kept in the
    # system keyring (engine.server_key), never in this file.
    use_model_server: bool = False
    model_server_url: str = ""
    model_server_model: str = ""

    def remember_model(self, path: str) -> None:
        self.model_path = path
        self.recent_models = [path, *[p for p in self.recent_models if p != path]][:8]


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    problem: str | None = None  # set when the file was unreadable and defaults were used


def load_settings(path: Path) -> LoadedSettings:
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return LoadedSettings(_from_dict(raw))
    except (OSError, ValueError, TypeError) as exc:
        log.warning("unreadable settings %s: %s", path, exc)
        backup = _set_aside(path)
        if backup is None:
            return LoadedSettings(
                Settings(),
                problem=f"Your settings file could not be read: {exc}. Defaults are in use "
                f"for now; the file could not be set aside, so it is still {path}.",
            )
        return LoadedSettings(
            Settings(),
            problem=f"Your settings file could not be read: {exc}. Defaults are in use; "
            f"the old file was kept as {backup}.",
        )


def _set_aside(path: Path) -> Path | None:
    """Rename ``path`` to a backup name no earlier backup has; None if it
    cannot be renamed."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 100):
        suffix = f".bad-{stamp}" if attempt == 1 else f".bad-{stamp}-{attempt}"
        backup = path.with_name(path.name + suffix)
        try:
            # A hard link fails if the name exists, so an earlier backup can
            # never be replaced (os.replace would silently overwrite it).
            os.link(path, backup)
        except FileExistsError:
            continue
        except OSError:
            return _rename_if_free(path, backup)
        path.unlink(missing_ok=True)
        return backup
    return None


def _rename_if_free(path: Path, backup: Path) -> Path | None:
    """Where hard links are not possible (some network or FAT file systems)."""
    if backup.exists():
        return None
    try:
        path.rename(backup)
    except OSError:
        return None
    return backup


def _from_dict(raw: dict[str, Any]) -> Settings:
    version = raw.get("version", SETTINGS_VERSION)
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        raise ValueError(f"written by a newer Footnote (version {version})")
    defaults = Settings()
    values: dict[str, Any] = {}
    for fld in dataclasses.fields(Settings):
        if fld.name in raw:
            value = raw[fld.name]
            expected = type(getattr(defaults, fld.name))
            if expected is float and isinstance(value, int):
                value = float(value)
            if isinstance(value, expected):
                values[fld.name] = value
    return Settings(**values)


def save_settings(path: Path, settings: Settings) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    data = {"version": SETTINGS_VERSION, **dataclasses.asdict(settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
