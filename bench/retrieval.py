"""Retrieval quality: BM25 only, dense only and hybrid, side by side, on
every set, with the fusion chosen by leave-one-set-out.

    .venv/bin/python -m bench.retrieval [../shared/eval/msmarco ../shared/eval/business-reports]

Each argument is a BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/test.tsv``); with none, the two sets in ``../shared/eval``. The
corpus goes through the product's own code: every passage becomes a file in
a collection, ``index_collection`` writes the manifest, chroma and FTS5
(passages are already chunk-sized, so the chunker is one chunk per file,
title + text), and queries go through ``DocumentLibrary.rankings`` and the
product's fusion. A third set is always added: ``package-readmes``, the
READMEs of installed packages (``bench/eval/package_readmes.json`` holds the
questions and what makes a chunk relevant; the text is read from the venv at
bench time and cut by the product's own chunker), whose questions name
options, functions, versions and error codes as users' do.

Methods: ``bm25-words`` (FTS5 words only, as before identifiers),
``bm25`` (the product's lexical side: words + identifiers), ``dense``,
``hybrid`` (the product's fusion), and every fusion in ``FUSIONS``; the
leave-one-set-out table picks a candidate on all sets but one by the worst
margin over max(BM25, dense) and scores it on the one left out. Embeddings
are cached under ``bench/.cache/`` keyed by model id + text hash, so reruns
skip the minutes MiniLM takes on 5,000 passages.

Prints the tables and writes ``bench/results/retrieval.json``:
``{"sets": {"<set>": {"<method>": {"ndcg@10": x, "recall@10": y}}}, "loso": [...]}``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.generation import write_results
from retrieval import lexical_index
from retrieval.documents import CANDIDATES_PER_RETRIEVER, DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.file_reader import EmbedderLike
from retrieval.hybrid import (
    DEFAULT_FUSION,
    WEIGHTED_RRF,
    Fuser,
    Fusion,
    MinMaxFusion,
    ScoreFusion,
    ZScoreFusion,
)
from retrieval.ingest_events import IngestFinished
from retrieval.locator import Locator
from retrieval.passage import RetrievedPassage

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SHARED_EVAL = HERE.parent.parent / "shared" / "eval"
FIXTURES = sorted((HERE / "eval").glob("*.json"))
CUTOFF = 10
CANDIDATES = CANDIDATES_PER_RETRIEVER  # as the product's search uses


class CachedEmbedder:
    """An embedder whose document vectors are remembered on disk (SQLite)."""

    def __init__(self, inner: Embedder, cache_file: Path) -> None:
        self.inner = inner
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(cache_file, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, vector BLOB)")
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        keys = [hashlib.sha256(f"{self.model_id}\0{t}".encode()).hexdigest() for t in texts]
        with self._lock:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" for _ in part)
                found.update(
                    self._db.execute(f"SELECT key, vector FROM v WHERE key IN ({marks})", part)
                )
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.embed_documents([texts[i] for i in missing])
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    [(keys[i], fresh[j].tobytes()) for j, i in enumerate(missing)],
                )
                self._db.commit()
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j].tobytes()
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])


@dataclass(frozen=True)
class _PassageChunk:
    text: str
    locator: Locator
    content_hash: str

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.content_hash}\0{self.locator.path}".encode()).hexdigest()[:32]


def _passage_chunker(path: Path, _embedder: EmbedderLike) -> Iterator[_PassageChunk]:
    text = path.read_text(encoding="utf-8")
    yield _PassageChunk(
        text, Locator(kind="document", path=str(path)), hashlib.sha256(text.encode()).hexdigest()
    )


def load_beir(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc.get('title', '')} {doc['text']}".strip()
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return corpus, queries, qrels


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], cutoff: int = CUTOFF) -> float:
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:cutoff]))
    ideal = sorted(judged.values(), reverse=True)[:cutoff]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], cutoff: int = CUTOFF) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:cutoff])) / len(relevant) if relevant else 0.0


@dataclass
class Run:
    """Candidate scores of every query, in corpus ids, from the product's index:
    ``dense`` and ``lexical`` over the union of both retrievers' candidates (as
    ``DocumentLibrary.rankings`` returns them), ``words`` the lexical side
    without identifiers."""

    dense: dict[str, list[tuple[str, float]]]
    lexical: dict[str, list[tuple[str, float]]]
    words: dict[str, list[tuple[str, float]]]
    qrels: dict[str, dict[str, int]]
    exact: dict[str, dict[str, float]]  # share of the question's identifiers each holds
    kinds: dict[str, str] = field(default_factory=dict)  # query id -> identifier/prose

    def ranking(self, qid: str, method: str | Fuser) -> list[str]:
        if method == "dense":
            ranking = self.dense[qid]
        elif method == "bm25":
            ranking = [(i, s) for i, s in self.lexical[qid] if s > 0]
        elif method == "bm25-words":
            ranking = [(i, s) for i, s in self.words[qid] if s > 0]
        elif method == "hybrid":  # the product's fusion
            ranking = DEFAULT_FUSION.fuse(self.dense[qid], self.lexical[qid], self.exact[qid])
        elif isinstance(method, str):
            raise ValueError(method)
        else:
            ranking = method.fuse(self.dense[qid], self.lexical[qid], self.exact[qid])
        return [i for i, _ in ranking]

    def score(self, method: str | Fuser, kind: str | None = None) -> dict[str, float]:
        ndcg, recall = [], []
        for qid, judged in self.qrels.items():
            if qid not in self.dense or (kind is not None and self.kinds.get(qid) != kind):
                continue
            ids = self.ranking(qid, method)
            ndcg.append(ndcg_at(ids, judged))
            recall.append(recall_at(ids, judged))
        return {
            "ndcg@10": round(float(np.mean(ndcg)), 4) if ndcg else 0.0,
            "recall@10": round(float(np.mean(recall)), 4) if recall else 0.0,
        }


def _query_all(
    library: DocumentLibrary,
    name: str,
    queries: dict[str, str],
    doc_of: Callable[[RetrievedPassage], str],
) -> tuple[dict[str, Any], ...]:
    """(dense, lexical, words-only lexical, identifier shares) of every query,
    in corpus ids."""
    target = [library.collection(name)]
    doc_of_chunk: dict[str, str] = {}

    def docs(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
        unknown = [i for i, _ in ranking if i not in doc_of_chunk]
        for p in library.passages(target, [(i, 0.0) for i in unknown]):
            doc_of_chunk[p.id] = doc_of(p)
        return [(doc_of_chunk[i], s) for i, s in ranking if i in doc_of_chunk]

    dense, lexical, words, exact = {}, {}, {}, {}
    for qid, text in queries.items():
        d, b = library.rankings(text, target, CANDIDATES)
        dense[qid], lexical[qid] = docs(d), docs(b)
        shares = library.exact_matches(text, target, [i for i, _ in d])
        exact[qid] = dict(docs(list(shares.items())))
        ident_weight = lexical_index.IDENT_WEIGHT
        lexical_index.IDENT_WEIGHT = 0.0  # the lexical side as it was before identifiers
        try:
            words[qid] = docs(library.rankings(text, target, CANDIDATES)[1])
        finally:
            lexical_index.IDENT_WEIGHT = ident_weight
    return dense, lexical, words, exact


def _index(library: DocumentLibrary, name: str, docs: Path) -> None:
    library.add_collection(name, [docs])
    for event in library.index(name, threading.Event()):
        if isinstance(event, IngestFinished):
            print(
                f"  {name}: indexed {event.summary.indexed} files in {event.summary.seconds:.0f} s",
                file=sys.stderr,
            )


def run_dataset(folder: Path, embedder: EmbedderLike, work: Path) -> Run:
    corpus, queries, qrels = load_beir(folder)
    docs = work / "docs"
    docs.mkdir(parents=True)
    path_of: dict[str, str] = {}
    for n, (doc_id, text) in enumerate(corpus.items()):
        path = docs / f"{n:06d}.txt"
        path.write_text(text, encoding="utf-8")
        path_of[str(path)] = doc_id
    library = DocumentLibrary(work / "data", lambda: embedder, chunker=_passage_chunker)
    try:
        _index(library, folder.name, docs)
        dense, lexical, words, exact = _query_all(
            library, folder.name, queries, lambda p: path_of[p.locator.path or ""]
        )
    finally:
        library.close()
    return Run(dense, lexical, words, qrels, exact)


# ------------------------------------------------------------ package READMEs


def _readme(package: str) -> tuple[str, str, str] | None:
    """(version, suffix, long description) of an installed package, or None."""
    try:
        meta = importlib.metadata.metadata(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    body = meta.get_payload()  # type: ignore[attr-defined]
    text = body if isinstance(body, str) and body.strip() else meta.get("Description", "")
    if not text.strip():
        return None
    kind = (meta.get("Description-Content-Type") or "text/x-rst").lower()
    suffix = ".md" if "markdown" in kind else ".txt" if "plain" in kind else ".rst"
    return meta["Version"], suffix, text


_MARKUP = re.compile(r"[`*_]+|\s+")


def _plain(text: str) -> str:
    """Lower-cased, markup characters dropped, whitespace collapsed: how
    snippets and chunk texts are compared (``_`` dropped too, on both sides)."""
    return _MARKUP.sub(lambda m: " " if m.group().isspace() else "", text.lower()).strip()


def _write_corpus(spec: dict[str, Any], docs: Path, name: str) -> dict[str, str]:
    """Write the fixture's documents into ``docs`` (one file each); returns
    document name -> where its text came from (package version, Python version)."""
    written = {}
    if spec["source"] == "package-readmes":
        for package in spec["docs"]:
            found = _readme(package)
            if found is None:
                print(f"  {name}: {package} is not installed; skipped", file=sys.stderr)
                continue
            version, suffix, text = found
            (docs / f"{package}{suffix}").write_text(text, encoding="utf-8")
            written[package] = f"{package} {version}"
    elif spec["source"] == "pydoc-topics":
        from pydoc_data.topics import topics  # the language reference behind help()

        for topic, text in topics.items():
            (docs / f"{topic}.rst").write_text(text, encoding="utf-8")
            written[topic] = f"Python {platform.python_version()}"
    else:
        raise ValueError(f"unknown fixture source {spec['source']!r}")
    return written


def run_fixture(fixture: Path, embedder: EmbedderLike, work: Path) -> Run:
    """A set whose corpus is installed text and whose judgments are snippets
    (see ``bench/eval/*.json``), indexed with the product's own chunker."""
    spec = json.loads(fixture.read_text(encoding="utf-8"))
    name = fixture.stem.replace("_", "-")
    docs = work / "docs"
    docs.mkdir(parents=True)
    written = _write_corpus(spec, docs, name)
    library = DocumentLibrary(work / "data", lambda: embedder)
    try:
        _index(library, name, docs)
        target = library.collection(name)
        with library._db.transaction() as db:
            rows = db.execute(
                "SELECT id, path, text FROM chunks WHERE collection_id = ?", (target.id,)
            ).fetchall()
        queries, qrels, kinds = {}, {}, {}
        for q in spec["queries"]:
            if q["doc"] not in written:
                continue
            snippets = [_plain(s) for s in q["snippets"]]
            relevant = {
                chunk_id: 1
                for chunk_id, path, text in rows
                if Path(path).stem == q["doc"] and any(s in _plain(text) for s in snippets)
            }
            if not relevant:
                print(
                    f"  {name}: {q['id']}: no chunk of {written[q['doc']]} "
                    "holds its snippet; skipped",
                    file=sys.stderr,
                )
                continue
            queries[q["id"]], qrels[q["id"]], kinds[q["id"]] = q["text"], relevant, q["kind"]
        dense, lexical, words, exact = _query_all(library, name, queries, lambda p: p.id)
    finally:
        library.close()
    print(
        f"  {name}: {len(rows)} chunks, {len(queries)} questions "
        f"({sum(k == 'identifier' for k in kinds.values())} about identifiers)",
        file=sys.stderr,
    )
    return Run(dense, lexical, words, qrels, exact, kinds)


# ------------------------------------------------------------ choosing the fusion

# Fusions tried on every set; leave-one-set-out picks among them. Grids are
# coarse on purpose: a finer one only fits the sets we happen to have.
FUSIONS: dict[str, Fuser] = {
    **{f"rrf w={w:g}": Fusion(dense_weight=w) for w in (1.0, 1.5, 2.0, 3.0)},
    **{
        f"score a={a:g}{' peak' if peak else ''}": ScoreFusion(a, peak, identifier_weight=0.0)
        for a in (0.1, 0.2, 0.3, 0.5)
        for peak in (False, True)
    },
    **{
        f"score a={a:g} ident={b:g}": ScoreFusion(a, identifier_weight=b)
        for a in (0.2, 0.3, 0.5)
        for b in (0.15, 0.3, 0.5)
    },
    **{f"tm2c2 a={a:g}": MinMaxFusion(a) for a in (0.3, 0.5, 1.0)},
    **{f"z a={a:g}": ZScoreFusion(a) for a in (0.25, 0.5, 1.0)},
}
BASES = ("bm25", "dense")


def margin(run: Run, method: str | Fuser) -> float:
    """nDCG@10 of ``method`` minus the better of BM25 and dense alone."""
    best_base = max(run.score(b)["ndcg@10"] for b in BASES)
    return run.score(method)["ndcg@10"] - best_base


def _leximin(margins: Sequence[float]) -> tuple[float, ...]:
    """Compare candidates by their worst margin, then the next worst, and so on."""
    return tuple(sorted(margins))


def pick(margins: dict[str, dict[str, float]], sets: Sequence[str]) -> str:
    """The candidate whose margins over max(BM25, dense) on ``sets`` are best,
    worst first (leximin): never losing anywhere beats winning big somewhere."""
    return max(FUSIONS, key=lambda n: _leximin([margins[s][n] for s in sets]))


def leave_one_set_out(runs: dict[str, Run]) -> tuple[list[dict[str, object]], str]:
    """For each set: the candidate picked on the others, and its margin on the
    one left out; and the candidate the same rule picks on every set."""
    rows = []
    margins = {s: {n: margin(r, f) for n, f in FUSIONS.items()} for s, r in runs.items()}
    for held, run in runs.items():
        others = [s for s in runs if s != held]
        chosen = pick(margins, others)
        rows.append(
            {
                "held_out": held,
                "picked": chosen,
                "worst_margin_on_others": round(min(margins[s][chosen] for s in others), 4),
                "margin_on_held_out": round(margins[held][chosen], 4),
                "product_margin_on_held_out": round(margin(run, "hybrid"), 4),
            }
        )
    return rows, pick(margins, list(runs))


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()}, load average {load:.1f} at the end"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="*", type=Path, help="BEIR folders")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--no-fixtures", action="store_true", help="only the BEIR folders, not bench/eval/*.json"
    )
    args = parser.parse_args()
    datasets = args.datasets or [SHARED_EVAL / "msmarco", SHARED_EVAL / "business-reports"]
    embedder = CachedEmbedder(Embedder(), CACHE / "embeddings.sqlite3")
    runs: dict[str, Run] = {}
    for folder in datasets:
        with tempfile.TemporaryDirectory() as work:
            runs[folder.name] = run_dataset(folder.resolve(), embedder, Path(work))
    for fixture in [] if args.no_fixtures else FIXTURES:
        with tempfile.TemporaryDirectory() as work:
            runs[fixture.stem.replace("_", "-")] = run_fixture(fixture, embedder, Path(work))
    methods = ["bm25-words", "bm25", "dense", "hybrid", "rrf-before"]
    sets: dict[str, dict[str, object]] = {}
    print(f"| set | method | nDCG@{CUTOFF} | recall@{CUTOFF} |\n|---|---|---:|---:|")
    for name, run in runs.items():
        scores: dict[str, object] = {}
        for method in [*methods, *FUSIONS]:
            got = run.score(FUSIONS.get(method, WEIGHTED_RRF if method == "rrf-before" else method))
            scores[method] = got
            print(f"| {name} | {method} | {got['ndcg@10']:.3f} | {got['recall@10']:.3f} |")
        for kind in sorted(set(run.kinds.values())):
            scores[f"by kind: {kind}"] = {
                m: run.score(m, kind)["ndcg@10"] for m in ("bm25-words", "bm25", "dense", "hybrid")
            }
            print(f"| {name}, {kind} questions | nDCG@10 | {scores[f'by kind: {kind}']} |")
        sets[name] = scores
    loso, on_all = leave_one_set_out(runs)
    print(
        "\n| held out | picked on the others | worst margin there | margin held out | "
        "product fusion's margin held out |\n|---|---|---:|---:|---:|"
    )
    for row in loso:
        print(
            f"| {row['held_out']} | {row['picked']} | {row['worst_margin_on_others']:+.3f} | "
            f"{row['margin_on_held_out']:+.3f} | {row['product_margin_on_held_out']:+.3f} |"
        )
    same = FUSIONS[on_all] == DEFAULT_FUSION
    print(
        f"\npicked on all {len(runs)} sets: {on_all} "
        f"({'the product fusion' if same else 'NOT the product fusion: ' + repr(DEFAULT_FUSION)})"
    )
    results = {
        "machine": machine(),
        "sets": sets,
        "loso": loso,
        "picked_on_all_sets": on_all,
        "product_fusion": repr(DEFAULT_FUSION),
    }
    write_results("retrieval.json", results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
