"""Hugging Face Phi-3 checkpoint → GGUF (our writer, on the ``gguf`` library)
→ quantized by llama.cpp's own quantizer.

What the checkpoint folder holds (as Microsoft publishes Phi-3):
``config.json``, ``*.safetensors``, ``tokenizer.model`` (SentencePiece),
``tokenizer.json`` / ``tokenizer_config.json`` / ``added_tokens.json``, and a
chat template (in ``tokenizer_config.json`` or, from transformers 5,
``chat_template.jinja``).

Memory: tensors are declared first and then read, converted and written one at
a time, so the model is never held twice (nor even once) in RAM.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.checkpoint_vocab import (
    TokenizerBehaviour,
    VocabularyError,
    build_vocabulary,
    llama_cpp_model_name,
    missing_chat_tokens,
    read_added_tokens,
    reference_behaviour,
)
from engine.errors import EngineError
from engine.quantize import QUANT_TYPES, QUANTIZING_SUFFIX, quantize_gguf

if TYPE_CHECKING:  # numpy loads with the first conversion, not with the window
    import numpy as np

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("Phi3ForCausalLM",)
# Known Phi-family architectures this converter refuses, with the reason.
REFUSED_ARCHITECTURES = {
    "Phi3SmallForCausalLM": (
        "Phi-3-small uses block-sparse attention, which llama.cpp cannot run. Serve it "
        "with vLLM and use that server in Settings → Use a model server (or "
        "`ask --server URL --model NAME`), or use Phi-3-mini or Phi-3-medium here."
    ),
    "Phi3VForCausalLM": "Phi-3-vision is a vision model and is not supported.",
    "Phi4MMForCausalLM": "Phi-4-multimodal is not supported; use Phi-4-mini-instruct.",
    "PhiMoEForCausalLM": (
        "Phi-3.5-MoE conversion is not supported yet; download a published GGUF of it instead."
    ),
}
OUTPUT_TYPES = ("f32", "f16", *QUANT_TYPES)  # f32/f16 are written directly
CONVERTING_SUFFIX = ".converting"


def remove_leftovers(models_dir: Path) -> list[Path]:
    """Delete what killed conversions and quantizations left behind (never a
    usable model). A download's ``*.part`` is not touched: it resumes."""
    removed = []
    for suffix in (CONVERTING_SUFFIX, QUANTIZING_SUFFIX):
        for path in models_dir.glob(f"*{suffix}"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class ConversionError(EngineError):
    """The folder cannot be converted; the message says why."""


@dataclass(frozen=True)
class ConvertProgress:
    stage: str  # "Writing GGUF" | "Quantizing"
    done: int
    total: int


@dataclass(frozen=True)
class ConvertDone:
    path: Path


@dataclass(frozen=True)
class ConvertCancelled:
    pass


ConvertEvent = ConvertProgress | ConvertDone | ConvertCancelled


def convert(
    folder: Path, output: Path, cancel: threading.Event, *, quant: str = "q4_k_m"
) -> Iterator[ConvertEvent]:
    """Convert ``folder`` to ``output``. Intermediate files are removed; the
    output appears only when complete."""
    if quant not in OUTPUT_TYPES:
        raise ConversionError(
            f"Unknown output type “{quant}”. Choose one of: {', '.join(OUTPUT_TYPES)}."
        )
    checkpoint = read_checkpoint(folder)
    direct = quant in ("f32", "f16")
    # The unquantized file is written under a name no model list matches and
    # startup cleanup removes (a conversion killed mid-way leaves only that).
    partial = output.with_name(output.name + CONVERTING_SUFFIX)
    writing = _write_gguf(checkpoint, partial, "f32" if quant == "f32" else "f16", cancel)
    try:
        for event in writing:
            yield event
            if cancel.is_set():
                writing.close()  # closes the file now, not whenever the GC runs
                yield ConvertCancelled()
                return
        if direct:
            partial.replace(output)
        else:
            yield ConvertProgress("Quantizing", 0, 1)
            quantize_gguf(partial, output, quant)
            yield ConvertProgress("Quantizing", 1, 1)
    finally:
        partial.unlink(missing_ok=True)
    yield ConvertDone(output)


# ---------------------------------------------------------------- checkpoint


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    config: dict[str, Any]
    tensor_files: list[Path]

    def get(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            if key in self.config:
                return self.config[key]
        return default


def read_checkpoint(folder: Path) -> Checkpoint:
    if not folder.is_dir():
        raise ConversionError(
            f"{folder} is not a folder. Choose the folder that holds config.json."
        )
    config_file = folder / "config.json"
    if not config_file.exists():
        raise ConversionError(
            f"{folder.name} has no config.json: it is not a Hugging Face model folder."
        )
    try:
        config = json.loads(config_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{folder.name}/config.json cannot be read: {exc}") from exc
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures else config.get("model_type", "unknown")
    if arch in REFUSED_ARCHITECTURES:
        raise ConversionError(f"{folder.name}: {REFUSED_ARCHITECTURES[arch]}")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ConversionError(
            f"{folder.name} is a {arch} model. Footnote converts Phi-3-family checkpoints "
            "(Phi3ForCausalLM: Phi-3/3.5-mini, Phi-3-medium, Phi-4-mini)."
        )
    tensor_files = sorted(folder.glob("*.safetensors"))
    if not tensor_files:
        raise ConversionError(
            f"{folder.name} has no .safetensors weights. Download the model's safetensors files."
        )
    if not (folder / "tokenizer.model").exists():
        raise ConversionError(
            f"{folder.name} has no tokenizer.model (the SentencePiece tokenizer Phi-3 uses)."
        )
    return Checkpoint(folder, config, tensor_files)


# ---------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class RopeConfig:
    theta: float
    dims: int
    original_context: int
    # LongRoPE (the 128K variants): per-dimension frequency factors.
    long_factors: list[float] | None = None
    short_factors: list[float] | None = None
    attn_factor: float = 1.0


def rope_config(ck: Checkpoint, head_dim: int) -> RopeConfig:
    """Accept both spellings: Microsoft's ``rope_scaling`` (type "longrope", or
    the older "su") with top-level ``rope_theta``, and transformers 5's
    ``rope_parameters`` (``rope_type``, with ``rope_theta`` inside)."""
    params = ck.get("rope_parameters", default=None) or {}
    scaling = ck.get("rope_scaling", default=None) or params
    theta = float(params.get("rope_theta", ck.get("rope_theta", default=10000.0)))
    partial = float(
        params.get("partial_rotary_factor", ck.get("partial_rotary_factor", default=1.0))
    )
    max_ctx = int(ck.get("max_position_embeddings", default=4096))
    orig = int(
        scaling.get("original_max_position_embeddings")
        or ck.get("original_max_position_embeddings", default=max_ctx)
    )
    dims = int(head_dim * partial)
    kind = str(scaling.get("type") or scaling.get("rope_type") or "default").lower()
    if kind in ("default", "none", ""):
        return RopeConfig(theta, dims, orig)
    if kind not in ("longrope", "su"):
        raise ConversionError(f"RoPE scaling “{kind}” is not supported by the converter.")
    long_f, short_f = scaling.get("long_factor"), scaling.get("short_factor")
    if not long_f or not short_f or len(long_f) != dims // 2 or len(short_f) != dims // 2:
        raise ConversionError(
            f"The LongRoPE factors in config.json must each have {dims // 2} values "
            "(half the rotary dimensions)."
        )
    scale = max_ctx / orig
    attn = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1 else 1.0
    return RopeConfig(
        theta, dims, orig, [float(x) for x in long_f], [float(x) for x in short_f], attn
    )


# ---------------------------------------------------------------- writing


def _write_gguf(
    ck: Checkpoint, path: Path, dtype: str, cancel: threading.Event
) -> Generator[ConvertProgress, None, None]:
    import gguf
    import numpy as np

    c = ck.get
    n_embd, n_head = int(c("hidden_size")), int(c("num_attention_heads"))
    n_layer = int(c("num_hidden_layers"))
    head_dim = int(c("head_dim", default=n_embd // n_head))
    rope = rope_config(ck, head_dim)

    behaviour = reference_behaviour(ck.folder)
    writer = gguf.GGUFWriter(str(path), "phi3")
    writer.add_name(llama_cpp_model_name(ck.folder.name, behaviour))
    writer.add_context_length(int(c("max_position_embeddings", default=4096)))
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(int(c("intermediate_size")))
    writer.add_block_count(n_layer)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(int(c("num_key_value_heads", default=n_head)))
    writer.add_layer_norm_rms_eps(float(c("rms_norm_eps", default=1e-5)))
    writer.add_rope_dimension_count(rope.dims)
    writer.add_rope_freq_base(rope.theta)
    writer.add_rope_scaling_orig_ctx_len(rope.original_context)
    if rope.long_factors is not None:
        writer.add_rope_scaling_attn_factors(rope.attn_factor)
    window = c("sliding_window")
    if isinstance(window, int) and window > 0:
        writer.add_sliding_window(window)
    writer.add_file_type(
        gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16
    )
    _add_vocabulary(writer, ck, behaviour)

    tensors = list(_tensor_plan(ck, n_layer, rope, dtype))
    for name, shape, np_dtype, _load in tensors:
        item = np.dtype(np_dtype)
        writer.add_tensor_info(name, shape, item, int(np.prod(shape)) * item.itemsize)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for index, (_name, _shape, np_dtype, load) in enumerate(tensors, start=1):
            if cancel.is_set():
                return
            writer.write_tensor_data(load().astype(np_dtype, copy=False))
            yield ConvertProgress("Writing GGUF", index, len(tensors))
    finally:
        writer.close()


TensorPlan = tuple[str, tuple[int, ...], type, Callable[[], "np.ndarray"]]


def _tensor_plan(
    ck: Checkpoint, n_layer: int, rope: RopeConfig, dtype: str
) -> Iterator[TensorPlan]:
    """(gguf name, numpy shape, dtype, loader) for every tensor, in file order.
    Loaders read one tensor when called: nothing is kept in memory."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.PHI3, n_layer)
    float_type = np.float32 if dtype == "f32" else np.float16
    seen: set[str] = set()
    embed: tuple[Path, str] | None = None
    for file in ck.tensor_files:
        with safe_open(str(file), framework="pt") as handle:
            for hf_name in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
                if gguf_name is None:
                    if hf_name.endswith("rotary_emb.inv_freq"):
                        continue  # recomputed by llama.cpp
                    raise ConversionError(f"Unexpected tensor {hf_name} in {file.name}.")
                shape = tuple(handle.get_slice(hf_name).get_shape())
                # Norms stay F32 (llama.cpp expects it); matrices take the output type.
                kind = np.float32 if len(shape) == 1 else float_type
                if gguf_name == "token_embd.weight":
                    embed = (file, hf_name)
                seen.add(gguf_name)
                yield gguf_name, shape, kind, _loader(file, hf_name)
    if "output.weight" not in seen and embed is not None:  # tied embeddings (Phi-4-mini)
        shape = tuple(_shape_of(*embed))
        yield "output.weight", shape, float_type, _loader(*embed)
    if rope.long_factors is not None and rope.short_factors is not None:
        long_f = np.array(rope.long_factors, dtype=np.float32)
        short_f = np.array(rope.short_factors, dtype=np.float32)
        yield "rope_factors_long.weight", long_f.shape, np.float32, lambda: long_f
        yield "rope_factors_short.weight", short_f.shape, np.float32, lambda: short_f


def _loader(file: Path, name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from safetensors import safe_open

        # framework="pt": Phi-3 ships bfloat16, which numpy cannot represent.
        with safe_open(str(file), framework="pt") as handle:
            return handle.get_tensor(name).float().numpy()

    return load


def _shape_of(file: Path, name: str) -> list[int]:
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as handle:
        return list(handle.get_slice(name).get_shape())


# ---------------------------------------------------------------- vocabulary


def _add_vocabulary(writer: Any, ck: Checkpoint, behaviour: TokenizerBehaviour) -> None:
    """SentencePiece pieces + Phi-3's added tokens (from whichever tokenizer
    files hold them), padded to the model's vocab size; special tokens and the
    chat template from the tokenizer files. Refuses a vocabulary without the
    chat tokens: such a model converts but can never chat."""
    from gguf.vocab import SpecialVocab

    n_vocab = int(ck.get("vocab_size", default=0)) or _sentencepiece_size(ck.folder)
    try:
        vocab = build_vocabulary(ck.folder, n_vocab)
    except VocabularyError as exc:
        raise ConversionError(f"{ck.folder.name}: {exc.message}") from exc

    specials = SpecialVocab(ck.folder, n_vocab=n_vocab)
    if specials.chat_template is None:
        template_file = ck.folder / "chat_template.jinja"
        if template_file.exists():
            specials.chat_template = template_file.read_text("utf-8")
    template = specials.chat_template if isinstance(specials.chat_template, str) else None
    missing = missing_chat_tokens(vocab, template)
    if missing:
        raise ConversionError(
            f"{ck.folder.name}: the tokenizer files do not define the chat tokens "
            f"{', '.join(missing)}, so the converted model could not follow its chat format "
            "or stop. Copy tokenizer.json and tokenizer_config.json (or added_tokens.json) "
            "from the original model into the folder."
        )
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.pieces)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    # As the checkpoint's tokenizer does it (see reference_behaviour).
    writer.add_add_space_prefix(behaviour.space_after_special)
    specials.add_special_token["bos"] = behaviour.add_bos
    specials.add_to_gguf(writer, quiet=True)


def _sentencepiece_size(folder: Path) -> int:
    from sentencepiece import SentencePieceProcessor

    processor = SentencePieceProcessor()
    processor.LoadFromFile(str(folder / "tokenizer.model"))
    # No vocab_size in config.json: as many as the pieces and added tokens need.
    return max(int(processor.vocab_size()), max(read_added_tokens(folder), default=-1) + 1)
