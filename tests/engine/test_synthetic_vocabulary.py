"""Benchmark models can carry another GGUF's tokenizer (Phi-3's own, from
llama.cpp's sources), so their token counts are the real model's."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model import LoadOptions, load_model
from engine.synthetic_model import build_vocabulary, read_vocabulary, write_phi3_gguf


def test_a_vocabulary_reads_back_as_written(tiny_model: Path) -> None:
    read = read_vocabulary(tiny_model)
    built = build_vocabulary()
    assert read.pieces == built.pieces
    assert read.types == built.types
    assert read.scores == pytest.approx(built.scores)


def test_a_model_written_with_a_given_vocabulary_tokenizes_with_it(
    tiny_model: Path, tmp_path: Path
) -> None:
    # A vocabulary with other ids than the default one: every piece moved up by
    # the fillers, so a model that ignored it would give other token ids.
    given = build_vocabulary(target_size=1200)
    path = write_phi3_gguf(tmp_path / "given.gguf", weights="random", vocabulary=given)
    model = load_model(path, LoadOptions(context_tokens=256, threads=1, seed=0))
    try:
        assert model.llama.n_vocab() == len(given.pieces) == 1200
        tokens = model.tokenize("what from", add_bos=False)
        assert [given.pieces[t] for t in tokens] == ["▁what", "▁from"]
        assert model.is_end_of_turn(given.id_of("<|end|>"))
    finally:
        model.close()


def test_the_scripted_answer_needs_its_own_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weights='random'"):
        write_phi3_gguf(tmp_path / "x.gguf", vocabulary=build_vocabulary())


def test_a_vocabulary_without_phi3_chat_tokens_is_refused(tmp_path: Path) -> None:
    path = write_phi3_gguf(tmp_path / "no-chat.gguf", chat_tokens=False)
    with pytest.raises(ValueError, match="chat tokens"):
        read_vocabulary(path)
