"""Weighted reciprocal-rank fusion of dense and BM25 rankings."""

from __future__ import annotations

from retrieval.hybrid import DEFAULT_FUSION, PLAIN_RRF, Fusion


def test_agreement_wins() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
    lexical = [("c", 12.0), ("b", 11.0), ("d", 3.0)]
    fused = [i for i, _ in DEFAULT_FUSION.fuse(dense, lexical)]
    assert fused[0] == "b"  # second in both beats first in one
    assert set(fused) == {"a", "b", "c", "d"}


def test_dense_rank_outweighs_the_same_bm25_rank() -> None:
    dense = [("semantic", 0.8)]
    lexical = [("keyword", 20.0)]
    assert [i for i, _ in DEFAULT_FUSION.fuse(dense, lexical)] == ["semantic", "keyword"]
    # plain RRF has no preference: the tie keeps the dense order, too
    assert [i for i, _ in PLAIN_RRF.fuse(dense, lexical)] == ["semantic", "keyword"]
    assert [i for i, _ in Fusion(dense_weight=0.5).fuse(dense, lexical)] == ["keyword", "semantic"]


def test_one_side_empty_keeps_the_other_order() -> None:
    ranking = [("x", 3.0), ("y", 2.0), ("z", 1.0)]
    assert [i for i, _ in DEFAULT_FUSION.fuse(ranking, [])] == ["x", "y", "z"]
    assert [i for i, _ in DEFAULT_FUSION.fuse([], ranking)] == ["x", "y", "z"]
    assert DEFAULT_FUSION.fuse([], []) == []


def test_scores_are_descending() -> None:
    dense = [(f"d{i}", 1 - i / 100) for i in range(50)]
    lexical = [(f"d{i}", 50.0 - i) for i in range(49, -1, -1)]
    scores = [s for _, s in DEFAULT_FUSION.fuse(dense, lexical)]
    assert scores == sorted(scores, reverse=True)
