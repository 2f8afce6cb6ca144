from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidModelFile, UnsupportedModel
from engine.model import LoadOptions, LocalModel, load_model
from engine.synthetic_model import write_phi3_gguf


def test_loads_with_explicit_context_and_threads(model: LocalModel) -> None:
    assert model.context_tokens == 4096
    assert model.threads >= 1
    assert model.backend in {"CPU", "CUDA", "Metal", "Vulkan", "ROCm", "SYCL", "GPU"}
    assert "<|end|>" in model.info.stop_tokens
    assert model.notes == ()


def test_context_never_exceeds_what_the_model_was_trained_for(tiny_model: Path) -> None:
    loaded = load_model(tiny_model, LoadOptions(context_tokens=100_000))
    try:
        assert loaded.context_tokens == 4096
        assert any("Context lowered" in note for note in loaded.notes)
    finally:
        loaded.close()


def test_context_zero_is_not_passed_to_llama_cpp(tiny_model: Path) -> None:
    loaded = load_model(tiny_model, LoadOptions(context_tokens=0))
    try:
        assert 0 < loaded.context_tokens <= 4096
    finally:
        loaded.close()


def test_stop_tokens_end_the_turn(model: LocalModel) -> None:
    (end,) = model.tokenize("<|end|>", add_bos=False)
    (user,) = model.tokenize("<|user|>", add_bos=False)
    assert model.is_end_of_turn(end)
    assert not model.is_end_of_turn(user)


def test_architecture_llama_cpp_does_not_know_is_refused_by_name(tmp_path: Path) -> None:
    path = write_phi3_gguf(tmp_path / "alien.gguf", architecture="footnotenet")
    with pytest.raises(UnsupportedModel, match="“footnotenet” architecture"):
        load_model(path)


def test_corrupt_file_is_refused_before_llama_cpp(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(InvalidModelFile):
        load_model(path)
