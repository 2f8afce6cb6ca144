from __future__ import annotations

from pathlib import Path

import pytest

from engine import hardware
from engine.errors import InvalidModelFile, ModelLoadFailed, UnsupportedModel
from engine.model import MIN_CONTEXT_TOKENS, LoadOptions, LocalModel, load_model
from engine.synthetic_model import ModelShape, write_phi3_gguf


@pytest.fixture(scope="module")
def long_trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained for 8192 tokens: unlike the tiny model's 4096 (also the
    default context), a context that came from the file instead of from
    LoadOptions is visible."""
    return write_phi3_gguf(
        tmp_path_factory.mktemp("long") / "long-phi3.gguf",
        shape=ModelShape(n_embd=64, n_layer=2, n_head=4, n_ff=128, n_ctx_train=8192),
    )


def test_loads_with_explicit_context_and_threads(long_trained_model: Path) -> None:
    # Neither the training context (8192), the default (4096) nor
    # llama-cpp-python's own default (512).
    loaded = load_model(long_trained_model, LoadOptions(context_tokens=2048, threads=1))
    try:
        assert loaded.context_tokens == 2048
        assert loaded.threads == 1
        assert loaded.llama.n_ctx() == 2048
    finally:
        loaded.close()


def test_loads_the_tiny_model_with_phi3_stop_tokens(model: LocalModel) -> None:
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


def test_context_zero_is_not_passed_to_llama_cpp(long_trained_model: Path) -> None:
    # llama.cpp reads n_ctx=0 as "the training context": 8192 here, and
    # 128K (48 GiB of KV cache) for Phi-3-mini-128k.
    loaded = load_model(long_trained_model, LoadOptions(context_tokens=0))
    try:
        assert loaded.context_tokens == MIN_CONTEXT_TOKENS
    finally:
        loaded.close()


def test_stop_tokens_end_the_turn(model: LocalModel) -> None:
    (end,) = model.tokenize("<|end|>", add_bos=False, special=True)
    (user,) = model.tokenize("<|user|>", add_bos=False, special=True)
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


def test_kv_cache_size_is_read_from_the_header(model: LocalModel) -> None:
    # tiny model: 2 layers x 4 kv heads x head dim 16, K and V, 2 bytes each
    assert model.info.kv_bytes_per_token == 2 * 2 * 4 * 16 * 2


def test_context_is_lowered_to_fit_free_memory(tiny_model: Path, monkeypatch) -> None:
    from engine import model as model_module
    from engine.gguf_info import inspect_gguf

    info = inspect_gguf(tiny_model)
    free = (
        info.file_size_bytes + model_module.RUNTIME_OVERHEAD_BYTES + 1024 * info.kv_bytes_per_token
    )
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: free)
    # On the CPU: with a GPU build, the GPU's free memory would count too.
    loaded = load_model(tiny_model, LoadOptions(context_tokens=4096, gpu_layers=0))
    try:
        assert loaded.context_tokens == 1024
        assert any("to fit in the" in note for note in loaded.notes)
    finally:
        loaded.close()


def test_not_enough_memory_is_refused_with_what_is_needed(tiny_model: Path, monkeypatch) -> None:
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 10_000_000)
    with pytest.raises(ModelLoadFailed, match=r"Not enough free memory .* choose a smaller model"):
        load_model(tiny_model, LoadOptions(gpu_layers=0))


def test_8bit_kv_cache_with_flash_attention_still_answers(tmp_path: Path) -> None:
    import threading

    from engine.events import Finished
    from engine.synthetic_model import SCRIPTED_ANSWER, ModelShape
    from engine.turn import ChatSession, TurnRequest

    # q8_0 blocks hold 32 values: the head dimension must be a multiple of 32.
    shape = ModelShape(n_embd=128, n_layer=2, n_head=4, n_ff=256, n_ctx_train=4096)
    path = write_phi3_gguf(tmp_path / "head32.gguf", shape=shape)
    loaded = load_model(path, LoadOptions(kv_cache_8bit=True))
    try:
        assert loaded.notes == ()
        events = list(ChatSession(loaded).run(TurnRequest("", [], "hi"), threading.Event()))
    finally:
        loaded.close()
    assert isinstance(events[-1], Finished)
    assert events[-1].text == SCRIPTED_ANSWER


def test_8bit_kv_cache_falls_back_when_the_model_cannot_use_it(tiny_model: Path) -> None:
    loaded = load_model(tiny_model, LoadOptions(kv_cache_8bit=True))  # head dim 16
    try:
        assert any("cannot use the 8-bit KV cache" in note for note in loaded.notes)
        assert loaded.context_tokens == 4096
    finally:
        loaded.close()


def _gpu_build(monkeypatch) -> None:
    """Stand in for a GPU build (CI has none): llama.cpp's CPU build accepts and
    ignores a layer count, so every load below is real."""
    from engine import model as model_module
    from engine.hardware import BuildInfo

    build = BuildInfo(backend="CUDA", gpu_offload=True, system_info="", gpus=())
    monkeypatch.setattr(model_module, "detect_build", lambda: build)


def _refuse_gpu_layers_above(limit: int, monkeypatch) -> list[int]:
    from engine import model as model_module

    real_load, tried = model_module._load_llama, []

    def load(info, context, threads, gpu_layers, options):
        tried.append(gpu_layers)
        if gpu_layers < 0 or gpu_layers > limit:
            raise ModelLoadFailed("out of GPU memory", detail="cudaMalloc failed")
        return real_load(info, context, threads, gpu_layers, options)

    monkeypatch.setattr(model_module, "_load_llama", load)
    return tried


def test_a_gpu_without_room_for_the_plan_gets_half_the_layers(tiny_model, monkeypatch) -> None:
    _gpu_build(monkeypatch)
    tried = _refuse_gpu_layers_above(1, monkeypatch)
    loaded = load_model(tiny_model)  # no GPU figure: all 2 layers are tried first
    try:
        assert tried == [-1, 1]
        assert loaded.gpu_layers == 1
        assert loaded.backend_label == "CUDA · 1 of 2 layers on the GPU"
        assert any("1 of 2 layers run on the CUDA GPU" in note for note in loaded.notes)
    finally:
        loaded.close()


def test_a_gpu_that_refuses_everything_leaves_the_cpu(tiny_model, monkeypatch) -> None:
    _gpu_build(monkeypatch)
    tried = _refuse_gpu_layers_above(0, monkeypatch)
    loaded = load_model(tiny_model)
    try:
        assert tried == [-1, 1, 0]
        assert loaded.gpu_layers == 0 and loaded.backend_label.startswith("CPU")
        assert "Running on the CPU: loading on the CUDA GPU failed." in loaded.notes
    finally:
        loaded.close()
