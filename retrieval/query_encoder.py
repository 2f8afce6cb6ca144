"""Embed one short query with numpy alone, for a command-line search that
answers in a second instead of fifteen.

``python -m app search`` spent almost all of its 11-16 s importing torch,
transformers and sentence-transformers (~10 s on the 2-core VM under load)
and loading the model, to embed a query of a dozen word pieces. The query's
vector needs none of that: all-MiniLM-L6-v2 is a 6-layer BERT, and its
forward pass for one short text is a few small matrix products (~5 ms in
numpy). This module runs exactly that pass, from the same files
sentence-transformers reads (``tokenizer.json`` through the Rust
``tokenizers`` package, ``model.safetensors`` through ``safetensors.numpy``),
with the same pipeline: word pieces up to ``max_seq_length``, BERT, mean
pooling, L2 normalization. Its vectors agree with sentence-transformers' to
float32 rounding (cosine > 0.99999, tests/retrieval/test_query_encoder.py),
so a search ranks the same passages in the same order as the window.

Only models this pipeline describes are taken (``supports``): a BERT
encoder with absolute positions, mean pooling and a normalize step. Any
other sentence-transformers folder falls back to the full library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
DEFAULT_MAX_SEQ_TOKENS = 512


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def supports(folder: Path) -> bool:
    """Whether ``folder`` is a model this encoder computes exactly:
    Transformer(BERT, absolute positions) -> mean Pooling -> Normalize."""
    try:
        modules = _read_json(folder / "modules.json")
        config = _read_json(folder / "config.json")
        types = [m["type"] for m in modules]
        if types != [_TRANSFORMER, _POOLING, _NORMALIZE] or modules[0].get("path", ""):
            return False
        pooling = _read_json(folder / modules[1]["path"] / "config.json")
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") is True and not any(
        value is True
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )
    return (
        mean_only
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (folder / "tokenizer.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


class QueryEncoder:
    """A BERT sentence encoder in numpy; build it only for a folder that
    :func:`supports` accepts. Loading takes ~0.1 s (the weights are read
    from a memory map)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        config = _read_json(folder / "config.json")
        try:
            st_config = _read_json(folder / "sentence_bert_config.json")
        except OSError:
            st_config = {}
        max_tokens = int(st_config.get("max_seq_length") or DEFAULT_MAX_SEQ_TOKENS)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json keeps the settings it was saved with (MiniLM's pads
        # to 128 and cuts at 128); sentence-transformers cuts at
        # max_seq_length and pads nothing for a single text.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._layers = int(config["num_hidden_layers"])
        # Some exports prefix every name with the architecture ("bert.").
        self._w = {
            k.removeprefix("bert."): v
            for k, v in _map_weights(folder / "model.safetensors").items()
        }
        self.dimensions = int(config["hidden_size"])

    def encode(self, text: str) -> npt.NDArray[np.float32]:
        """``text``'s L2-normalized float32 vector."""
        import numpy as np

        w = self._w
        encoding = self._tokenizer.encode(text)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        types = np.asarray(encoding.type_ids, dtype=np.int64)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for n in range(self._layers):
            x = self._layer(x, f"encoder.layer.{n}.")
        pooled = x.mean(axis=0)
        norm = float(np.linalg.norm(pooled))
        return (pooled / max(norm, 1e-12)).astype(np.float32)

    def _dense(self, x: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float32]:
        return x @ self._w[name + ".weight"].T + self._w[name + ".bias"]

    def _norm(self, x: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float32]:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        scaled = (x - mean) / (var + self._eps) ** 0.5
        return scaled * self._w[name + ".weight"] + self._w[name + ".bias"]

    def _layer(self, x: npt.NDArray[np.float32], p: str) -> npt.NDArray[np.float32]:
        import numpy as np

        tokens, hidden = x.shape
        head = hidden // self._heads

        def split(m: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return m.reshape(tokens, self._heads, head).transpose(1, 0, 2)

        q = split(self._dense(x, p + "attention.self.query"))
        k = split(self._dense(x, p + "attention.self.key"))
        v = split(self._dense(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(tokens, hidden)
        attended = self._norm(
            x + self._dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm"
        )
        inner = _gelu(self._dense(attended, p + "intermediate.dense"))
        return self._norm(attended + self._dense(inner, p + "output.dense"), p + "output.LayerNorm")


_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
_HEADER_LENGTH_BYTES = 8


def _map_weights(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a safetensors file as arrays over a read-only memory
    map: nothing is read until used, and a query touches a dozen rows of the
    47 MB word-embedding table (``safetensors.numpy.load_file`` reads all
    90 MB first, 0.5 s on the VM). Half floats are widened to float32."""
    import mmap

    import numpy as np

    with path.open("rb") as handle:
        header_bytes = int.from_bytes(handle.read(_HEADER_LENGTH_BYTES), "little")
        header = json.loads(handle.read(header_bytes))
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    start = _HEADER_LENGTH_BYTES + header_bytes
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(
            mapped,
            dtype=dtype,
            count=(end - begin) // np.dtype(dtype).itemsize,
            offset=start + begin,
        ).reshape(info["shape"])
        tensors[name] = array.astype(np.float32) if dtype == "<f2" else array
    return tensors


def _gelu(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz & Stegun 7.1.26
    (absolute error below 1.5e-7, float32's own rounding): numpy has no erf,
    and scipy costs more to import than the whole query takes."""
    import numpy as np

    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)
