"""Fusing the dense (MiniLM cosine) and lexical (BM25) evidence into one ranking.

The product's fusion is a blend of calibrated scores over the union of both
retrievers' candidates (``DocumentLibrary.rankings`` scores every candidate
by both: a dense hit gets its BM25 from FTS5, a BM25 hit its cosine from its
stored vector)::

    score(d) = cosine(d)
             + 0.3  * lexical(d) / best lexical score among the candidates
             + 0.15 * share of the question's identifiers d holds exactly

Why this and not weighted reciprocal-rank fusion (RRF, used until #16): rank
fusion throws away how *much* better one candidate is than the next. When
BM25's scores are flat (a question in the user's own words, matching common
terms in many passages), its rank 1 still gets a full rank-1 vote and drags a
lexical near-miss into the top ten; when one passage holds the question's
rare terms or identifiers (``--cid``, ``E1101``) its BM25 stands far above
the rest, yet RRF gives it no more than any rank 1, below ~30 dense ranks at
dense weight 1.5. A score blend does both right by construction: the lexical
term moves the order only as far as BM25 itself separates the candidates
(flat BM25 adds nearly the same to everyone, so dense decides; a sharp peak
lifts its passage), and cosine is on one fixed scale for every query. BM25
is divided by the question's best lexical score because its raw scale grows
with question length and corpus statistics. The identifier term is absolute
evidence BM25's division cannot give: a passage that holds the ``--cid`` the
question names is lifted even when a passage *about* content ids is closer
in meaning (MiniLM reads ``--cid`` as a few word pieces); it is zero for
questions that name no identifier, so prose questions are untouched.

How the weights were chosen, and why they should hold on sets we have not
seen: tuned on no single set. ``bench.retrieval`` scores RRF (dense weight
1–3), this blend (lexical weight 0.1–0.5, identifier weight 0–0.5, with and
without a per-query BM25-peak factor), min-max (TM2C2-style) and z-score
blends on four sets of different kinds — MS MARCO web questions (dense beats
BM25 by 0.09), business reports (one judged query decides), README questions
about options and APIs (BM25 beats dense by 0.16) and paraphrased questions
about the Python language reference (BM25 beats dense by 0.10) — and picks
by leave-one-set-out: for each set, the candidate with the best margins over
max(BM25, dense) on the *other* sets, worst margin first (leximin: never
losing anywhere beats winning big somewhere), scored on the one left out.
Every fold picked a blend with lexical weight 0.3–0.5; the picks gained
0.016–0.056 on the two BM25-strong sets and were within 0.004 of dense on MS
MARCO. The same rule on all four sets picks 0.3 / 0.15, which also sits at
the end of the plateau nearer dense: the set we hold back is, like MS MARCO,
one where dense is the stronger retriever (larger lexical weights drift
below dense there). The per-query "trust BM25 more when it peaks" factor did
worse on every set (dividing by the best score already does that); RRF lost
on the BM25-strong sets whatever its weight. Figures: README and
``bench/results/retrieval.json``.

No cross-encoder rerank: none ships with Footnote (a rerank model would need
to be installed offline like MiniLM), and a question must reach its passages
in 0.5 s at 10k chunks on a laptop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Ranking = Sequence[tuple[str, float]]  # (chunk id, score), best first

RRF_K = 60  # the usual RRF constant: how fast a rank's vote decays
DENSE_RANK_WEIGHT = 1.5  # a dense rank counts this many times a BM25 rank
LEXICAL_SCORE_WEIGHT = 0.3  # the best lexical match adds this much to its cosine
IDENTIFIER_WEIGHT = 0.15  # holding every identifier the question names adds this much


class Fuser(Protocol):
    def fuse(
        self, dense: Ranking, lexical: Ranking, exact: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        """One ranking (chunk id, fused score; higher is better) of every
        candidate in either input. ``exact``: chunk id -> share of the
        question's identifiers the chunk holds exactly (empty or None when
        the question names none)."""
        ...


@dataclass(frozen=True)
class Fusion:
    """Weighted RRF, the fusion before #16 (kept for the bench's comparison):
    score(d) = w_dense / (k + rank_dense(d)) + 1 / (k + rank_bm25(d)).

    A passage missing from one ranking simply gets no vote from it. The
    fused score is only comparable within one call (it is higher-is-better).
    """

    dense_weight: float = DENSE_RANK_WEIGHT
    lexical_weight: float = 1.0
    k: int = RRF_K

    def fuse(
        self, dense: Ranking, lexical: Ranking, exact: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        del exact  # only the score blend weighs exact identifier matches
        scores: dict[str, float] = {}
        for ranking, weight in ((dense, self.dense_weight), (lexical, self.lexical_weight)):
            for rank, (chunk_id, score) in enumerate(ranking, start=1):
                if ranking is lexical and score <= 0:
                    break  # re-scored candidates that match no term get no vote
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (self.k + rank)
        for chunk_id, _ in dense:
            scores.setdefault(chunk_id, 0.0)
        return _sorted(scores, dense)


@dataclass(frozen=True)
class ScoreFusion:
    """score(d) = cosine(d) + w_q * lexical(d) / lexical_max, over candidates
    that carry both scores (``DocumentLibrary.rankings`` re-scores the union).

    ``w_q`` is ``lexical_weight`` for every query (the product's choice) or,
    with ``peak``, ``lexical_weight`` times the query's lexical peak
    ``1 - lexical_(peak_rank) / lexical_max`` (how far the best lexical
    match stands above the ``peak_rank``-th), a variant the bench compares.
    A candidate missing from ``lexical`` counts as no match (0); one missing
    from ``dense`` gets the lowest cosine there (an upper bound of its own).
    """

    lexical_weight: float = LEXICAL_SCORE_WEIGHT
    peak: bool = False
    peak_rank: int = 10
    identifier_weight: float = IDENTIFIER_WEIGHT

    def fuse(
        self, dense: Ranking, lexical: Ranking, exact: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        cosine = dict(dense)
        floor = min(cosine.values(), default=0.0)
        lex = {i: max(s, 0.0) for i, s in lexical}
        best = max(lex.values(), default=0.0)
        weight = self.lexical_weight
        if best > 0 and self.peak:
            ordered = sorted(lex.values(), reverse=True)
            nth = ordered[min(self.peak_rank, len(ordered)) - 1]
            weight *= 1.0 - nth / best
        scores = {}
        for chunk_id in cosine.keys() | lex.keys():
            lexical_part = lex.get(chunk_id, 0.0) / best if best > 0 else 0.0
            scores[chunk_id] = (
                cosine.get(chunk_id, floor)
                + weight * lexical_part
                + self.identifier_weight * (exact or {}).get(chunk_id, 0.0)
            )
        return _sorted(scores, dense)


@dataclass(frozen=True)
class MinMaxFusion:
    """cosine / cosine_max + w * lexical / lexical_max (TM2C2-style: each
    score divided by its best over the candidates): a variant the bench
    compares."""

    lexical_weight: float = 0.5

    def fuse(
        self, dense: Ranking, lexical: Ranking, exact: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        del exact  # only the score blend weighs exact identifier matches
        cosine = dict(dense)
        floor = min(cosine.values(), default=0.0)
        top = max(cosine.values(), default=0.0)
        lex = {i: max(s, 0.0) for i, s in lexical}
        best = max(lex.values(), default=0.0)
        scores = {}
        for chunk_id in cosine.keys() | lex.keys():
            dense_part = cosine.get(chunk_id, floor) / top if top > 0 else 0.0
            lexical_part = lex.get(chunk_id, 0.0) / best if best > 0 else 0.0
            scores[chunk_id] = dense_part + self.lexical_weight * lexical_part
        return _sorted(scores, dense)


@dataclass(frozen=True)
class ZScoreFusion:
    """z(cosine) + w * z(lexical) over the candidates (each standardized by
    its mean and standard deviation over the pool): a variant the bench
    compares."""

    lexical_weight: float = 0.5

    def fuse(
        self, dense: Ranking, lexical: Ranking, exact: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        del exact  # only the score blend weighs exact identifier matches
        cosine = dict(dense)
        floor = min(cosine.values(), default=0.0)
        lex = dict(lexical)
        ids = list(cosine.keys() | lex.keys())
        zc = _zscores([cosine.get(i, floor) for i in ids])
        zl = _zscores([lex.get(i, 0.0) for i in ids])
        scores = {i: c + self.lexical_weight * x for i, c, x in zip(ids, zc, zl, strict=True)}
        return _sorted(scores, dense)


def _zscores(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / sd if sd > 0 else 0.0 for v in values]


def _sorted(scores: dict[str, float], dense: Ranking) -> list[tuple[str, float]]:
    # Ties keep the dense order: it is the stronger retriever on prose.
    order = {chunk_id: n for n, (chunk_id, _) in enumerate(dense)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order))))


PLAIN_RRF = Fusion(dense_weight=1.0)
WEIGHTED_RRF = Fusion()  # dense ranks count 1.5x: the fusion before #16
DEFAULT_FUSION = ScoreFusion()
