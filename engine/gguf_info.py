"""Read and validate a GGUF file's header before llama.cpp sees it.

llama.cpp's own errors for a bad file are terse ("failed to load model") and
some damaged files crash it outright, so we check what we can in Python first:
existence, magic bytes, a parseable header, tensor data that fits in the file,
and architectures we know llama.cpp cannot run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidModelFile, ModelNotFound, UnsupportedModel
from engine.gguf_header import GGUFHeader, HeaderError, read_header

GGUF_MAGIC = b"GGUF"

# Stop markers used by the chat models llama.cpp runs; whichever of them the
# vocabulary holds ends a turn.
END_OF_TURN_TOKENS = ("<|end|>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "<end_of_turn>")

PHI_ARCHITECTURES = frozenset({"phi2", "phi3", "phimoe"})
# Phi-3-family chat models need these as single (control) tokens; a file
# converted without its tokenizer's added tokens has padding in their place.
PHI3_CHAT_TOKENS = ("<|user|>", "<|assistant|>", "<|end|>")
_CHAT_MARKER = re.compile(r"<\|[A-Za-z0-9_]+\|>")
# gguf.TokenType CONTROL and USER_DEFINED: what llama.cpp parses as one token.
_SPECIAL_TOKEN_TYPES = frozenset({3, 4})
# The only arrays of the header we read (the rest, such as BPE merges, are skipped).
_ARRAYS_USED = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type")

_SUPPORTED_SUMMARY = (
    "Footnote runs Phi-2, Phi-3 and Phi-3.5 (mini, medium, MoE), Phi-4 and Phi-4-mini GGUF files."
)

# Architectures (or model names) llama.cpp is known not to run, with the reason.
_KNOWN_UNSUPPORTED = {
    "phi3small": (
        "Phi-3-small uses block-sparse attention, which llama.cpp cannot run. Serve it "
        "with vLLM and use that server in Settings → Use a model server (or "
        "`ask --server URL --model NAME`), or use Phi-3-mini or Phi-3-medium here."
    ),
    "phi3v": (
        "Phi-3-vision is a vision model and is not supported. Use Phi-3-mini or Phi-3.5-mini."
    ),
    "clip": (
        "This is a vision projector (mmproj) file, not a chat model. "
        "Open the model's main .gguf file instead."
    ),
}


@dataclass(frozen=True)
class ModelInfo:
    """What the header of a GGUF file says about the model inside."""

    path: Path
    file_size_bytes: int
    architecture: str
    name: str
    context_length: int
    parameter_count: int
    quantization: str
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool
    stop_tokens: tuple[str, ...] = field(default=())
    # f16 KV cache per token of context: 2 (K and V) x layers x kv heads x head dim x 2 bytes.
    kv_bytes_per_token: int = 0
    layer_count: int = 0
    # Chat markers the model needs but its vocabulary lacks (see chat_token_warning).
    missing_chat_tokens: tuple[str, ...] = field(default=())

    @property
    def is_phi(self) -> bool:
        return self.architecture in PHI_ARCHITECTURES

    @property
    def display_name(self) -> str:
        return self.name or self.path.stem

    @property
    def chat_token_warning(self) -> str | None:
        """A sentence for the user when the model cannot see its chat format."""
        if not self.missing_chat_tokens:
            return None
        return (
            f"{self.path.name} has no chat tokens ({', '.join(self.missing_chat_tokens)}): it "
            "was converted without its tokenizer's added tokens, so it will not follow the chat "
            "format or stop by itself. Convert the original Hugging Face folder again with "
            "Footnote, or download a published GGUF of this model."
        )


def inspect_gguf(path: str | Path) -> ModelInfo:
    """Validate ``path`` and describe the model, or raise a typed, readable error."""
    path = Path(path).expanduser()
    _check_file(path)
    header, sizes = _read_header(path)
    return _describe(path, header, sizes)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelNotFound(
            f"No model file at {path}. It may have been moved or deleted: "
            "open it again with “Open GGUF…”."
        )
    if path.is_dir():
        hint = (
            " It looks like a Hugging Face checkpoint: convert it to GGUF first."
            if (path / "config.json").exists()
            else " Choose the .gguf file inside it."
        )
        raise ModelNotFound(f"{path.name} is a folder, not a model file.{hint}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidModelFile(
            f"{path.name} is empty (0 bytes): the download or copy did not finish. "
            "Download or copy it again."
        )
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise InvalidModelFile(
            f"{path.name} is not a GGUF model file. {_SUPPORTED_SUMMARY} "
            "(Hugging Face .safetensors weights must be converted to GGUF first.)",
            detail=f"first bytes: {magic!r}",
        )


def _read_header(path: Path) -> tuple[GGUFHeader, list[tuple[str, int]]]:
    """The header, and each tensor's (type name, bytes); damage is a typed error."""
    import gguf

    size = path.stat().st_size
    try:
        header = read_header(path, arrays=_ARRAYS_USED)
        types = [gguf.GGMLQuantizationType(t.type_id) for t in header.tensors]
    except (HeaderError, ValueError, OSError) as exc:
        raise InvalidModelFile(
            f"{path.name} is damaged or incomplete ({size:,} bytes): its GGUF header cannot be "
            "read. Download or copy it again.",
            detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    sizes: list[tuple[str, int]] = []
    data_end = header.data_offset
    for tensor, kind in zip(header.tensors, types, strict=True):
        block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
        n_bytes = tensor.n_elements * block_bytes // block
        sizes.append((kind.name, n_bytes))
        data_end = max(data_end, header.data_offset + tensor.offset + n_bytes)
    if data_end > size:
        raise InvalidModelFile(
            f"{path.name} is truncated: it holds {size:,} bytes but its header describes "
            f"{data_end:,}. The download or copy did not finish; download it again."
        )
    return header, sizes


def _describe(path: Path, header: GGUFHeader, sizes: list[tuple[str, int]]) -> ModelInfo:
    value = header.fields.get

    arch = str(value("general.architecture") or "")
    name = str(value("general.name") or "")
    _refuse_known_unsupported(path, arch, name)

    tokens = value("tokenizer.ggml.tokens")
    token_list: list[str] = [str(t) for t in tokens] if isinstance(tokens, list) else []

    def token_at(key: str) -> str | None:
        idx = value(key)
        if isinstance(idx, int) and 0 <= idx < len(token_list):
            return token_list[idx]
        return None

    bos, eos, eot = (
        token_at("tokenizer.ggml.bos_token_id"),
        token_at("tokenizer.ggml.eos_token_id"),
        token_at("tokenizer.ggml.eot_token_id"),
    )
    present = set(token_list)
    stops = [t for t in (eot, eos) if t]
    stops += [t for t in END_OF_TURN_TOKENS if t in present and t not in stops]

    template = value("tokenizer.chat_template")
    types = value("tokenizer.ggml.token_type")
    add_bos = value("tokenizer.ggml.add_bos_token")
    ctx = value(f"{arch}.context_length")
    layers = value(f"{arch}.block_count")
    return ModelInfo(
        kv_bytes_per_token=_kv_bytes_per_token(value, arch),
        layer_count=layers if isinstance(layers, int) else 0,
        path=path,
        file_size_bytes=path.stat().st_size,
        architecture=arch,
        name=name,
        context_length=int(ctx) if isinstance(ctx, int) else 0,
        parameter_count=sum(t.n_elements for t in header.tensors),
        quantization=_quantization(sizes, value("general.file_type")),
        chat_template=str(template) if template else None,
        bos_token=bos,
        eos_token=eos,
        add_bos_token=bool(add_bos) if add_bos is not None else True,
        stop_tokens=tuple(stops),
        missing_chat_tokens=_missing_chat_tokens(
            arch,
            token_list,
            [int(t) for t in types if isinstance(t, int)] if isinstance(types, list) else [],
            template,
        ),
    )


def _missing_chat_tokens(
    arch: str, tokens: list[str], types: list[int], template: object
) -> tuple[str, ...]:
    """Chat markers named by the template (or Phi-3's, for a Phi-3 file without
    one) that are not single special tokens in the vocabulary."""
    needed = _CHAT_MARKER.findall(template) if isinstance(template, str) else []
    if arch in ("phi3", "phimoe") and not needed:
        needed = list(PHI3_CHAT_TOKENS)
    if not needed:
        return ()
    special = {
        token for token, kind in zip(tokens, types, strict=False) if kind in _SPECIAL_TOKEN_TYPES
    }
    return tuple(dict.fromkeys(t for t in needed if t not in special))


def _kv_bytes_per_token(value: Callable[[str], object], arch: str) -> int:
    def number(key: str) -> int:
        v = value(f"{arch}.{key}")
        return int(v) if isinstance(v, int) else 0

    layers, heads, embd = (
        number("block_count"),
        number("attention.head_count"),
        number("embedding_length"),
    )
    kv_heads = number("attention.head_count_kv") or heads
    head_dim = number("attention.key_length") or (embd // heads if heads else 0)
    return 2 * layers * kv_heads * head_dim * 2


def _refuse_known_unsupported(path: Path, arch: str, name: str) -> None:
    lowered = name.lower().replace("_", "-")
    if "phi-3-small" in lowered or "phi-3.5-small" in lowered:
        arch = "phi3small"
    elif "phi-3-vision" in lowered or "phi-3.5-vision" in lowered:
        arch = "phi3v"
    reason = _KNOWN_UNSUPPORTED.get(arch)
    if reason:
        raise UnsupportedModel(f"{path.name}: {reason}")


def _quantization(sizes: list[tuple[str, int]], file_type: object) -> str:
    import gguf

    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (or unknown) file type: report the type most of the weight bytes use.
    by_type: Counter[str] = Counter()
    for type_name, n_bytes in sizes:
        by_type[type_name] += n_bytes
    return by_type.most_common(1)[0][0] if by_type else "unknown"


def describe_unsupported_architecture(path: Path, architecture: str) -> UnsupportedModel:
    """The error for an architecture llama.cpp reported it does not know."""
    return UnsupportedModel(
        f"{path.name} uses the “{architecture}” architecture, which the llama.cpp built into "
        f"Footnote cannot run. {_SUPPORTED_SUMMARY}"
    )
