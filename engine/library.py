"""The user's installed models: the GGUF files in the models folder.

Partial downloads (``*.part``) are never listed: only complete, verified files
get their final name (see ``engine.download``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.gguf_info import ModelInfo, inspect_gguf


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    info: ModelInfo | None
    problem: str | None  # why it cannot be used, when info is None

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


def installed_models(models_dir: Path) -> list[InstalledModel]:
    if not models_dir.is_dir():
        return []
    found = []
    for path in sorted(models_dir.glob("*.gguf"), key=lambda p: p.name.lower()):
        try:
            found.append(InstalledModel(path, inspect_gguf(path), None))
        except EngineError as exc:
            found.append(InstalledModel(path, None, str(exc)))
    return found


def delete_model(path: Path, models_dir: Path) -> None:
    """Delete a model file, refusing anything outside the models folder."""
    path = path.resolve()
    if path.parent != models_dir.resolve() or path.suffix != ".gguf":
        raise EngineError(f"{path.name} is not in Footnote's models folder; it was not deleted.")
    path.unlink(missing_ok=True)
