"""Fusing dense and lexical evidence: the product's score blend, the RRF it
replaced, and the whole search path on a real index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from retrieval.hybrid import DEFAULT_FUSION, PLAIN_RRF, WEIGHTED_RRF, Fusion, ScoreFusion

if TYPE_CHECKING:
    from retrieval.documents import DocumentLibrary


def test_rrf_agreement_wins() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
    lexical = [("c", 12.0), ("b", 11.0), ("d", 3.0)]
    fused = [i for i, _ in WEIGHTED_RRF.fuse(dense, lexical)]
    assert fused[0] == "b"  # second in both beats first in one
    assert set(fused) == {"a", "b", "c", "d"}


def test_rrf_dense_rank_outweighs_the_same_bm25_rank() -> None:
    dense = [("semantic", 0.8)]
    lexical = [("keyword", 20.0)]
    assert [i for i, _ in WEIGHTED_RRF.fuse(dense, lexical)] == ["semantic", "keyword"]
    # plain RRF has no preference: the tie keeps the dense order, too
    assert [i for i, _ in PLAIN_RRF.fuse(dense, lexical)] == ["semantic", "keyword"]
    assert [i for i, _ in Fusion(dense_weight=0.5).fuse(dense, lexical)] == ["keyword", "semantic"]


def test_one_side_empty_keeps_the_other_order() -> None:
    ranking = [("x", 3.0), ("y", 2.0), ("z", 1.0)]
    for fusion in (DEFAULT_FUSION, WEIGHTED_RRF):
        assert [i for i, _ in fusion.fuse(ranking, [])] == ["x", "y", "z"]
        assert [i for i, _ in fusion.fuse([], ranking)] == ["x", "y", "z"]
        assert fusion.fuse([], []) == []


def test_scores_are_descending() -> None:
    dense = [(f"d{i}", 1 - i / 100) for i in range(50)]
    lexical = [(f"d{i}", 50.0 - i) for i in range(49, -1, -1)]
    for fusion in (DEFAULT_FUSION, WEIGHTED_RRF):
        scores = [s for _, s in fusion.fuse(dense, lexical)]
        assert scores == sorted(scores, reverse=True)


def test_flat_bm25_leaves_the_dense_order() -> None:
    """BM25 that barely separates the candidates (common words, in reverse
    order) must not reorder what dense ranks clearly."""
    dense = [("a", 0.62), ("b", 0.55), ("c", 0.48), ("d", 0.41)]
    lexical = [("d", 5.2), ("c", 5.1), ("b", 5.0), ("a", 4.9)]
    assert [i for i, _ in DEFAULT_FUSION.fuse(dense, lexical)] == ["a", "b", "c", "d"]


def test_a_sharp_bm25_peak_lifts_its_passage() -> None:
    """One passage holds the question's rare term (say ``--cid``): its BM25
    stands far above the rest and lifts it over dense's near-ties, while
    weighted RRF leaves it below every dense rank."""
    dense = [(f"d{i}", 0.50 - i / 1000) for i in range(30)] + [("defines", 0.44)]
    lexical = [("defines", 14.0)] + [(f"d{i}", 2.0) for i in range(30)]
    assert DEFAULT_FUSION.fuse(dense, lexical)[0][0] == "defines"
    assert [i for i, _ in WEIGHTED_RRF.fuse(dense, lexical)].index("defines") > 10


def test_a_candidate_only_one_side_scored() -> None:
    dense = [("a", 0.7), ("b", 0.6)]
    lexical = [("c", 9.0)]  # not re-scored: gets the lowest cosine; a, b get no lexical
    fused = [i for i, _ in ScoreFusion(lexical_weight=0.3).fuse(dense, lexical)]
    assert fused == ["c", "a", "b"]  # 0.6 + 0.3, then 0.7, then 0.6


CLI_GUIDE = """# tool guide

## Caching

Results are kept under a content id given with --cid NAME, for example
`tool run --cid nightly data.csv`; a later run with the same id reuses them.

## What the --color option does

The --color option decides whether output uses colours: always, never or auto.

## What the --cpu option does

The --cpu option limits how many processor cores the tool may use.

## What the --cd option does

The --cd option changes the working directory before the command runs.

## What an option does

An option changes what a command does. Options start with two dashes;
the option list of each command shows what each option does.

## Content identifiers

A content identifier (CID) is a hash of a file's bytes: two copies of the
same file share one CID, and every option that reads files computes it.
"""


def test_a_question_about_an_option_finds_its_definition_first(
    tmp_path: Path, library: DocumentLibrary
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(CLI_GUIDE, encoding="utf-8")
    library.add_collection("docs", [docs])
    import threading

    list(library.index("docs", threading.Event()))
    found = library.search("What does the --cid option do?", k=3)
    first = found[0]
    assert "--cid NAME" in first.text
    assert first.matched_identifiers == ("--cid",)
    assert first.lexical_rank == 1 and first.dense_rank is not None
    assert 0.0 < first.term_coverage <= 1.0
    assert all(p.matched_identifiers == () for p in found[1:])
    # the score stays the MiniLM cosine (the web rule compares it with web passages')
    assert -1.0 <= first.score <= 1.0


def test_rankings_score_every_candidate_by_both_retrievers(
    tmp_path: Path, library: DocumentLibrary
) -> None:
    """With 1 candidate a side, the definition of ``--cid`` is the BM25 hit the
    dense side misses: it must come back with its real cosine (not a stand-in),
    and the dense hits with their BM25 (0 when they match no term)."""
    import threading

    import numpy as np

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(CLI_GUIDE, encoding="utf-8")
    library.add_collection("docs", [docs])
    list(library.index("docs", threading.Event()))
    target = [library.collection("docs")]
    question = "What does the --cid option do?"
    dense, lexical = library.rankings(question, target, 1)
    assert {i for i, _ in dense} == {i for i, _ in lexical}  # one union, both scores
    assert len(dense) == 2
    passages = {p.id: p for p in library.passages(target, dense)}
    definition = next(i for i, p in passages.items() if "--cid NAME" in p.text)
    assert lexical[0][0] == definition and dense[0][0] != definition
    assert lexical[1][1] > 0  # the dense hit mentions "cid": scored by FTS5, not left at 0
    embedder = library.embedder
    vectors = embedder.embed_documents([question, passages[definition].text])
    expected = float(
        vectors[0] @ vectors[1] / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1])
    )
    assert dict(dense)[definition] == pytest.approx(expected, abs=1e-4)
