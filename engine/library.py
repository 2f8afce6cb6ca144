"""The user's installed models: the GGUF files in the models folder.

Partial downloads (``*.part``) are never listed: only complete, verified files
get their final name (see ``engine.download``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, ModelFileError
from engine.gguf_info import ModelInfo, inspect_gguf


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    info: ModelInfo | None
    problem: str | None  # why it cannot be used, when info is None

    def in_folder(self, models_dir: Path) -> bool:
        return self.path.resolve().parent == models_dir.resolve()

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


def installed_models(models_dir: Path, elsewhere: Sequence[Path] = ()) -> list[InstalledModel]:
    """GGUF files in ``models_dir``, then those of ``elsewhere`` (models opened
    from other folders) that still exist."""
    own = (
        sorted(models_dir.glob("*.gguf"), key=lambda p: p.name.lower())
        if models_dir.is_dir()
        else []
    )
    seen = {p.resolve() for p in own}
    others = [
        p for p in elsewhere if p.suffix == ".gguf" and p.is_file() and p.resolve() not in seen
    ]
    found = []
    for path in [*own, *dict.fromkeys(others)]:
        try:
            found.append(InstalledModel(path, inspect_gguf(path), None))
        except EngineError as exc:
            found.append(InstalledModel(path, None, str(exc)))
    return found


def delete_model(path: Path, models_dir: Path) -> None:
    """Delete a model file, refusing anything outside the models folder.
    Raises :class:`ModelFileError` with what to do when it cannot."""
    path = path.resolve()
    if path.parent != models_dir.resolve() or path.suffix != ".gguf":
        raise ModelFileError(f"{path.name} is not in Footnote's models folder; it was not deleted.")
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"{path.name} could not be deleted ({exc.strerror or type(exc).__name__}). "
            f"Check that it is a file you may change, or delete it yourself from {path.parent}.",
            detail=repr(exc),
        ) from exc
