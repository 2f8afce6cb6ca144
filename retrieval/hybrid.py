"""Fusing the dense (MiniLM cosine) and lexical (BM25) rankings into one.

Why weighted reciprocal-rank fusion. Plain RRF (k=60) counts a BM25 rank
exactly as much as a dense rank. With MiniLM, BM25 is clearly the weaker
retriever on natural-language questions (MS MARCO subset: BM25 0.620, dense
0.704 nDCG@10), so its votes drag lexical false positives into the top ten and
plain RRF (0.694) loses to dense alone. Giving each dense rank 1.5 times the
weight of a BM25 rank keeps dense as the primary order while BM25 still lifts
what both agree on and adds exact-term hits (names, numbers, codes) that the
embedding misses.

We fuse ranks, not scores: BM25 scores have no fixed scale (they grow with
query length and shift with corpus statistics) and cosine similarities of
different queries spread differently, so min-max or z-score blends need a
per-query calibration that ranks do not. Measured in ``bench.retrieval``
(see the README): on the MS MARCO subset every dense weight in 1.5–3 with k
in 30–90 and 30–100 candidates per retriever beat dense alone; on the
business-reports set (one query of eleven decides it) weight 1.5 matches
BM25, the better method there, at every k and depth tried. Weight 1.5 and
k=60 were picked from the middle of that plateau, not at its best point;
query-dependent weights (from each ranking's top-score margin) and min-max /
z-score convex blends were tried and did worse on one set or the other.

No cross-encoder rerank: none ships with Footnote (a rerank model would need
to be installed offline like MiniLM), so there is none behind a setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Ranking = Sequence[tuple[str, float]]  # (chunk id, score), best first

RRF_K = 60  # the usual RRF constant: how fast a rank's vote decays
DENSE_RANK_WEIGHT = 1.5  # a dense rank counts this many times a BM25 rank


@dataclass(frozen=True)
class Fusion:
    """Weighted RRF: score(d) = w_dense / (k + rank_dense(d)) + 1 / (k + rank_bm25(d)).

    A passage missing from one ranking simply gets no vote from it. The
    fused score is only comparable within one call (it is higher-is-better).
    """

    dense_weight: float = DENSE_RANK_WEIGHT
    lexical_weight: float = 1.0
    k: int = RRF_K

    def fuse(self, dense: Ranking, lexical: Ranking) -> list[tuple[str, float]]:
        scores: dict[str, float] = {}
        for ranking, weight in ((dense, self.dense_weight), (lexical, self.lexical_weight)):
            for rank, (chunk_id, _score) in enumerate(ranking, start=1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (self.k + rank)
        # Ties (rare) keep the dense order: it is the stronger retriever.
        order = {chunk_id: n for n, (chunk_id, _) in enumerate(dense)}
        return sorted(scores.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order))))


PLAIN_RRF = Fusion(dense_weight=1.0)
DEFAULT_FUSION = Fusion()
