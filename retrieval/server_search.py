"""The candidates of a hybrid search in a collection on a Chroma server, each
scored by both retrievers, ready for the same fusion as local collections
(``DocumentLibrary.search``).

One search sends, at the same time (the server works on them in parallel):

* the dense query: the ``candidates`` nearest chunks, with their text;
* one ``$regex`` count per term of the question (``server_lexical``): which
  chunks hold it, up to ``DF_CAP``;
* one filter for the chunks that hold *every* word of the question (up to
  ``LEXICAL_POOL``): BM25's best when all its words are common.

Then the lexical candidates are the chunks of the rarest terms (rarest
first, while they fit in ``LEXICAL_POOL``) and of the all-words filter; one
more request brings their text and their cosine (the server measures their
stored vectors against the question's), and every candidate gets its BM25
(``server_lexical``), as local candidates do in ``DocumentLibrary.rankings``.

Nothing of the team's text is kept on this machine: the candidates live in
memory for one search.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retrieval.chroma_server import Records, ServerCollection
from retrieval.identifiers import identifiers, query_identifiers
from retrieval.locator import Locator
from retrieval.server_lexical import DF_CAP, Term, bm25_scores, query_terms

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

# Lexical candidates whose text is fetched (besides the dense ones).
LEXICAL_POOL = 200
# Requests in flight at once for one search.
MAX_PARALLEL_REQUESTS = 8
LOCATOR_KEY = "locator"  # the chunk's Locator as JSON, in its metadata


@dataclass
class ServerCandidates:
    """One server collection's candidates: each retriever's scores over the
    union, the question's identifiers each holds, and their passages."""

    dense: dict[str, float] = field(default_factory=dict)  # chunk id -> cosine
    lexical: dict[str, float] = field(default_factory=dict)  # chunk id -> BM25
    exact: dict[str, float] = field(default_factory=dict)  # share of the identifiers
    texts: dict[str, str] = field(default_factory=dict)
    locators: dict[str, Locator] = field(default_factory=dict)


def search_candidates(
    collection: ServerCollection,
    query: str,
    vector: npt.NDArray[np.float32],
    candidates: int,
) -> ServerCandidates:
    """Both retrievers' candidates in ``collection`` for ``query`` (whose
    embedding is ``vector``). Raises ``ChromaServerError`` subclasses."""
    terms = query_terms(query)
    words = [t for t in terms if t.kind == "word"]
    with ThreadPoolExecutor(MAX_PARALLEL_REQUESTS, thread_name_prefix="footnote-server") as pool:
        dense_job = pool.submit(
            collection.query,
            vector,
            candidates,
            include=("distances", "documents", "metadatas"),
        )
        count_job = pool.submit(collection.count)
        term_jobs = {
            t: pool.submit(collection.get, where_document=t.where_document, limit=DF_CAP)
            for t in terms
        }
        all_words_job = (
            pool.submit(
                collection.get,
                where_document={"$and": [t.where_document for t in words]},
                limit=LEXICAL_POOL,
            )
            if len(words) > 1
            else None
        )
        dense = dense_job.result()
        total = count_job.result()
        matches = {t: job.result().ids for t, job in term_jobs.items()}
        together = all_words_job.result().ids if all_words_job is not None else []
    found = ServerCandidates()
    _keep(found, dense)
    found.dense = {i: 1.0 - d for i, d in zip(dense.ids, dense.distances, strict=True)}
    pool_ids = _lexical_pool(matches, together, exclude=set(found.texts))
    if pool_ids:
        extra = collection.query(
            vector,
            len(pool_ids),
            ids=pool_ids,
            include=("distances", "documents", "metadatas"),
        )
        _keep(found, extra)
        found.dense.update((i, 1.0 - d) for i, d in zip(extra.ids, extra.distances, strict=True))
    frequencies = {t: len(ids) for t, ids in matches.items()}
    found.lexical = bm25_scores(found.texts, terms, frequencies, max(total, 1))
    found.exact = _identifier_share(query, found.texts)
    return found


def _lexical_pool(
    matches: dict[Term, list[str]], together: Sequence[str], exclude: set[str]
) -> list[str]:
    """Chunk ids to fetch: those holding every word, then the rarest terms'
    (a term whose matches would overflow the pool is common: its chunks
    come through the dense query or the all-words filter)."""
    chosen: list[str] = [i for i in together if i not in exclude][:LEXICAL_POOL]
    taken = set(chosen) | exclude
    for term in sorted(matches, key=lambda t: len(matches[t])):
        new = [i for i in matches[term] if i not in taken]
        if len(chosen) + len(new) > LEXICAL_POOL:
            break
        chosen.extend(new)
        taken.update(new)
    return chosen


def _keep(found: ServerCandidates, records: Records) -> None:
    for chunk_id, text, meta in zip(records.ids, records.documents, records.metadatas, strict=True):
        found.texts[chunk_id] = text or ""
        found.locators[chunk_id] = locator_of(meta)


def locator_of(meta: dict[str, object]) -> Locator:
    """The chunk's locator from its metadata (its path alone when the
    locator is missing or unreadable: a collection written by an older
    Footnote, or by hand)."""
    raw = meta.get(LOCATOR_KEY)
    if isinstance(raw, str):
        try:
            return Locator.from_dict(json.loads(raw))
        except (ValueError, TypeError):
            log.warning("a chunk on the server has an unreadable locator: %.100s", raw)
    return Locator("document", path=str(meta.get("path") or "") or None)


def _identifier_share(query: str, texts: dict[str, str]) -> dict[str, float]:
    wanted = query_identifiers(query)
    if not wanted:
        return {}
    share = {}
    for chunk_id, text in texts.items():
        have = set(identifiers(text))
        share[chunk_id] = sum(1 for i in wanted if i in have) / len(wanted)
    return share
