from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.model import LoadOptions, LocalModel, load_model


@pytest.fixture
def model(tiny_model: Path) -> Iterator[LocalModel]:
    loaded = load_model(tiny_model, LoadOptions(seed=7))
    yield loaded
    loaded.close()
