"""Closing the window with work in flight: every background job is cancelled
and joined (the window says what it waits for), and nothing half-made stays
behind. The QThread check in tests/conftest.py fails any test that leaves
one running."""

from __future__ import annotations

from PySide6.QtCore import Qt

from engine.gguf_info import inspect_gguf
from tests.app.conftest import close
from tests.app.test_models_page import write_catalog
from tests.http_server import serve_file

STALL_AFTER_BYTES = 200_000
ENGINE_WAIT_TEXT = "Finishing the model's work before closing…"


def test_closing_mid_download_waits_for_the_blocked_read_and_keeps_the_part(
    qtbot, open_window, tiny_model, tmp_path, monkeypatch, paths
) -> None:
    payload = tiny_model.read_bytes()
    with serve_file(payload, "Phi-3-tiny.gguf") as (url, behaviour):
        # The network stalls mid-file: the download thread sits in a socket
        # read that a cancel flag cannot interrupt.
        behaviour.stall_after = STALL_AFTER_BYTES
        monkeypatch.setenv(
            "FOOTNOTE_CATALOG", str(write_catalog(tmp_path / "c.json", url, payload))
        )
        window = open_window()
        window.show_models()
        row = window.models_page.rows["phi-3-tiny"]
        qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(behaviour.stalled.is_set, timeout=10_000)

        said: list[str] = []

        def on_message(text: str) -> None:
            said.append(text)
            if text.startswith("Pausing the download"):
                behaviour.release.set()  # the network comes back while the window waits

        window.statusBar().messageChanged.connect(on_message)
        close(window)  # returns only once the download thread has stopped

    assert "Pausing the download of Phi-3 tiny (test)…" in said
    # Paused, not lost: the part stays for the next start to resume.
    part = paths.models / "Phi-3-tiny.gguf.part"
    assert part.stat().st_size >= STALL_AFTER_BYTES
    assert not (paths.models / "Phi-3-tiny.gguf").exists()


def test_closing_mid_conversion_joins_it_and_leaves_no_half_written_file(
    qtbot, open_window, tmp_path, paths
) -> None:
    from tests.hf_checkpoint import build_phi3_checkpoint

    folder = build_phi3_checkpoint(tmp_path / "Closing-Phi-3", seed=8)
    window = open_window()
    window.convert_folder(folder)
    job = window.jobs.get("convert")
    assert job is not None
    # Close as the first progress arrives (a user quitting mid-conversion).
    job.yielded.connect(lambda _event: window.close())
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20_000)
    close(window)
    assert not window.models_controller.converting
    # Cancelled between tensors, or (the tiny checkpoint converts fast)
    # finished before the cancel: either way neither the unquantized
    # intermediate nor a partly quantized file is left, only a whole model.
    for left in paths.models.iterdir():
        assert left.name == "Closing-Phi-3-Q4_K_M.gguf"
        assert inspect_gguf(left).architecture == "phi3"


def test_closing_while_the_models_folder_is_scanned_joins_the_scan(
    qtbot, open_window, tiny_model, paths
) -> None:
    for i in range(3):
        (paths.models / f"copy-{i}.gguf").write_bytes(tiny_model.read_bytes())
    window = open_window()
    window.show_models()  # starts the scan thread; close at once
    close(window)
    assert window.jobs.keys() == []


def test_closing_while_the_engine_is_busy_waits_for_it_visibly(
    qtbot, window_with, tiny_model, monkeypatch
) -> None:
    import threading

    from app.workers import jobs
    from engine.context import ContextProgress, ContextRequest

    monkeypatch.setattr(jobs, "QUIET_WAIT_MS", 10)
    window = window_with(tiny_model)
    entered, released = threading.Event(), threading.Event()

    def slow_source(_request: ContextRequest, _cancel: threading.Event) -> ContextProgress:
        # A step that does not look at the cancel flag (a model load, a
        # prompt batch on a GPU): the engine thread cannot stop at once.
        entered.set()
        released.wait(30)
        yield from ()
        return []

    window.chat_controller.context_source = slow_source
    window.send("A question")
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    said: list[str] = []

    def on_message(text: str) -> None:
        said.append(text)
        if text == ENGINE_WAIT_TEXT:
            released.set()

    window.statusBar().messageChanged.connect(on_message)
    close(window)  # asserts the engine thread has stopped
    assert ENGINE_WAIT_TEXT in said
