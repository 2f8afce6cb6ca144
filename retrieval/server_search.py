"""The candidates of a hybrid search in a collection on a Chroma server, each
scored by both retrievers, ready for the same fusion as local collections
(``DocumentLibrary.search``).

One search sends, at the same time (the server works on them in parallel):

* the dense query: the ``candidates`` nearest chunks, with their text;
* one ``$regex`` count per term of the question (``server_lexical``): which
  chunks hold it, up to ``DF_CAP`` (remembered for ``TERM_CACHE_S``: the
  questions of one conversation, and the searches while the user types,
  share most of their words, and each count is a scan of the collection);
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
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

# Lexical candidates whose text is fetched (besides the dense ones). At
# 100k chunks (bench.remote_retrieval), 1,000 instead of 200 brought the
# server's top 8 from 53% to 75% the local one's at the same latency (the
# filters' scans cost the time, not the rows).
LEXICAL_POOL = 1000
# Requests in flight at once for one search.
MAX_PARALLEL_REQUESTS = 8
LOCATOR_KEY = "locator"  # the chunk's Locator as JSON, in its metadata
# How long a term's matches are reused, and how many terms are remembered.
# An index run while they are remembered shows in the counts after this.
TERM_CACHE_S = 120.0
TERM_CACHE_ENTRIES = 512


class TermMatches:
    """Which chunks hold each term, per collection, for ``TERM_CACHE_S``
    (thread-safe: the engine thread and the read-ahead both search)."""

    def __init__(self) -> None:
        self._found: OrderedDict[tuple[str, str, str], tuple[list[str], float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, collection: ServerCollection, term: Term) -> list[str] | None:
        key = (collection.server.url, collection.name, term.pattern)
        with self._lock:
            found = self._found.get(key)
            if found is None or time.monotonic() - found[1] > TERM_CACHE_S:
                return None
            self._found.move_to_end(key)
            return found[0]

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    def put(self, collection: ServerCollection, term: Term, ids: list[str]) -> None:
        key = (collection.server.url, collection.name, term.pattern)
        with self._lock:
            self._found[key] = (ids, time.monotonic())
            self._found.move_to_end(key)
            while len(self._found) > TERM_CACHE_ENTRIES:
                self._found.popitem(last=False)


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
    remembered: TermMatches | None = None,
) -> ServerCandidates:
    """Both retrievers' candidates in ``collection`` for ``query`` (whose
    embedding is ``vector``); ``remembered``: term matches to reuse and
    keep. Raises ``ChromaServerError`` subclasses."""
    remembered = remembered if remembered is not None else TermMatches()
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
        known = {t: remembered.get(collection, t) for t in terms}
        term_jobs: dict[Term, Future[Records]] = {
            t: pool.submit(collection.get, where_document=t.where_document, limit=DF_CAP)
            for t in terms
            if known[t] is None
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
        matches = {t: ids for t, ids in known.items() if ids is not None}
        for t, job in term_jobs.items():
            matches[t] = job.result().ids
            remembered.put(collection, t, matches[t])
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
