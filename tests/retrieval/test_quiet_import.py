from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from retrieval import quiet_import
from retrieval.quiet_import import quiet_imports


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_on = gc.isenabled()
    yield
    (gc.enable if was_on else gc.disable)()


def test_the_collector_is_paused_inside_and_the_imports_frozen_after() -> None:
    gc.enable()
    frozen = gc.get_freeze_count()
    with quiet_imports():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]  # what an import leaves behind
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(built)


def test_a_collector_switched_off_by_someone_else_stays_off() -> None:
    gc.disable()
    with quiet_imports():
        pass
    assert not gc.isenabled()


def test_the_collector_resumes_only_when_the_outer_import_leaves() -> None:
    """Threads take turns (tests/retrieval/test_backend_import.py); one
    thread may nest them, and the collector stays paused until the outer ends."""
    gc.enable()
    with quiet_imports():
        with quiet_imports():
            pass
        assert not gc.isenabled(), "resumed while the outer import was still running"
    assert gc.isenabled()


def test_torch_c_is_found_without_importing_torch() -> None:
    path = quiet_import._extension_path("torch", "_C")
    assert path is not None and path.is_file()
    assert quiet_import._extension_path("no_such_package_here", "_C") is None


def test_a_second_thread_waits_until_the_first_has_linked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Else its import's own dlopen would wait for the loader lock holding the GIL."""
    monkeypatch.setattr(quiet_import, "_prelinked", {})
    linking, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_prelink(package: str, module: str) -> None:
        linking.set()
        release.wait(10)
        order.append("linked")

    monkeypatch.setattr(quiet_import, "_prelink", slow_prelink)
    first = threading.Thread(target=quiet_import.prelink_extensions, args=([("pkg", "_C")],))
    first.start()
    assert linking.wait(10)
    second = threading.Thread(
        target=lambda: (quiet_import.prelink_extensions([("pkg", "_C")]), order.append("second"))
    )
    second.start()
    second.join(0.2)
    assert second.is_alive(), "the second thread went on while the first was linking"
    release.set()
    first.join()
    second.join()
    assert order == ["linked", "second"]
