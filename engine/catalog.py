"""The model catalog: data (``catalog.json``), not code branches.

Adds what a person needs to choose: how much memory a model needs at the
context we would run it with, and whether that fits this machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.gpu_memory import COMPUTE_RESERVE_BYTES
from engine.hardware import MemoryBudget
from engine.model import DEFAULT_CONTEXT_TOKENS, RUNTIME_OVERHEAD_BYTES

_PLACEMENT_TEXT = {"cpu": "", "gpu": "runs on the GPU", "split": "runs partly on the GPU"}


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    url: str
    file: str
    size_bytes: int
    sha256: str | None
    native_context: int
    parameters: str
    license: str
    kv_bytes_per_token: int
    publisher: str
    default: bool = False

    def context_for(self, available_bytes: int | None = None) -> int:
        """The context we would run with: the 4K default, or less if memory is short
        (never the 128K variants' full window, never 0)."""
        context = min(DEFAULT_CONTEXT_TOKENS, self.native_context)
        if available_bytes is not None:
            room = available_bytes - self.size_bytes - RUNTIME_OVERHEAD_BYTES
            fits = max(room // self.kv_bytes_per_token, 0)
            context = max(min(context, fits // 256 * 256), 512)
        return context

    def memory_needed_bytes(self, context: int | None = None) -> int:
        context = context or self.context_for()
        return self.size_bytes + context * self.kv_bytes_per_token + RUNTIME_OVERHEAD_BYTES

    def fits(self, available_bytes: int) -> bool:
        return self.memory_needed_bytes() <= available_bytes

    def placement_text(self, budget: MemoryBudget) -> str:
        """ "runs on the GPU", "runs partly on the GPU", or "" for the CPU."""
        return _PLACEMENT_TEXT[self.placement(budget)]

    def placement(self, budget: MemoryBudget) -> str:
        """Where it would run: "gpu" (every layer), "split" (GPU and CPU) or "cpu"."""
        if budget.gpu_bytes <= COMPUTE_RESERVE_BYTES:
            return "cpu"
        weights_and_cache = self.size_bytes + self.context_for() * self.kv_bytes_per_token
        return "gpu" if weights_and_cache <= budget.gpu_bytes - COMPUTE_RESERVE_BYTES else "split"


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """The built-in catalog, or the one at ``path`` (an organisation's mirror)."""
    if path is not None:
        text = path.read_text("utf-8")
    else:
        text = resources.files("engine").joinpath("catalog.json").read_text("utf-8")
    return [CatalogEntry(**entry) for entry in json.loads(text)["models"]]


def find(entries: list[CatalogEntry], name_or_id: str) -> CatalogEntry | None:
    key = name_or_id.strip().lower()
    for entry in entries:
        if key in (entry.id, entry.name.lower(), entry.file.lower()):
            return entry
    return None


def recommend(entries: list[CatalogEntry], available_bytes: int) -> CatalogEntry | None:
    """The default model if it fits; else the smallest that fits; else None."""
    fitting = [e for e in entries if e.fits(available_bytes)]
    for entry in fitting:
        if entry.default:
            return entry
    return min(fitting, key=lambda e: e.memory_needed_bytes(), default=None)
