"""Hugging Face Phi-3 → GGUF → quantized, checked against transformers' logits."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.convert import ConversionError, ConvertCancelled, ConvertDone, ConvertProgress, convert
from engine.events import Finished, Token
from engine.gguf_info import inspect_gguf
from engine.model import LoadOptions, load_model
from engine.turn import ChatSession, SamplingParams, TurnRequest
from tests.hf_checkpoint import build_phi3_checkpoint

PROMPT_IDS = [1, 50, 60, 70, 80, 90, 100, 33, 44, 200, 7, 300]
MAX_LOGIT_DIFF = 1e-3


@pytest.fixture(scope="session")
def hf_phi3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_phi3_checkpoint(tmp_path_factory.mktemp("hf") / "Phi-3-tiny-4k", seed=1)


@pytest.fixture(scope="session")
def hf_phi3_no_added_tokens_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout transformers 5 saves: added tokens only in tokenizer.json
    and tokenizer_config.json."""
    return build_phi3_checkpoint(
        tmp_path_factory.mktemp("hf") / "Phi-3-tiny-4k-t5", seed=1, added_tokens_json=False
    )


@pytest.fixture(scope="session")
def hf_phi3_longrope(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_phi3_checkpoint(
        tmp_path_factory.mktemp("hf") / "Phi-3-tiny-128k", longrope=True, seed=2
    )


def run(folder: Path, output: Path, quant: str) -> list:
    return list(convert(folder, output, threading.Event(), quant=quant))


def logits_difference(folder: Path, gguf_path: Path) -> float:
    import llama_cpp
    import torch
    from transformers import Phi3ForCausalLM

    # f32 KV cache: llama.cpp's default f16 cache alone costs ~1e-3 relative.
    llm = llama_cpp.Llama(
        str(gguf_path),
        n_ctx=256,
        logits_all=True,
        verbose=False,
        type_k=llama_cpp.GGML_TYPE_F32,
        type_v=llama_cpp.GGML_TYPE_F32,
    )
    try:
        llm.eval(PROMPT_IDS)
        ours = np.array(llm.scores[: len(PROMPT_IDS)])
    finally:
        llm.close()
    model = Phi3ForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = model(torch.tensor([PROMPT_IDS])).logits[0].numpy()
    assert np.abs(theirs).max() > 1.0  # a comparison of near-zero logits would prove little
    return float(np.abs(ours - theirs).max())


def test_f32_conversion_matches_transformers_logits(hf_phi3: Path, tmp_path: Path) -> None:
    out = tmp_path / "phi3.gguf"
    events = run(hf_phi3, out, "f32")
    assert isinstance(events[-1], ConvertDone)
    assert any(isinstance(e, ConvertProgress) for e in events)
    assert logits_difference(hf_phi3, out) < MAX_LOGIT_DIFF
    info = inspect_gguf(out)
    assert info.architecture == "phi3"
    assert info.chat_template and "<|assistant|>" in info.chat_template
    assert "<|end|>" in info.stop_tokens


CHAT = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "Hello world, how are you today?"},
    {"role": "assistant", "content": "The model runs on this computer."},
    {"role": "user", "content": "Tell me about GGUF files and quantization."},
]


def chat_prompt_tokens(folder: Path, gguf_path: Path) -> tuple[list[int], list[int]]:
    """A rendered chat prompt tokenized by transformers and by llama.cpp."""
    import llama_cpp
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    theirs = tokenizer(text, add_special_tokens=True)["input_ids"]
    llm = llama_cpp.Llama(str(gguf_path), n_ctx=256, verbose=False, vocab_only=True)
    try:
        ours = llm.tokenize(text.encode(), add_bos=True, special=True)
    finally:
        llm.close()
    return ours, list(theirs)


@pytest.mark.parametrize("layout", ["added_tokens.json", "transformers 5 (no added_tokens.json)"])
def test_both_tokenizer_layouts_convert_with_chat_tokens(
    layout: str, hf_phi3: Path, hf_phi3_no_added_tokens_json: Path, tmp_path: Path
) -> None:
    folder = hf_phi3 if layout == "added_tokens.json" else hf_phi3_no_added_tokens_json
    assert (folder / "added_tokens.json").exists() == (layout == "added_tokens.json")
    out = tmp_path / "phi3.gguf"
    run(folder, out, "f32")
    ours, theirs = chat_prompt_tokens(folder, out)
    assert ours == theirs  # token by token, special tokens as single ids
    info = inspect_gguf(out)
    assert info.missing_chat_tokens == ()
    assert info.chat_token_warning is None
    assert {"<|end|>", "<|endoftext|>"} <= set(info.stop_tokens)
    assert logits_difference(folder, out) < MAX_LOGIT_DIFF


def test_tokenizer_without_chat_tokens_is_refused(
    hf_phi3_no_added_tokens_json: Path, tmp_path: Path
) -> None:
    """Only tokenizer.model left: the result could never chat, so no file is made."""
    bare = tmp_path / "bare"
    shutil.copytree(hf_phi3_no_added_tokens_json, bare)
    (bare / "tokenizer.json").unlink()
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("added_tokens_decoder", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match=r"do not define the chat tokens <\|user\|>"):
        run(bare, tmp_path / "out.gguf", "f16")
    assert not list(tmp_path.glob("out.gguf*"))


def test_tokenizer_files_that_disagree_are_refused(hf_phi3: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(hf_phi3, broken)
    added = json.loads((broken / "added_tokens.json").read_text())
    added["<|end|>"], added["<|user|>"] = added["<|user|>"], added["<|end|>"]
    (broken / "added_tokens.json").write_text(json.dumps(added))
    with pytest.raises(ConversionError, match="tokenizer files disagree"):
        run(broken, tmp_path / "out.gguf", "f16")


def test_longrope_conversion_matches_transformers_logits(
    hf_phi3_longrope: Path, tmp_path: Path
) -> None:
    """transformers 5 writes rope_parameters (rope_type, rope_theta inside)."""
    assert "rope_parameters" in json.loads((hf_phi3_longrope / "config.json").read_text())
    out = tmp_path / "phi3-128k.gguf"
    run(hf_phi3_longrope, out, "f32")
    assert logits_difference(hf_phi3_longrope, out) < MAX_LOGIT_DIFF
    assert inspect_gguf(out).context_length == 131072


def test_microsofts_rope_scaling_spelling_is_accepted(
    hf_phi3_longrope: Path, tmp_path: Path
) -> None:
    """Microsoft's repositories publish rope_scaling (type "su"/"longrope") and a
    top-level rope_theta; the GGUF must come out the same."""
    legacy = tmp_path / "legacy"
    shutil.copytree(hf_phi3_longrope, legacy)
    config = json.loads((legacy / "config.json").read_text())
    params = config.pop("rope_parameters")
    config["rope_theta"] = params["rope_theta"]
    config["rope_scaling"] = {
        "type": "su",
        "long_factor": params["long_factor"],
        "short_factor": params["short_factor"],
    }
    (legacy / "config.json").write_text(json.dumps(config))
    new_out, old_out = tmp_path / "new.gguf", tmp_path / "old.gguf"
    run(hf_phi3_longrope, new_out, "f32")
    run(legacy, old_out, "f32")
    assert rope_settings(new_out) == rope_settings(old_out)
    assert rope_settings(new_out)["phi3.rope.scaling.attn_factor"] > 1.0


def rope_settings(path: Path) -> dict[str, object]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    found: dict[str, object] = {
        name: reader.get_field(name).contents()  # type: ignore[union-attr]
        for name in reader.fields
        if ".rope." in name or name.endswith("context_length")
    }
    for tensor in reader.tensors:
        if tensor.name.startswith("rope_factors"):
            found[tensor.name] = [round(float(x), 6) for x in tensor.data]
    return found


def test_q4_k_m_output_loads_and_generates(hf_phi3: Path, tmp_path: Path) -> None:
    out = tmp_path / "phi3-q4.gguf"
    run(hf_phi3, out, "q4_k_m")
    assert not list(tmp_path.glob("*.quantizing")) and not list(tmp_path.glob("*.converting"))
    model = load_model(out, LoadOptions(seed=3))
    try:
        request = TurnRequest("", [], "Hello", SamplingParams(max_answer_tokens=8))
        events = list(ChatSession(model).run(request, threading.Event()))
    finally:
        model.close()
    end = events[-1]
    assert isinstance(end, Finished), end
    assert end.stats.generated_tokens >= 1 or not any(isinstance(e, Token) for e in events)
    assert inspect_gguf(out).quantization == "Q4_K_M"


@pytest.mark.parametrize(
    ("architecture", "reason"),
    [
        ("Phi3SmallForCausalLM", "block-sparse attention"),
        ("Phi3VForCausalLM", r"vision"),
        ("LlamaForCausalLM", r"converts Phi-3-family checkpoints"),
    ],
)
def test_unsupported_architectures_are_refused_with_the_reason(
    tmp_path: Path, architecture: str, reason: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    with pytest.raises(ConversionError, match=reason):
        run(tmp_path, tmp_path / "out.gguf", "f16")


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"no config\.json"):
        run(tmp_path, tmp_path / "out.gguf", "f16")


def test_cancel_leaves_no_files(hf_phi3: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    events = []
    for event in convert(hf_phi3, tmp_path / "out.gguf", cancel, quant="q4_k_m"):
        events.append(event)
        cancel.set()
    assert isinstance(events[-1], ConvertCancelled)
    assert list(tmp_path.iterdir()) == []
