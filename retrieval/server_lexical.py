"""The lexical half of a search on a Chroma server: the same BM25 as the
local store (:mod:`retrieval.lexical_index`), computed here over the
candidates the server hands back.

What Chroma 1.x offers for words, checked against ``chroma run`` 1.5:

* ``where_document`` filters, ``$contains`` (a case-sensitive substring) and
  ``$regex`` (Rust syntax, so ``(?i)`` works), on ``get``, ``query`` and
  ``delete``. They select; they do not score, and a filter costs a scan:
  ~100 ms at 100k chunks on the 2-core VM, matches or not.
* BM25 as sparse vectors (``ChromaBm25EmbeddingFunction``, a sparse vector
  index) and rank fusion (``Rrf``) belong to the ``search()`` API, which a
  local ``chroma run`` refuses: "Search operation is not implemented for
  local executor" (only distributed Chroma and Chroma Cloud run it).

So the server selects and this module scores. For each of the question's
terms (its BM25 words and its identifiers, as locally) one ``$regex``
filter counts the chunks that hold it, up to ``DF_CAP`` (the document
frequency BM25's idf needs; a term above the cap is common and weighs
little either way). The matches of the rarest terms, and of all terms
together, are the lexical candidates (``server_search``); their text comes
back with them, and each is scored here with SQLite FTS5's own tokenizer
(the local index's ``porter unicode61 remove_diacritics 2``, in an
in-memory table) and FTS5's BM25 formula, over the server's counts.

Where it differs from the local score, on purpose: a word's document
frequency is counted by a filter on its stem's letters (``report`` for
"reports", which also counts "reporter"); counts above ``DF_CAP`` are taken
as ``DF_CAP``; the average passage length is the candidates', and so is
the share of chunks that hold any identifier (the local identifier table
counts only those). None of them moves a passage that holds the question's
rare words.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from retrieval.identifiers import identifiers, query_identifiers
from retrieval.lexical_index import IDENT_WEIGHT, MAX_QUERY_TERMS, WORD_TOKENIZER, query_words

# Chunks counted per term; above this a term is common (idf <= ~2.2 at 100k).
# The cap hardly changes a filter's cost (the server scans every chunk
# either way: ~100 ms at 100k chunks); 10,000 ids are ~170 KB of JSON.
DF_CAP = 10_000
BM25_K1 = 1.2  # FTS5's bm25() constants
BM25_B = 0.75
# A stem shorter than this is matched as the whole word the user typed
# ("tv", not "t").
MIN_STEM_CHARS = 3
# A passage's length in tokens as unicode61 counts them (runs of letters and
# digits; "_" separates), without tokenizing it: BM25 needs only the count.
_TOKEN = re.compile(r"[^\W_]+")
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$#&~-])")

TermKind = Literal["word", "ident"]


@dataclass(frozen=True)
class Term:
    kind: TermKind
    token: str  # the FTS5 token (a stem) for words; the identifier for identifiers
    pattern: str  # the server's $regex that finds the chunks holding it

    @property
    def where_document(self) -> dict[str, Any]:
        return {"$regex": self.pattern}


def regex_literal(text: str) -> str:
    """``text`` as a literal in a Rust regex (which rejects escapes of
    letters and digits, so ``re.escape`` is not used)."""
    return _REGEX_META.sub(r"\\\1", text)


def query_terms(query: str) -> list[Term]:
    """The question's BM25 words (as stems) and identifiers, each with the
    server filter that finds it."""
    words = query_words(query)
    stems = word_stems(words)
    terms: list[Term] = []
    seen: set[tuple[str, str]] = set()
    for word in words:
        stem = stems.get(word)
        if not stem or ("word", stem) in seen:
            continue
        seen.add(("word", stem))
        root = _common_prefix(word, stem)
        if len(root) < MIN_STEM_CHARS:
            root = word
        # \b: "cost" is not looked for inside "accost"
        terms.append(Term("word", stem, r"(?i)\b" + regex_literal(root)))
    for ident in query_identifiers(query)[:MAX_QUERY_TERMS]:
        if ("ident", ident) not in seen:
            seen.add(("ident", ident))
            terms.append(Term("ident", ident, "(?i)" + regex_literal(ident)))
    return terms


def word_stems(words: Sequence[str]) -> dict[str, str]:
    """word -> its FTS5 token under the local index's tokenizer (a word the
    tokenizer splits or drops gets its first token, or none)."""
    with _Vocabulary(dict(enumerate(words, start=1))) as vocab:
        found: dict[int, str] = {}
        for term, doc in vocab.in_order():
            found.setdefault(doc, term)
    return {w: found[n] for n, w in enumerate(words, start=1) if n in found}


def bm25_scores(
    texts: Mapping[str, str],
    terms: Sequence[Term],
    frequencies: Mapping[Term, int],
    total: int,
) -> dict[str, float]:
    """chunk id -> its lexical score (higher is better; 0 when it holds no
    term): word BM25 plus ``IDENT_WEIGHT`` times identifier BM25, as
    :func:`retrieval.lexical_index.search` scores, with each term's document
    frequency from ``frequencies`` over ``total`` chunks (identifiers over
    the chunks that hold any, estimated from the candidates)."""
    ids = list(texts)
    scores = dict.fromkeys(ids, 0.0)
    words = [t for t in terms if t.kind == "word"]
    if words and ids:
        with _Vocabulary({n: texts[i] for n, i in enumerate(ids, start=1)}) as vocab:
            tf = vocab.counts({t.token for t in words})
        length = {n: len(_TOKEN.findall(texts[i])) for n, i in enumerate(ids, start=1)}
        average = sum(length.values()) / max(len(length), 1)
        for n, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] += sum(
                _bm25(tf.get((t.token, n), 0), length[n], average, frequencies.get(t, 0), total)
                for t in words
            )
    idents = [t for t in terms if t.kind == "ident"]
    if idents and ids:
        held = {i: Counter(identifiers(texts[i])) for i in ids}
        sizes = [sum(c.values()) for c in held.values() if c]
        average = sum(sizes) / max(len(sizes), 1)
        # The local identifier table holds only chunks that have identifiers:
        # its BM25 counts those. Their share among the candidates stands in
        # for their share on the server.
        with_idents = max(
            round(total * len(sizes) / len(ids)), *(frequencies.get(t, 0) for t in idents), 1
        )
        for chunk_id, counts in held.items():
            dl = sum(counts.values())
            scores[chunk_id] += IDENT_WEIGHT * sum(
                _bm25(counts.get(t.token, 0), dl, average, frequencies.get(t, 0), with_idents)
                for t in idents
            )
    return scores


def _bm25(tf: int, dl: int, average: float, df: int, total: int) -> float:
    """One term's share of FTS5's bm25() (its sign flipped: higher is better)."""
    if tf <= 0:
        return 0.0
    df = max(df, 1)  # the candidate holds it, so at least one chunk does
    idf = math.log((total - df + 0.5) / (df + 0.5))
    idf = max(idf, 1e-6)  # FTS5 floors it the same way
    norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / average) if average > 0 else BM25_K1
    return idf * tf * (BM25_K1 + 1) / (tf + norm)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


class _Vocabulary:
    """Texts in an in-memory FTS5 table with the local index's tokenizer,
    read back token by token (``fts5vocab``): the same tokens, stems and
    lengths the local BM25 sees."""

    def __init__(self, texts: Mapping[int, str]) -> None:
        self._db = sqlite3.connect(":memory:")
        self._db.execute(f"CREATE VIRTUAL TABLE t USING fts5(text, tokenize = '{WORD_TOKENIZER}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        self._db.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", texts.items())

    def counts(self, tokens: set[str]) -> dict[tuple[str, int], int]:
        """(token, text number) -> how many times the text holds it, for these tokens."""
        marks = ",".join("?" for _ in tokens)
        rows = self._db.execute(
            f"SELECT term, doc, COUNT(*) FROM v WHERE term IN ({marks}) GROUP BY term, doc",
            sorted(tokens),
        )
        return {(str(t), int(d)): int(c) for t, d, c in rows}

    def in_order(self) -> list[tuple[str, int]]:
        """(token, text number), each text's tokens in their order."""
        rows = self._db.execute("SELECT term, doc FROM v ORDER BY doc, offset")
        return [(str(t), int(d)) for t, d in rows]

    def __enter__(self) -> _Vocabulary:
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()
