"""User settings: a versioned JSON file written atomically.

A settings file that cannot be read is set aside (``settings.json.bad``) rather
than overwritten, and the app starts with defaults and says so.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
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
    # Web search (app.grounding.WebOptions).
    web_searxng_url: str = ""
    web_region: str = "wt-wt"  # retrieval.web.results.NO_REGION: no region
    web_safesearch: str = "moderate"  # off | moderate | strict
    web_allow_local_fetch: bool = False  # loopback/intranet pages; off by default

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
        backup = path.with_name(path.name + ".bad")
        try:
            path.replace(backup)
        except OSError:
            backup = path
        log.warning("unreadable settings %s: %s", path, exc)
        return LoadedSettings(
            Settings(),
            problem=f"Your settings file could not be read ({exc}); defaults are in use. "
            f"The old file was kept as {backup.name}.",
        )


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
