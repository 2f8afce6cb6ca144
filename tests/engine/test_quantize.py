from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.events import Finished
from engine.gguf_info import inspect_gguf
from engine.model import load_model
from engine.quantize import QuantizationFailed, quantize_gguf
from engine.synthetic_model import SCRIPTED_ANSWER
from engine.turn import ChatSession, TurnRequest


def test_quantized_model_loads_and_answers(quantized_model: Path) -> None:
    """Runs llama.cpp's quantized kernels, not just F32 ones. (A native build
    on an AMX-advertising VM crashed here with SIGILL.)"""
    assert inspect_gguf(quantized_model).quantization == "Q8_0"
    model = load_model(quantized_model)
    try:
        events = list(ChatSession(model).run(TurnRequest("", [], "hello"), threading.Event()))
    finally:
        model.close()
    end = events[-1]
    assert isinstance(end, Finished)
    assert end.text == SCRIPTED_ANSWER  # Q8_0 keeps the scripted margins


def test_unknown_quantization_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizationFailed, match="Unknown quantization"):
        quantize_gguf(tiny_model, tmp_path / "x.gguf", "q3_weird")


def test_failed_quantization_leaves_no_partial_file(tmp_path: Path) -> None:
    source = tmp_path / "broken.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 100)
    target = tmp_path / "out.gguf"
    with pytest.raises(QuantizationFailed):
        quantize_gguf(source, target, "q8_0")
    assert not target.exists()
    assert not (tmp_path / "out.gguf.quantizing").exists()
