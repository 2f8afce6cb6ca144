"""The vocabulary of a Hugging Face SentencePiece checkpoint, for the converter.

Phi-3's chat tokens (``<|user|>``, ``<|assistant|>``, ``<|end|>``, …) are not
in ``tokenizer.model``: they are *added* tokens, and checkpoints keep them in
different places depending on who saved them. Microsoft's repositories ship an
``added_tokens.json``; transformers 5 no longer writes that file and keeps them
only in ``tokenizer.json`` (``added_tokens``) and ``tokenizer_config.json``
(``added_tokens_decoder``). Reading only one of them (as gguf's
``SentencePieceVocab`` does) silently turns the chat tokens into padding, and the
converted model can neither see its chat format nor stop. So we read all three,
check that they agree with each other and with the SentencePiece model, and
refuse a result that would lack the chat tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError

# The markers of Phi-3's chat format; every Phi-3-family chat model has them.
PHI3_CHAT_TOKENS = ("<|user|>", "<|assistant|>", "<|end|>")
# Chat-template markers look like <|name|>; a template names the ones it needs.
CHAT_MARKER = re.compile(r"<\|[A-Za-z0-9_]+\|>")
ADDED_TOKEN_SCORE = -1000.0  # what llama.cpp's converters give added tokens


class VocabularyError(EngineError):
    """The checkpoint's tokenizer files are inconsistent or incomplete."""


@dataclass(frozen=True)
class AddedToken:
    id: int
    content: str
    special: bool
    sources: tuple[str, ...] = field(default=())


@dataclass
class Vocabulary:
    pieces: list[bytes]
    scores: list[float]
    types: list[int]  # gguf.TokenType values

    def piece_ids(self) -> dict[str, int]:
        return {p.decode("utf-8", errors="replace"): i for i, p in enumerate(self.pieces)}


def read_added_tokens(folder: Path) -> dict[int, AddedToken]:
    """Added tokens from every file that may hold them, merged by id.

    Raises :class:`VocabularyError` when two files give one id different
    texts, or one text different ids: such a tokenizer does not belong
    together, and guessing would produce a model that reads the wrong tokens.
    """
    # (id, text, special, file). added_tokens.json maps text -> id and says
    # nothing of specialness; the other two files do.
    found: list[tuple[int, str, bool | None, str]] = [
        (int(id_), str(text), None, "added_tokens.json")
        for text, id_ in _load(folder, "added_tokens.json").items()
    ]
    for token in _load(folder, "tokenizer.json").get("added_tokens") or []:
        found.append(
            (int(token["id"]), str(token["content"]), bool(token.get("special")), "tokenizer.json")
        )
    decoder = _load(folder, "tokenizer_config.json").get("added_tokens_decoder") or {}
    for id_, token in decoder.items():
        found.append(
            (int(id_), str(token["content"]), bool(token.get("special")), "tokenizer_config.json")
        )

    merged: dict[int, AddedToken] = {}
    by_content: dict[str, int] = {}
    for id_, content, special, source in found:
        if content in by_content and by_content[content] != id_:
            raise VocabularyError(
                f"The tokenizer files disagree: {source} gives “{content}” the id {id_}, another "
                f"file gives it {by_content[content]}. Copy the tokenizer files from the same "
                "model again."
            )
        previous = merged.get(id_)
        if previous is not None and previous.content != content:
            raise VocabularyError(
                f"The tokenizer files disagree about token {id_}: “{previous.content}” in "
                f"{previous.sources[0]}, “{content}” in {source}. Copy the tokenizer files from "
                "the same model again."
            )
        by_content[content] = id_
        merged[id_] = AddedToken(
            id_,
            content,
            special=bool(special) or (previous.special if previous else False),
            sources=(*(previous.sources if previous else ()), source),
        )
    return merged


def build_vocabulary(folder: Path, n_vocab: int) -> Vocabulary:
    """SentencePiece pieces, then the added tokens at their ids, padded to the
    model's embedding size (Phi-3 pads 32011 tokens to 32064)."""
    import gguf
    from sentencepiece import SentencePieceProcessor

    processor = SentencePieceProcessor()
    processor.LoadFromFile(str(folder / "tokenizer.model"))
    vocab = Vocabulary([], [], [])
    for i in range(processor.vocab_size()):
        vocab.pieces.append(processor.IdToPiece(i).encode("utf-8"))
        vocab.scores.append(processor.GetScore(i))
        vocab.types.append(_piece_type(processor, i))
    base = len(vocab.pieces)
    if base > n_vocab:
        raise VocabularyError(
            f"The tokenizer has {base} tokens but the model only {n_vocab}: "
            "the tokenizer files do not belong to these weights."
        )

    for token in sorted(read_added_tokens(folder).values(), key=lambda t: t.id):
        if token.id >= n_vocab:
            raise VocabularyError(
                f"The tokenizer's added token “{token.content}” has id {token.id}, but the model "
                f"has only {n_vocab} token embeddings: the tokenizer files do not belong to "
                "these weights."
            )
        if token.id < base:
            # Re-declared base pieces (<unk>, <s>, </s>): they must be the same text.
            piece = vocab.pieces[token.id].decode("utf-8", errors="replace")
            if piece != token.content:
                raise VocabularyError(
                    f"{token.sources[0]} says token {token.id} is “{token.content}”, but "
                    f"tokenizer.model has “{piece}” there: the tokenizer files do not match."
                )
            if token.special and vocab.types[token.id] == gguf.TokenType.NORMAL:
                vocab.types[token.id] = gguf.TokenType.CONTROL
            continue
        while len(vocab.pieces) < token.id:  # a gap between added tokens
            _pad(vocab, len(vocab.pieces))
        vocab.pieces.append(token.content.encode("utf-8"))
        vocab.scores.append(ADDED_TOKEN_SCORE)
        vocab.types.append(gguf.TokenType.CONTROL if token.special else gguf.TokenType.USER_DEFINED)
    while len(vocab.pieces) < n_vocab:
        _pad(vocab, len(vocab.pieces))
    return vocab


def missing_chat_tokens(vocab: Vocabulary, chat_template: str | None) -> list[str]:
    """The chat markers a Phi-3-family model needs that the vocabulary lacks as
    single tokens: Phi-3's own, plus any ``<|…|>`` its chat template names."""
    import gguf

    needed = list(PHI3_CHAT_TOKENS)
    needed += [m for m in CHAT_MARKER.findall(chat_template or "") if m not in needed]
    ids = vocab.piece_ids()
    usable = (gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED)
    return [t for t in needed if t not in ids or vocab.types[ids[t]] not in usable]


def _piece_type(processor: Any, i: int) -> int:
    import gguf

    if processor.IsUnknown(i):
        return int(gguf.TokenType.UNKNOWN)
    if processor.IsControl(i):
        return int(gguf.TokenType.CONTROL)
    if processor.IsUnused(i):
        return int(gguf.TokenType.UNUSED)
    if processor.IsByte(i):
        return int(gguf.TokenType.BYTE)
    return int(gguf.TokenType.NORMAL)


def _pad(vocab: Vocabulary, index: int) -> None:
    import gguf

    vocab.pieces.append(f"[PAD{index}]".encode())
    vocab.scores.append(ADDED_TOKEN_SCORE)
    vocab.types.append(gguf.TokenType.UNUSED)


def _load(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise VocabularyError(f"{folder.name}/{name} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise VocabularyError(f"{folder.name}/{name} is not a JSON object.")
    return data


@dataclass(frozen=True)
class TokenizerBehaviour:
    """How the checkpoint's own (transformers) tokenizer treats a chat prompt,
    in the three places where llama.cpp's SentencePiece tokenizer can differ."""

    add_bos: bool = True  # a BOS token starts every prompt
    space_after_special: bool = True  # "<|user|>Hi" reads "▁Hi", not "Hi"
    strips_after_chat_tokens: bool = True  # "<|user|>\nHi" drops the newline


def reference_behaviour(folder: Path) -> TokenizerBehaviour:
    """Ask the checkpoint's tokenizer (transformers, from local files only).

    Why probe instead of reading the JSON: whether a space follows a special
    token depends on transformers' own reading of ``legacy``/``add_prefix_space``
    and of the pre-tokenizer, which has changed between versions; the files
    alone do not say what the model was trained on. Without transformers'
    answer we keep llama.cpp's SentencePiece defaults (Microsoft's layout).
    """
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        bos = tokenizer.bos_token_id
        first = tokenizer("a", add_special_tokens=True)["input_ids"]
        after = tokenizer.convert_ids_to_tokens(
            tokenizer("<|user|>\na", add_special_tokens=False)["input_ids"]
        )
    except Exception as exc:  # noqa: BLE001 - the probe is an improvement, never a reason to fail
        import logging

        logging.getLogger(__name__).warning("tokenizer probe failed, using defaults: %s", exc)
        return TokenizerBehaviour()
    rest = after[1:] if after and after[0] == "<|user|>" else after
    newline_kept = bool(rest) and rest[0] in ("<0x0A>", "\n", "▁\n")
    text_start = rest[1:] if newline_kept else rest
    return TokenizerBehaviour(
        add_bos=bos is not None and bool(first) and first[0] == bos,
        space_after_special=bool(text_start) and text_start[0].startswith("▁"),
        strips_after_chat_tokens=not newline_kept,
    )


def llama_cpp_model_name(name: str, behaviour: TokenizerBehaviour) -> str:
    """llama.cpp decides by *model name* whether Phi-3's special tokens strip the
    whitespace after them (names containing "phi-3"/"phi3" do). The name must
    say what the checkpoint's tokenizer does, or every chat turn reads a
    different newline than the model was trained on."""
    lowered = name.lower()
    says_phi3 = "phi-3" in lowered or "phi3" in lowered
    if behaviour.strips_after_chat_tokens and not says_phi3:
        return f"{name} (Phi-3)"
    if not behaviour.strips_after_chat_tokens and says_phi3:
        return re.sub(r"(?i)phi-?3", "Phi 3", name)
    return name
