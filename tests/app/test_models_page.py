from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PySide6.QtCore import Qt

from engine.synthetic_model import SCRIPTED_ANSWER
from tests.app.conftest import wait_for_answer, wait_for_model
from tests.http_server import serve_file


def write_catalog(path: Path, url: str, payload: bytes, sha256: str | None = None) -> Path:
    entry = {
        "id": "phi-3-tiny",
        "name": "Phi-3 tiny (test)",
        "url": url,
        "file": "Phi-3-tiny.gguf",
        "size_bytes": len(payload),
        "sha256": sha256 or hashlib.sha256(payload).hexdigest(),
        "native_context": 4096,
        "parameters": "0.2M",
        "license": "MIT",
        "kv_bytes_per_token": 2048,
        "publisher": "the test suite",
        "default": True,
    }
    path.write_text(json.dumps({"version": 1, "models": [entry]}))
    return path


def test_first_run_download_makes_the_model_active_and_chat_works(
    qtbot, open_window, tiny_model, tmp_path, monkeypatch
) -> None:
    payload = tiny_model.read_bytes()
    with serve_file(payload, "Phi-3-tiny.gguf") as (url, behaviour):
        monkeypatch.setenv(
            "FOOTNOTE_CATALOG", str(write_catalog(tmp_path / "c.json", url, payload))
        )
        window = open_window()
        messages: list[str] = []
        window.statusBar().messageChanged.connect(messages.append)
        assert window.pages.currentWidget() is window.welcome

        qtbot.mouseClick(window.welcome.download_button, Qt.MouseButton.LeftButton)
        assert window.pages.currentWidget() is window.models_page
        wait_for_model(qtbot, window)

    assert behaviour.requests == [""]
    assert any(m.startswith("Downloading Phi-3 tiny (test): 100%") for m in messages)
    assert any("downloaded and verified" in m for m in messages)
    installed = window.paths.models / "Phi-3-tiny.gguf"
    assert installed.read_bytes() == payload
    assert window.settings.model_path == str(installed)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.chat_page)

    window.send("Hello from a downloaded model")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].text == SCRIPTED_ANSWER

    window.show_models()

    def marked_in_use() -> bool:
        rows = window.models_page.installed_rows
        return len(rows) == 1 and rows[0].use_button.text() == "In use"

    qtbot.waitUntil(marked_in_use, timeout=10_000)
    row = window.models_page.installed_rows[0]
    assert not row.delete_button.isEnabled()  # never delete the model in use


def test_damaged_download_is_refused_and_the_app_stays_usable(
    qtbot, open_window, tiny_model, tmp_path, monkeypatch
) -> None:
    payload = tiny_model.read_bytes()
    with serve_file(payload, "Phi-3-tiny.gguf") as (url, behaviour):
        behaviour.corrupt_at = 1000
        monkeypatch.setenv(
            "FOOTNOTE_CATALOG", str(write_catalog(tmp_path / "c.json", url, payload))
        )
        window = open_window()
        window.show_models()
        row = window.models_page.rows["phi-3-tiny"]
        qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=20_000)

    assert "arrived damaged" in window.banner.text()
    assert "arrived damaged" in row.status.text()
    assert row.button.text() == "Download"
    assert list(window.paths.models.iterdir()) == []  # nothing half-downloaded is offered
    assert window.engine.model is None


def test_delete_an_installed_model(qtbot, open_window, tiny_model, paths, monkeypatch) -> None:
    spare = paths.models / "spare.gguf"
    spare.write_bytes(tiny_model.read_bytes())
    window = open_window()
    window.show_models()
    qtbot.waitUntil(lambda: len(window.models_page.installed_rows) == 1, timeout=10_000)
    monkeypatch.setattr(window, "confirm", lambda title, text: True)
    qtbot.mouseClick(window.models_page.installed_rows[0].delete_button, Qt.MouseButton.LeftButton)
    assert not spare.exists()
    qtbot.waitUntil(lambda: window.models_page.installed_rows == [], timeout=10_000)


def test_use_an_installed_model(qtbot, open_window, tiny_model, paths) -> None:
    model = paths.models / "other.gguf"
    model.write_bytes(tiny_model.read_bytes())
    window = open_window()
    window.show_models()
    qtbot.waitUntil(lambda: len(window.models_page.installed_rows) == 1, timeout=10_000)
    qtbot.mouseClick(window.models_page.installed_rows[0].use_button, Qt.MouseButton.LeftButton)
    wait_for_model(qtbot, window)
    assert window.settings.model_path == str(model)


def test_a_model_opened_from_elsewhere_is_listed_but_never_deleted_here(
    qtbot, open_window, configure, tiny_model
) -> None:
    configure(model_path=str(tiny_model), recent_models=[str(tiny_model)])
    window = open_window()
    wait_for_model(qtbot, window)
    window.show_models()

    def listed() -> bool:
        rows = window.models_page.installed_rows
        return len(rows) == 1 and rows[0].use_button.text() == "In use"

    qtbot.waitUntil(listed, timeout=10_000)
    assert window.models_page.installed_rows[0].delete_button.isHidden()
    assert tiny_model.exists()


def test_convert_a_hugging_face_folder_from_the_app(qtbot, open_window, tmp_path) -> None:
    from tests.hf_checkpoint import build_phi3_checkpoint

    folder = build_phi3_checkpoint(tmp_path / "My-Phi-3-finetune", seed=5)
    window = open_window()
    window.convert_folder(folder)
    assert window.pages.currentWidget() is window.models_page
    assert window.models_page.conversion.title.text() == "Converting My-Phi-3-finetune to Q4_K_M"
    wait_for_model(qtbot, window)
    output = window.paths.models / "My-Phi-3-finetune-Q4_K_M.gguf"
    assert window.settings.model_path == str(output)
    assert window.models_page.conversion.status.text() == f"Done: {output.name}"
    qtbot.waitUntil(lambda: not window.models_controller.converting, timeout=10_000)


def test_converting_an_unsupported_folder_explains_why(qtbot, open_window, tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["Phi3SmallForCausalLM"]}')
    window = open_window()
    window.convert_folder(tmp_path)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "block-sparse attention" in window.banner.text()
    assert "block-sparse attention" in window.models_page.conversion.status.text()
    assert list(window.paths.models.iterdir()) == []


def test_dropping_a_hugging_face_folder_converts_it(qtbot, open_window, tmp_path) -> None:
    from tests.app.test_main_window import drop_file
    from tests.hf_checkpoint import build_phi3_checkpoint

    folder = build_phi3_checkpoint(tmp_path / "Dropped-Phi-3", seed=6)
    window = open_window()
    drop_file(window, folder)
    assert window.models_page.conversion.isVisible()
    wait_for_model(qtbot, window)
    assert window.settings.model_path.endswith("Dropped-Phi-3-Q4_K_M.gguf")
    qtbot.waitUntil(lambda: not window.models_controller.converting, timeout=10_000)


def test_opening_the_app_on_a_gguf_loads_it(qtbot, open_window, tiny_model) -> None:
    window = open_window()
    window.open_path(tiny_model)  # what `footnote model.gguf` / "Open With" does
    wait_for_model(qtbot, window)
    assert window.settings.model_path == str(tiny_model)


def test_restart_resumes_an_interrupted_download_and_drops_conversion_leftovers(
    qtbot, open_window, tiny_model, tmp_path, monkeypatch, paths
) -> None:
    payload = tiny_model.read_bytes()
    # What a kill mid-download and a kill mid-conversion leave behind:
    (paths.models / "Phi-3-tiny.gguf.part").write_bytes(payload[:300_000])
    leftover = paths.models / "Mine-Q4_K_M.gguf.converting"
    leftover.write_bytes(b"GGUF half written")
    with serve_file(payload, "Phi-3-tiny.gguf") as (url, behaviour):
        monkeypatch.setenv(
            "FOOTNOTE_CATALOG", str(write_catalog(tmp_path / "c.json", url, payload))
        )
        window = open_window()
        wait_for_model(qtbot, window)
    assert behaviour.requests == ["bytes=300000-"]  # resumed, not restarted
    assert (paths.models / "Phi-3-tiny.gguf").read_bytes() == payload
    assert not leftover.exists()


def test_a_gpu_the_engine_finds_counts_towards_what_fits(qtbot, open_window) -> None:
    from engine.devices import ComputeDevice

    window = open_window()
    window.show_models()
    qtbot.waitUntil(lambda: window.engine.gpus is not None, timeout=10_000)  # the real probe
    # No GPU here: stand in for what llama.cpp reports on a machine with one.
    gpu = ComputeDevice("CUDA0", "Test GPU", "CUDA", "gpu", 40 * 10**9, 48 * 10**9)
    window.engine._on_devices_found((gpu,))
    page = window.models_page
    assert "and 40.0 GB on the GPU (Test GPU, CUDA)" in page.free_memory.text()
    assert "runs on the GPU" in page.rows["phi-4-q4_k_m"].info.text()
