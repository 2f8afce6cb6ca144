"""A healthy index is never called broken because an import went wrong:
backend imports take turns, a failed chromadb import is tried again, and a
library that does not load is said as such, never as a damaged store."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import quiet_import
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.errors import IndexUnavailable, SearchBackendUnavailable
from retrieval.quiet_import import quiet_imports
from retrieval.vector_index import VectorIndex

HALF_MADE = "cannot import name 'BaseModel' from partially initialized module 'pydantic'"


def failing_imports(monkeypatch: pytest.MonkeyPatch, name: str, times: int) -> list[str]:
    """``import name`` raises the import race's error the first ``times`` times."""
    real: Callable[..., Any] = builtins.__import__
    failures: list[str] = []

    def guarded(module: str, *args: Any, **kwargs: Any) -> Any:
        if module == name and len(failures) < times:
            failures.append(module)
            raise ImportError(HALF_MADE)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded)
    return failures


def stored(folder: Path) -> VectorIndex:
    index = VectorIndex(folder)
    vectors = np.eye(3, 8, dtype=np.float32)
    index.upsert("c1-test", ["x", "y", "z"], vectors, [{"path": "/a"}] * 3)
    index.close()
    return VectorIndex(folder)


def test_backend_imports_take_turns() -> None:
    """Two threads never import backends at once (the pydantic race)."""
    inside = threading.Event()
    leave = threading.Event()

    def importer() -> None:
        with quiet_imports():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=importer)
    thread.start()
    assert inside.wait(10)
    try:
        assert not quiet_import._backend_import_lock.acquire(blocking=False)
    finally:
        leave.set()
        thread.join(10)
    assert quiet_import._backend_import_lock.acquire(blocking=False)
    quiet_import._backend_import_lock.release()


def test_an_import_that_fails_once_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = stored(tmp_path / "chroma")
    failures = failing_imports(monkeypatch, "chromadb", times=1)
    assert index.names() == ["c1-test"]  # opened: the second import worked
    assert failures == ["chromadb"]
    assert index.count("c1-test") == 3
    index.close()


def test_a_library_that_does_not_load_is_not_a_broken_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = stored(tmp_path / "chroma")
    failing_imports(monkeypatch, "chromadb", times=99)
    with pytest.raises(SearchBackendUnavailable) as raised:
        index.names()
    assert not isinstance(raised.value, IndexUnavailable)
    assert "untouched" in raised.value.message and "remove" not in raised.value.message
    assert "partially initialized" in raised.value.detail
    monkeypatch.undo()
    assert index.count("c1-test") == 3  # nothing was moved or lost
    index.close()


def test_search_while_the_library_does_not_load_keeps_the_index_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """Keywords answer, the collection is not marked damaged, nothing is set aside."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nThe heron budget doubled in spring.\n")
    first = DocumentLibrary(tmp_path / "index", lambda: embedder)
    first.add_collection("notes", [docs])
    list(first.index("notes", threading.Event()))
    first.close()

    library = DocumentLibrary(tmp_path / "index", lambda: embedder)
    failing_imports(monkeypatch, "chromadb", times=99)
    found = library.search("heron budget", None, 3)
    assert found and "heron" in found[0].text
    monkeypatch.undo()
    assert library.vector_health("notes").ok
    assert not list(tmp_path.glob("index/*.damaged"))
    assert library.search("heron budget", None, 3)[0].text == found[0].text
    library.close()
