"""Build tiny, real Hugging Face Phi-3 checkpoints for converter tests:
a SentencePiece tokenizer trained here, and ``Phi3ForCausalLM`` with random
weights saved by transformers as safetensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.synthetic_model import PHI3_CHAT_TEMPLATE, PHI3_SPECIAL_TOKENS

TRAINING_TEXT = (
    "Footnote is a private assistant. It answers questions about your own documents. "
    "The model runs on this computer with llama.cpp, and nothing leaves the machine. "
    "Phi-3 reasons well but remembers few facts, so answers cite their sources. "
    "Hello world, how are you today? Tell me about GGUF files and quantization. "
) * 40


def build_tokenizer(folder: Path, vocab_size: int = 320) -> Path:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(TRAINING_TEXT.split(". ")))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    corpus.unlink()
    return folder / "tokenizer.model"


def build_phi3_checkpoint(
    folder: Path, *, longrope: bool = False, seed: int = 0, added_tokens_json: bool = True
) -> Path:
    """A Phi3ForCausalLM checkpoint folder as Microsoft publishes them:
    config.json, model.safetensors, tokenizer.model, tokenizer.json,
    tokenizer_config.json (with the chat template), added_tokens.json.

    ``added_tokens_json=False`` gives the layout transformers 5 saves (a
    fine-tune today): the added tokens live only in tokenizer.json and
    tokenizer_config.json."""
    import torch
    from tokenizers import AddedToken
    from transformers import LlamaTokenizer, Phi3Config, Phi3ForCausalLM

    spm_dir = folder.parent / (folder.name + "-spm")
    build_tokenizer(spm_dir)
    tokenizer = LlamaTokenizer.from_pretrained(str(spm_dir))
    base = len(tokenizer)
    # As in Microsoft's tokenizer: the chat tokens eat the newline after them.
    specials = [
        AddedToken(t, rstrip=t != "<|endoftext|>", lstrip=False, normalized=False, special=True)
        for t in PHI3_SPECIAL_TOKENS
    ]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.chat_template = PHI3_CHAT_TEMPLATE
    vocab_size = (len(tokenizer) + 63) // 64 * 64  # Phi-3 pads its vocab (32011 -> 32064)

    head_dim = 16
    extra: dict[str, Any] = {}
    if longrope:
        half = head_dim // 2
        extra = {
            "max_position_embeddings": 131072,
            "original_max_position_embeddings": 4096,
            "rope_scaling": {
                "type": "longrope",
                "short_factor": [1.0 + 0.05 * i for i in range(half)],
                "long_factor": [1.0 + 0.5 * i for i in range(half)],
            },
        }
    else:
        extra = {"max_position_embeddings": 4096, "original_max_position_embeddings": 4096}
    config = Phi3Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        bos_token_id=1,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
        initializer_range=0.2,  # large weights make the logits comparison discriminating
        **extra,
    )
    torch.manual_seed(seed)
    model = Phi3ForCausalLM(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    # Microsoft's repositories ship the SentencePiece model and added_tokens.json too.
    (folder / "tokenizer.model").write_bytes((spm_dir / "tokenizer.model").read_bytes())
    added = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in PHI3_SPECIAL_TOKENS}
    assert base == min(added.values())
    if added_tokens_json:
        (folder / "added_tokens.json").write_text(json.dumps(added, indent=2))
    else:
        (folder / "added_tokens.json").unlink(missing_ok=True)
    return folder
