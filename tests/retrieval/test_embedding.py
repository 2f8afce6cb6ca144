"""The embedder: the shipped MiniLM, verified before use, offline, normalized."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedding import DEFAULT_MODEL_SHA256, WEIGHTS_FILE, Embedder, default_model_dir
from retrieval.errors import EmbedderUnavailable


def test_shipped_model_is_minilm_bound_by_id(embedder: Embedder) -> None:
    assert embedder.model_id.startswith("all-MiniLM-L6-v2@" + DEFAULT_MODEL_SHA256[:16])
    assert embedder.max_tokens == 256
    assert embedder.dimensions == 384
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_vectors_are_normalized_and_in_order(embedder: Embedder) -> None:
    texts = [
        "A long passage about quarterly revenue, margins and the outlook. " * 8,
        "cats",
        "The invoice is due at the end of the month.",
    ]
    together = embedder.embed_documents(texts)
    assert together.dtype == np.float32 and together.shape == (3, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, together, strict=True):
        assert np.allclose(embedder.embed_query(text), row, atol=1e-5)
    question = embedder.embed_query("When must the invoice be paid?")
    assert int(np.argmax(together @ question)) == 2


def test_count_tokens_counts_everything(embedder: Embedder) -> None:
    assert embedder.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    long_text = "word " * 600
    assert embedder.count_tokens(long_text) == 602  # not cut at 256 (or 128)


def test_damaged_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "minilm"
    shutil.copytree(default_model_dir(), copy)
    with (copy / WEIGHTS_FILE).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    damaged = Embedder(copy, expected_sha256=DEFAULT_MODEL_SHA256)
    with pytest.raises(EmbedderUnavailable, match="damaged") as caught:
        damaged.load()
    assert DEFAULT_MODEL_SHA256 in caught.value.detail


def test_missing_model_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match=r"no model\.safetensors"):
        Embedder(tmp_path / "nothing-here").load()
