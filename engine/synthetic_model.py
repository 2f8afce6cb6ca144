"""Write Phi-3-architecture GGUF files with synthetic weights.

Tests, screenshots and benchmarks need a real model file that real llama.cpp
runs, but no weights may live in git and no test may download any. This module
writes one with the ``gguf`` library: a SentencePiece-style vocabulary with
Phi-3's special tokens and chat template, and Phi-3's tensor layout (fused
``attn_qkv`` and ``ffn_up``).

Two kinds of weights:

* ``scripted`` (tiny): the weights make the model a deterministic "bigram"
  machine whose reply to any prompt is :data:`SCRIPTED_ANSWER`. The residual
  stream is dominated by the token embedding (attention and MLP weights are
  near zero), and each row of the output matrix points at the embedding of the
  token that should precede it. So tests can assert on exact streamed text and
  screenshots show a readable answer, while every step still runs through
  llama.cpp's real tokenizer, graph and sampler. ``loop=True`` makes the last
  piece lead back to the first, so the model never stops by itself (for Stop
  and context-full tests).
* ``random`` (any size, e.g. Phi-3-mini's shape for benchmarks): plain random
  weights. Speed does not depend on weight values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Re-exported: Phi-3's template lives with the chat formats, so the window's
# start-up does not import this module (and numpy) for one string.
from engine.chat_template import PHI3_CHAT_TEMPLATE

# Phi-3's added tokens, in the order of their ids (32000..32010 in the real vocab).
PHI3_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|assistant|>",
    "<|placeholder1|>",
    "<|placeholder2|>",
    "<|placeholder3|>",
    "<|placeholder4|>",
    "<|system|>",
    "<|end|>",
    "<|placeholder5|>",
    "<|placeholder6|>",
    "<|user|>",
)

# The scripted model's answer, one vocabulary piece per entry ("▁" is SentencePiece's
# space). Every piece is unique: the model picks the next token from the current one.
SCRIPTED_PIECES = (
    "Footnote",
    "▁runs",
    "▁**Phi-3**",
    "▁entirely",
    "▁on",
    "▁this",
    "▁computer.",
    "\n\n-",
    "▁Nothing",
    "▁you",
    "▁ask",
    "▁leaves",
    "▁the",
    "▁machine.",
    "\n-",
    "▁Answers",
    "▁can",
    "▁cite",
    "▁`your",
    "▁files`",
    "▁and",
    "▁web",
    "▁pages.",
    "\n\n```python\n",
    "print(",
    '"hello,',
    '▁world")',
    "\n```",
)
SCRIPTED_ANSWER = "".join(SCRIPTED_PIECES).replace("▁", " ")

# A small slice of English so user text tokenizes into word pieces, not bytes.
_COMMON_WORDS = """
the of and to in is it you that he was for on are with as I his they be at one have this
from or had by hot word but what some we can out other were all there when up use your
how said an each she which do their time if will way about many then them write would
like so these her long make thing see him two has look more day could go come did number
sound no most people my over know water than call first who may down side been now find
any new work part take get place made live where after back little only round man year
came show every good me give our under name very through just form sentence great think
say help low line differ turn cause much mean before move right boy old too same tell
does set three want air well also play small end put home read hand port large spell add
even land here must big high such follow act why ask men change went light kind off need
house picture try us again animal point mother world near build self earth father hi
hello question answer file document model local
""".split()  # noqa: SIM905 - prose reads better than a list


@dataclass(frozen=True)
class ModelShape:
    """Hyperparameters of a Phi-3-architecture model."""

    n_embd: int
    n_layer: int
    n_head: int
    n_ff: int
    n_ctx_train: int
    extra_vocab: int = 0  # pad the vocabulary with filler pieces up to a target size

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


TINY_SHAPE = ModelShape(n_embd=64, n_layer=2, n_head=4, n_ff=128, n_ctx_train=4096)
# Phi-3-mini-4k-instruct: 3.8B parameters, vocab 32064.
PHI3_MINI_SHAPE = ModelShape(
    n_embd=3072, n_layer=32, n_head=32, n_ff=8192, n_ctx_train=4096, extra_vocab=32064
)

# Token types, as llama.cpp reads them (gguf.TokenType).
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


@dataclass(frozen=True)
class Vocabulary:
    pieces: list[str]
    scores: list[float]
    types: list[int]

    def id_of(self, piece: str) -> int:
        return self.pieces.index(piece)


def build_vocabulary(target_size: int = 0) -> Vocabulary:
    """A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, word
    pieces (with every prefix, so SentencePiece merges can reach whole words),
    the scripted answer's pieces, then Phi-3's special tokens last, as in Phi-3."""
    pieces: list[str] = ["<unk>", "<s>", "</s>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256

    normal: dict[str, None] = {}  # insertion-ordered set
    normal["▁"] = None
    for code in range(0x21, 0x7F):
        normal[chr(code)] = None
    for word in _COMMON_WORDS:
        piece = "▁" + word
        for end in range(2, len(piece) + 1):
            normal[piece[:end]] = None
    for piece in SCRIPTED_PIECES:
        normal[piece] = None
    filler = 0
    while target_size and len(pieces) + len(normal) + len(PHI3_SPECIAL_TOKENS) < target_size:
        normal[f"▁filler{filler}"] = None
        filler += 1
    pieces += list(normal)
    types += [_NORMAL] * len(normal)
    pieces += list(PHI3_SPECIAL_TOKENS)
    types += [_CONTROL] * len(PHI3_SPECIAL_TOKENS)
    # SentencePiece scores are log-probabilities; longer pieces win merges.
    scores = [
        0.0 if t != _NORMAL else -1000.0 + 10.0 * len(p) for p, t in zip(pieces, types, strict=True)
    ]
    return Vocabulary(pieces=pieces, scores=scores, types=types)


def read_vocabulary(path: Path) -> Vocabulary:
    """The tokenizer of another GGUF, e.g. Phi-3's own: llama.cpp's sources
    carry it as ``models/ggml-vocab-phi-3.gguf`` (a vocabulary-only file
    converted from microsoft/Phi-3-mini-4k-instruct). A model written with it
    splits text into exactly the tokens Phi-3 would, so token counts (prompt
    sizes, what a time budget buys) are Phi-3's."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def field(name: str) -> list[Any]:
        found = reader.get_field(name)
        if found is None:
            raise ValueError(f"{path} has no {name}: not a llama.cpp vocabulary file")
        values: list[Any] = found.contents()
        return values

    model = reader.get_field("tokenizer.ggml.model")
    if model is None or model.contents() != "llama":
        raise ValueError(f"{path} is not a SentencePiece (llama) vocabulary")
    vocab = Vocabulary(
        pieces=[str(p) for p in field("tokenizer.ggml.tokens")],
        scores=[float(s) for s in field("tokenizer.ggml.scores")],
        types=[int(t) for t in field("tokenizer.ggml.token_type")],
    )
    missing = [t for t in PHI3_SPECIAL_TOKENS if t not in vocab.pieces]
    if missing:
        raise ValueError(f"{path} lacks Phi-3's chat tokens {missing}")
    return vocab


def write_phi3_gguf(
    path: Path,
    *,
    shape: ModelShape = TINY_SHAPE,
    weights: str = "scripted",
    vocabulary: Vocabulary | None = None,
    loop: bool = False,
    seed: int = 0,
    name: str = "Footnote tiny Phi-3",
    chat_template: str | None = PHI3_CHAT_TEMPLATE,
    architecture: str = "phi3",
    dtype: str = "f32",
    chat_tokens: bool = True,
) -> Path:
    """Write a Phi-3-architecture GGUF to ``path`` and return it.

    ``chat_template=None`` leaves the template out (to test the fallback);
    ``architecture`` can name one llama.cpp cannot run (to test refusals).
    ``dtype="f16"`` halves the size of big models (benchmarks quantize it further).
    ``chat_tokens=False`` writes padding where Phi-3's added tokens belong, as
    converters that miss a checkpoint's added tokens do (to test the warning).
    ``vocabulary`` (random weights only: the script needs its own pieces)
    replaces the test vocabulary, e.g. with Phi-3's (:func:`read_vocabulary`).
    """
    import gguf

    if weights not in ("scripted", "random"):
        raise ValueError(f"weights must be 'scripted' or 'random', not {weights!r}")
    if vocabulary is not None and weights != "random":
        raise ValueError("a given vocabulary needs weights='random' (the script is in test pieces)")
    vocab = vocabulary or build_vocabulary(shape.extra_vocab)
    rng = np.random.default_rng(seed)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(name)
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_block_count(shape.n_layer)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32
    )

    written = vocab if chat_tokens else _without_chat_tokens(vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(written.pieces)
    writer.add_token_scores(written.scores)
    writer.add_token_types(written.types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_pad_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    # Stream: declare every tensor, write the header, then generate and write
    # one tensor at a time, so a full-size model never sits in memory.
    float_type = np.float16 if dtype == "f16" else np.float32
    for tensor_name, dims in _tensor_shapes(shape, len(vocab.pieces)):
        is_norm = len(dims) == 1  # llama.cpp wants norm weights in F32
        item = np.dtype(np.float32 if is_norm else float_type)
        writer.add_tensor_info(tensor_name, dims, item, int(np.prod(dims)) * item.itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _name, array in _tensors(shape, vocab, weights, loop, rng):
        writer.write_tensor_data(array if array.ndim == 1 else array.astype(float_type))
    writer.close()
    return path


def _without_chat_tokens(vocab: Vocabulary) -> Vocabulary:
    unused = 5  # gguf.TokenType.UNUSED
    pieces, types = list(vocab.pieces), list(vocab.types)
    for token in PHI3_SPECIAL_TOKENS:
        i = vocab.id_of(token)
        pieces[i], types[i] = f"[PAD{i}]", unused
    return Vocabulary(pieces=pieces, scores=list(vocab.scores), types=types)


def _tensor_shapes(shape: ModelShape, n_vocab: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Names and numpy shapes of :func:`_tensors`, in the same order."""
    d, ff = shape.n_embd, shape.n_ff
    yield "token_embd.weight", (n_vocab, d)
    for layer in range(shape.n_layer):
        yield f"blk.{layer}.attn_norm.weight", (d,)
        yield f"blk.{layer}.attn_qkv.weight", (3 * d, d)
        yield f"blk.{layer}.attn_output.weight", (d, d)
        yield f"blk.{layer}.ffn_norm.weight", (d,)
        yield f"blk.{layer}.ffn_up.weight", (2 * ff, d)
        yield f"blk.{layer}.ffn_down.weight", (d, ff)
    yield "output_norm.weight", (d,)
    yield "output.weight", (n_vocab, d)


def _tensors(
    shape: ModelShape, vocab: Vocabulary, weights: str, loop: bool, rng: np.random.Generator
) -> Iterator[tuple[str, np.ndarray]]:
    """Tensors in GGUF naming. numpy shapes are (out, in); gguf reverses them."""
    d, ff, n_vocab = shape.n_embd, shape.n_ff, len(vocab.pieces)
    small = 0.02 if weights == "scripted" else 1.0 / np.sqrt(d)

    def normal(*dims: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * scale).astype(np.float32)

    if weights == "scripted":
        embed, output = _scripted_embeddings(vocab, d, loop, rng)
    else:
        embed = normal(n_vocab, d, scale=1.0)
        output = normal(n_vocab, d, scale=small)
    yield "token_embd.weight", embed
    for layer in range(shape.n_layer):
        yield f"blk.{layer}.attn_norm.weight", np.ones(d, dtype=np.float32)
        yield f"blk.{layer}.attn_qkv.weight", normal(3 * d, d, scale=small)
        yield f"blk.{layer}.attn_output.weight", normal(d, d, scale=small)
        yield f"blk.{layer}.ffn_norm.weight", np.ones(d, dtype=np.float32)
        # Phi-3 fuses the gate and up projections into one [2*n_ff, n_embd] tensor.
        yield f"blk.{layer}.ffn_up.weight", normal(2 * ff, d, scale=small)
        yield f"blk.{layer}.ffn_down.weight", normal(d, ff, scale=small)
    yield "output_norm.weight", np.ones(d, dtype=np.float32)
    yield "output.weight", output


def _scripted_embeddings(
    vocab: Vocabulary, d: int, loop: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings with RMS 1, and an output matrix whose row j is a scaled copy
    of the embedding of j's designated predecessor: logit(successor) = BOOST
    while every other logit is ~N(0, BOOST/sqrt(d))."""
    boost = 40.0
    n_vocab = len(vocab.pieces)
    embed = rng.standard_normal((n_vocab, d)).astype(np.float32)
    embed /= np.sqrt((embed**2).mean(axis=1, keepdims=True))
    # By default a token predicts a random one: the model babbles off-script.
    predecessor_of = rng.integers(0, n_vocab, size=n_vocab)
    script = [vocab.id_of(p) for p in SCRIPTED_PIECES]
    end = vocab.id_of("<|end|>")
    # The prompt ends with "<|assistant|>\n"; depending on how the tokenizer
    # splits that newline the last prompt token is one of these.
    starts = [vocab.id_of(p) for p in ("<|assistant|>", "<0x0A>", "▁")]
    output = np.zeros((n_vocab, d), dtype=np.float32)
    chosen: dict[int, list[int]] = {}
    for tok in range(n_vocab):
        chosen.setdefault(int(predecessor_of[tok]), []).append(tok)
    # Scripted successors override random ones.
    for a, b in itertools.pairwise(script):
        chosen[a] = [b]
    for s in starts:
        chosen[s] = [script[0]]
    chosen[script[-1]] = [script[0] if loop else end]
    for pred, succs in chosen.items():
        for succ in succs:
            output[succ] += embed[pred] * (boost / d)
    return embed, output
