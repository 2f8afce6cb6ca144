from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidModelFile, ModelNotFound, UnsupportedModel
from engine.gguf_info import inspect_gguf
from engine.synthetic_model import write_phi3_gguf


def test_reads_header_of_a_phi3_gguf(tiny_model: Path) -> None:
    info = inspect_gguf(tiny_model)
    assert info.architecture == "phi3"
    assert info.is_phi
    assert info.context_length == 4096
    assert info.quantization == "F32"
    assert info.parameter_count > 10_000
    assert info.chat_template and "<|assistant|>" in info.chat_template
    # Phi-3 ends turns with <|end|> and documents with <|endoftext|>.
    assert set(info.stop_tokens) == {"<|end|>", "<|endoftext|>"}
    assert info.display_name == "Footnote tiny Phi-3"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="No model file at"):
        inspect_gguf(tmp_path / "nope.gguf")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="is a folder"):
        inspect_gguf(tmp_path)


def test_hugging_face_folder_suggests_conversion(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="convert it to GGUF"):
        inspect_gguf(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.touch()
    with pytest.raises(InvalidModelFile, match="empty"):
        inspect_gguf(path)


def test_text_file_renamed_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("These are my notes, not a model.\n")
    with pytest.raises(InvalidModelFile, match="not a GGUF model file"):
        inspect_gguf(path)


@pytest.mark.parametrize("keep_fraction", [0.001, 0.5, 0.999])
def test_truncated_gguf(tiny_model: Path, tmp_path: Path, keep_fraction: float) -> None:
    data = tiny_model.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: max(8, int(len(data) * keep_fraction))])
    with pytest.raises(InvalidModelFile, match=r"damaged or incomplete|truncated"):
        inspect_gguf(path)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"architecture": "clip"}, "vision projector"),
        ({"name": "Phi-3-small-8k-instruct"}, "block-sparse attention"),
        ({"name": "Phi-3-vision-128k-instruct"}, "vision model"),
    ],
)
def test_known_unsupported_models_are_named(tmp_path: Path, kwargs: dict, reason: str) -> None:
    path = write_phi3_gguf(tmp_path / "unsupported.gguf", **kwargs)
    with pytest.raises(UnsupportedModel, match=reason):
        inspect_gguf(path)


def test_phi3_small_is_pointed_to_a_model_server(tmp_path: Path) -> None:
    path = write_phi3_gguf(tmp_path / "small.gguf", name="Phi-3-small-8k-instruct")
    with pytest.raises(UnsupportedModel) as caught:
        inspect_gguf(path)
    assert "Serve it with vLLM" in str(caught.value)
    assert "Use a model server" in str(caught.value) and "--server URL" in str(caught.value)


def test_phi3_file_without_chat_tokens_is_flagged(tiny_model: Path, tmp_path: Path) -> None:
    """A GGUF converted elsewhere without the checkpoint's added tokens."""
    assert inspect_gguf(tiny_model).chat_token_warning is None
    broken = write_phi3_gguf(tmp_path / "no-chat.gguf", weights="random", chat_tokens=False)
    info = inspect_gguf(broken)
    # The markers its chat template names, in the template's order.
    assert info.missing_chat_tokens == ("<|system|>", "<|end|>", "<|user|>", "<|assistant|>")
    assert info.chat_token_warning is not None
    assert "will not follow the chat format" in info.chat_token_warning
    assert "Convert the original Hugging Face folder again" in info.chat_token_warning


def test_loading_a_file_without_chat_tokens_says_so(tmp_path: Path) -> None:
    from engine.model import LoadOptions, load_model

    broken = write_phi3_gguf(
        tmp_path / "no-chat.gguf", weights="random", chat_tokens=False, name="Contoso fine-tune"
    )
    model = load_model(broken, LoadOptions(context_tokens=256))
    try:
        assert any("has no chat tokens" in note for note in model.notes)
    finally:
        model.close()


def test_a_phi3_named_file_without_chat_tokens_fails_with_the_reason(tmp_path: Path) -> None:
    """llama.cpp itself refuses it ("unordered_map::at": its Phi-3 rules look the
    tokens up by name); the user gets the reason, not that."""
    from engine.errors import ModelLoadFailed
    from engine.model import LoadOptions, load_model

    broken = write_phi3_gguf(tmp_path / "no-chat.gguf", weights="random", chat_tokens=False)
    with pytest.raises(ModelLoadFailed, match="has no chat tokens"):
        load_model(broken, LoadOptions(context_tokens=256))
