"""The numpy query encoder computes the vectors sentence-transformers does,
and takes only the models whose pipeline it reproduces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedding import Embedder, QueryEmbedder, default_model_dir
from retrieval.query_encoder import QueryEncoder, supports

TEXTS = [
    "chat template stop tokens",
    "What is a GGUF file?",
    "naïve café — 2024 résumé, 東京の天気",
    "def join(a, b): return shlex.join([a, b])",
    "heron " * 400,  # longer than max_seq_length: cut where the model cuts
    "",
]


def test_vectors_match_sentence_transformers(embedder: Embedder) -> None:
    encoder = QueryEncoder(default_model_dir())
    expected = embedder.embed_documents(TEXTS)
    for text, want in zip(TEXTS, expected, strict=True):
        got = encoder.encode(text)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert float(got @ want) > 0.99999, text
        assert float(np.abs(got - want).max()) < 1e-5, text


def test_query_embedder_embeds_one_text_without_the_model() -> None:
    embedder = QueryEmbedder()
    vector = embedder.embed_documents(["heron budget"])
    assert vector.shape == (1, 384)
    assert embedder._model is None  # torch never loaded for a query
    assert embedder.model_id == Embedder().model_id  # the same index binding


def _copy_model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder)
    return folder


def test_supports_only_the_pipeline_it_computes(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    assert supports(folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_cls_token": True}))
    assert not supports(folder)  # CLS pooling: not what encode() computes
    pooling.write_text(json.dumps(config))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))
    assert not supports(folder)  # no Normalize step
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "tokenizer.json").unlink()
    assert not supports(folder)


def test_a_model_it_does_not_describe_goes_through_the_library(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(
        json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    embedder = QueryEmbedder(folder)
    vector = embedder.embed_documents(["heron budget"])
    assert embedder._model is not None  # sentence-transformers did it
    assert vector.shape == (1, 384)


@pytest.mark.parametrize("count", [0, 2])
def test_several_texts_go_through_the_library(embedder: Embedder, count: int) -> None:
    query_embedder = QueryEmbedder()
    texts = ["heron budget", "zebra marker"][:count]
    got = query_embedder.embed_documents(texts)
    assert got.shape == (count, 384)
    np.testing.assert_allclose(got, embedder.embed_documents(texts), atol=1e-6)
