"""The whole grounding path on a real folder: does the passage that answers
reach the model, how many tokens go with it, and do chit-chat turns stay
ungrounded?

    .venv/bin/python -m bench.grounding [--targets fast balanced thorough]
        [--modes auto always] [--latency-chunks 10000] [--prompt-speed 19.0]

The folder is built at bench time (``bench/grounding_folder.py``: installed
source, click docs as Markdown, statistics docs as a PDF, json docs as a
DOCX) and indexed by the product's own ``DocumentLibrary`` (MiniLM vectors
cached under ``~/.cache/footnote-dev/grounding/`` so reruns skip the
embedding; the index itself is rebuilt every run). Every turn of
``bench/grounding_questions.json`` runs the real turn path: ``ChatSession``
on a tiny Phi-3 GGUF with Phi-3's tokenizer, with ``GroundingSource`` as
its context source and a :class:`~engine.turn.TurnBudget` per first-word
target, one session per (mode, target) so the system prompt is cached after
the first turn as in the app.

**Prompt speed and tokens.** The tiny model reads prompts in milliseconds,
so the time targets would never trim anything: each turn is planned with
Phi-3-mini Q4's measured prompt speed on this 2-core VM (19 tokens/s) and
Phi-3-mini's 4K context. The tiny model is written with Phi-3's own
tokenizer (llama.cpp's ``models/ggml-vocab-phi-3.gguf``, from the sources
``bench.llama_build`` downloads), so every count (sources, question,
history, the planner's floors) is in Phi-3's tokens. Its weights are random:
document search never asks the model for a query.

Measures, per mode (Auto, the app's default, and Always) and target:
evidence recall (the answer string, case and whitespace aside, is inside a
passage that was sent), the answer's rank among the passages sent, source
tokens sent, false grounding (a no-document turn that was sent any document
passage; general-knowledge turns are counted apart), and the time from the
question to the passages (``ChatSession.run`` start to its ``Sources``
event). Every missed question is listed with why: ``not retrieved`` (not in
the search's top 8), ``gate said no`` (found, the Auto rule sent nothing),
``held back`` (found, the Auto rule sent other passages but not this one),
``trimmed`` (given to the planner and left out, or shortened from its end
so the answer's sentence went).

Then question -> passages at 10k chunks: ``GroundingSource`` on an index
built as ``bench.query_latency`` builds one (real chunk texts in FTS5, random
unit vectors in chroma), p50/p95 over the questions.

Writes ``bench/results/grounding.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from app.settings import DEFAULT_SYSTEM_PROMPT
from app.wiring.grounding import GroundingChoice, GroundingSource
from bench.generation import write_results
from bench.grounding_folder import build_folder
from bench.llama_build import phi3_vocabulary
from bench.retrieval import CachedEmbedder
from engine.budget import FirstWordTarget
from engine.chat_template import ChatMessage
from engine.context import ContextRequest, Passage, passage_block
from engine.events import Failed, Finished, Sources
from engine.hardware import physical_cores
from engine.model import DEFAULT_CONTEXT_TOKENS, LoadOptions, LocalModel, load_model
from engine.synthetic_model import read_vocabulary, write_phi3_gguf
from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest
from retrieval.documents import DocumentLibrary
from retrieval.embedding import Embedder
from retrieval.ingest_events import FileFailed, IngestFinished
from retrieval.passage import RetrievedPassage

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "grounding_questions.json"
CACHE = Path.home() / ".cache" / "footnote-dev" / "grounding"
COLLECTION = "bench-folder"
# Phi-3-mini Q4_K_M prompt speed measured on this 2-core VM (bench.engine).
PHI3_PROMPT_TOKENS_PER_S = 19.0
LATENCY_WARMUP_QUERIES = 5


def normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


# ------------------------------------------------------------ embedding cache


class IndexingCache:
    """MiniLM with a disk cache for indexing only: a question's embedding is
    always computed, so the timed path pays for it as a user's would."""

    def __init__(self, embedder: Embedder, cache_file: Path) -> None:
        self._cached = CachedEmbedder(embedder, cache_file)
        self._inner = embedder
        self.indexing = True

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def max_tokens(self) -> int:
        return self._inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> Any:
        if self.indexing:
            return self._cached.embed_documents(texts)
        return self._inner.embed_documents(texts)


# ------------------------------------------------------------ recording wrappers


class RecordingLibrary:
    """The library as ``GroundingSource`` sees it, remembering what the
    search found (before the Auto rule and the planner)."""

    def __init__(self, library: DocumentLibrary) -> None:
        self._library = library
        self.found: list[RetrievedPassage] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._library, name)

    def search(self, query: str, collections: Any = None, k: int = 8) -> list[RetrievedPassage]:
        self.found = self._library.search(query, collections, k)
        return self.found


class RecordingSource:
    """The context source, remembering what it gave the planner."""

    def __init__(self, source: GroundingSource) -> None:
        self.source = source
        self.returned: list[Passage] = []

    def __call__(
        self, request: ContextRequest, cancel: threading.Event
    ) -> Generator[Any, None, Sequence[Passage]]:
        self.returned = []
        result = yield from self.source(request, cancel)
        self.returned = list(result)
        return result


# ------------------------------------------------------------ the runs


@dataclass
class TurnResult:
    id: str
    group: str  # question / no_documents / general_knowledge
    seconds_to_passages: float
    sent: list[Passage]
    found: list[RetrievedPassage]
    returned: list[Passage]
    decision: tuple[bool, str] | None
    source_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)


def _mode_choice(mode: str) -> GroundingChoice:
    """Auto/Always when the grounding source has a documents mode; before
    that lands, every found passage is offered (what "always" means)."""
    fields = getattr(GroundingChoice, "__dataclass_fields__", {})
    if "documents" not in fields:
        if mode != "always":
            raise SystemExit(
                "this build's GroundingSource has no documents mode: run with --modes always"
            )
        return GroundingChoice(collections=None)
    from retrieval.source_decision import SourceMode

    return GroundingChoice(collections=None, documents=SourceMode(mode))


def run_turns(
    model: LocalModel,
    library: DocumentLibrary,
    turns: list[dict[str, Any]],
    *,
    mode: str,
    target: FirstWordTarget,
    prompt_tokens_per_s: float,
) -> list[TurnResult]:
    recording = RecordingLibrary(library)
    grounding = GroundingSource(cast(DocumentLibrary, recording), None, _mode_choice(mode))
    source = RecordingSource(grounding)
    session = ChatSession(model)
    budget = TurnBudget(target, prompt_tokens_per_s=prompt_tokens_per_s)
    results = []
    for turn in turns:
        history = turn.get("history") or []
        request = TurnRequest(
            system_prompt=DEFAULT_SYSTEM_PROMPT,
            history=tuple(
                ChatMessage("user" if n % 2 == 0 else "assistant", text)
                for n, text in enumerate(history)
            ),
            user_message=turn["message"],
            sampling=SamplingParams(temperature=0.0, max_answer_tokens=1),
        )
        recording.found = []
        started = time.perf_counter()
        to_passages: float | None = None
        finished: Finished | None = None
        for event in session.run(request, threading.Event(), source, budget=budget):
            if isinstance(event, Sources) and to_passages is None:
                to_passages = time.perf_counter() - started
            elif isinstance(event, Finished):
                finished = event
            elif isinstance(event, Failed):
                raise event.error
        assert finished is not None
        if to_passages is None:  # nothing sent: the time to that decision
            to_passages = time.perf_counter() - started
        sent = list(finished.sources)
        tokens = sum(
            len(model.prompt_tokenizer.text_tokens(passage_block(n, p))) + 2
            for n, p in enumerate(sent, 1)
        )
        decision = grounding.last_documents if hasattr(grounding, "last_documents") else None
        results.append(
            TurnResult(
                id=turn["id"],
                group=turn["group"],
                seconds_to_passages=to_passages,
                sent=sent,
                found=list(recording.found),
                returned=list(source.returned),
                decision=(bool(decision), decision.reason) if decision is not None else None,
                source_tokens=tokens,
            )
        )
    return results


def _rank(passages: Sequence[Passage], answer: str) -> int | None:
    for n, p in enumerate(passages, 1):
        if answer in normalised(p.text):
            return n
    return None


def why_missed(result: TurnResult, answer: str) -> str:
    if _rank(result.found, answer) is None:
        return "not retrieved"
    if _rank(result.returned, answer) is None:
        if result.decision is not None and not result.decision[0]:
            return f"gate said no ({result.decision[1]})"
        return "held back (the Auto rule sent other passages, not this one)"
    offered = result.returned[_rank(result.returned, answer) - 1]  # type: ignore[operator]
    if any(p.id == offered.id for p in result.sent):
        return "trimmed: shortened to fit, the answer was in the part cut off"
    return "trimmed: left out by the token/time budget"


def summarise(results: list[TurnResult], questions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in results if r.group == "question"]
    no_docs = [r for r in results if r.group == "no_documents"]
    general = [r for r in results if r.group == "general_knowledge"]
    ranks, misses, per_question = [], [], []
    for r in answered:
        q = questions[r.id]
        answer = normalised(q["answer"])
        rank = _rank(r.sent, answer)
        row: dict[str, Any] = {
            "id": r.id,
            "kind": q["kind"],
            "rank_sent": rank,
            "rank_found": _rank(r.found, answer),
            "passages_sent": len(r.sent),
            "decision": r.decision[1] if r.decision else None,
        }
        if rank is None:
            row["why"] = why_missed(r, answer)
            misses.append(
                {
                    "id": r.id,
                    "question": q["question"],
                    "answer": q["answer"],
                    "file": q["file"],
                    "why": row["why"],
                    "found_top3": [
                        f"{p.location.get('path', '').rsplit('/', 1)[-1]} {p.score:.2f}"
                        for p in r.found[:3]
                    ],
                }
            )
        else:
            ranks.append(rank)
        per_question.append(row)
    grounded_no_docs = [r.id for r in no_docs if r.sent]
    grounded_general = [r.id for r in general if r.sent]
    times = [r.seconds_to_passages * 1000 for r in results]
    phi3_tokens = [r.source_tokens for r in answered]
    by_kind: dict[str, list[int]] = {}
    for row in per_question:
        by_kind.setdefault(row["kind"], []).append(row["rank_sent"] is not None)
    return {
        "questions": len(answered),
        "evidence_recall": round(len(ranks) / len(answered), 3) if answered else None,
        "recall_by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
        "found_recall": round(
            sum(1 for r in answered if _rank(r.found, normalised(questions[r.id]["answer"])))
            / len(answered),
            3,
        )
        if answered
        else None,
        "found_at": {
            str(k): round(
                sum(1 for row in per_question if row["rank_found"] and row["rank_found"] <= k)
                / len(answered),
                3,
            )
            for k in (1, 2, 3)
        }
        if answered
        else {},
        "misses_by_reason": {
            reason: sum(1 for m in misses if m["why"].split(" (")[0] == reason)
            for reason in sorted({m["why"].split(" (")[0] for m in misses})
        },
        "offered_recall": round(
            sum(1 for r in answered if _rank(r.returned, normalised(questions[r.id]["answer"])))
            / len(answered),
            3,
        )
        if answered
        else None,
        "mean_rank_sent": round(statistics.mean(ranks), 2) if ranks else None,
        "rank_1_share": round(sum(1 for x in ranks if x == 1) / len(answered), 3)
        if answered
        else None,
        "source_tokens_mean_phi3": round(statistics.mean(phi3_tokens)) if phi3_tokens else 0,
        "passages_sent_mean": round(statistics.mean(len(r.sent) for r in answered), 2)
        if answered
        else 0,
        "false_grounding": round(len(grounded_no_docs) / len(no_docs), 3) if no_docs else None,
        "false_grounding_turns": grounded_no_docs,
        "general_knowledge_grounded": f"{len(grounded_general)}/{len(general)}",
        "general_knowledge_grounded_turns": grounded_general,
        "to_passages_p50_ms": round(statistics.median(times), 1),
        "to_passages_p95_ms": round(float(np.percentile(times, 95)), 1),
        "misses": misses,
        "per_question": per_question,
    }


# ------------------------------------------------------------ the folder


def index_folder(library: DocumentLibrary, folder: Path) -> tuple[int, list[str], dict[str, int]]:
    """Index; returns chunks, files that failed, and chunks per file."""
    library.add_collection(COLLECTION, [folder])
    failed, started = [], time.perf_counter()
    for event in library.index(COLLECTION, threading.Event()):
        if isinstance(event, FileFailed):
            failed.append(f"{event.path}: {event.reason}")
        elif isinstance(event, IngestFinished):
            pass
    print(f"indexed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    per_file: dict[str, int] = {}
    for (path,) in library._db.connection().execute("SELECT path FROM chunks"):
        rel = str(Path(path).relative_to(folder))
        per_file[rel] = per_file.get(rel, 0) + 1
    return sum(per_file.values()), failed, per_file


def chunk_texts(library: DocumentLibrary) -> list[tuple[str, str]]:
    return list(library._db.connection().execute("SELECT path, text FROM chunks"))


def tokenizer_ratio(model: LocalModel, embedder: Embedder, texts: Sequence[str]) -> float:
    """Phi-3 tokens per MiniLM token over the folder's chunks (MiniLM's
    WordPiece stood in for Phi-3's tokenizer before the bench had it)."""
    phi3 = sum(len(model.prompt_tokenizer.text_tokens(t)) for t in texts)
    minilm = sum(embedder.count_tokens(t) - 2 for t in texts)  # less [CLS] [SEP]
    return phi3 / max(1, minilm)


# ------------------------------------------------------------ 10k chunks


def latency_at(
    size: int, embedder: Embedder, texts: list[str], questions: list[str], mode: str
) -> dict[str, Any]:
    from bench.query_latency import build

    with tempfile.TemporaryDirectory() as work:
        library = DocumentLibrary(Path(work) / "index", lambda: embedder)
        started = time.perf_counter()
        build(library, embedder, size, texts)
        build_s = time.perf_counter() - started
        source = GroundingSource(library, None, _mode_choice(mode))
        times = []
        for n, question in enumerate(
            [*questions[:LATENCY_WARMUP_QUERIES], *questions], start=-LATENCY_WARMUP_QUERIES
        ):
            request = ContextRequest(question=question)
            t0 = time.perf_counter()
            events = source(request, threading.Event())
            try:
                while True:
                    next(events)
            except StopIteration:
                pass
            if n >= 0:
                times.append((time.perf_counter() - t0) * 1000)
        library.close()
    return {
        "chunks": size,
        "mode": mode,
        "build_s": round(build_s),
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
    }


def _msmarco_texts() -> list[str]:
    """Filler for the 10k-chunk index: the MS MARCO subset's passages when
    ``shared/eval`` is beside the checkout (as bench.query_latency uses)."""
    from bench.query_latency import DEFAULT_TEXTS

    corpus = DEFAULT_TEXTS / "corpus.jsonl"
    if not corpus.exists():
        return []
    with corpus.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


# ------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--targets", nargs="+", default=["fast", "balanced", "thorough"], help="first-word targets"
    )
    parser.add_argument("--modes", nargs="+", default=["auto", "always"], help="documents modes")
    parser.add_argument("--latency-chunks", type=int, default=10_000, help="0: skip")
    parser.add_argument("--prompt-speed", type=float, default=PHI3_PROMPT_TOKENS_PER_S)
    args = parser.parse_args()
    if "documents" not in getattr(GroundingChoice, "__dataclass_fields__", {}):
        print(
            "note: no documents mode in GroundingSource yet: running Always only", file=sys.stderr
        )
        args.modes = ["always"]

    load_start = round(os.getloadavg()[0], 2)
    spec = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = CACHE / "folder"
    written = build_folder(folder)
    print(f"folder: {len(written)} files in {folder}", file=sys.stderr)

    embedder = Embedder()
    embedder.load()
    cached = IndexingCache(embedder, CACHE / "embeddings.sqlite3")
    model_path = write_phi3_gguf(
        CACHE / "tiny-phi3-vocabulary.gguf",
        weights="random",
        vocabulary=read_vocabulary(phi3_vocabulary()),
    )
    # Phi-3-mini's 4K context, so the context binds where it would for Phi-3
    # and the time target does the trimming, as on a 2-core laptop.
    model = load_model(model_path, LoadOptions(context_tokens=DEFAULT_CONTEXT_TOKENS, seed=0))

    with tempfile.TemporaryDirectory() as work:
        library = DocumentLibrary(Path(work) / "index", lambda: cached)
        chunks, failed, per_file = index_folder(library, folder)
        cached.indexing = False
        stored = chunk_texts(library)
        ratio = tokenizer_ratio(model, embedder, [t for _, t in stored])
        chars_per_phi3 = sum(len(t) for _, t in stored) / sum(
            len(model.prompt_tokenizer.text_tokens(t)) for _, t in stored
        )

        # Questions whose file is here and whose answer the index holds.
        questions, skipped = {}, []
        for q in spec["questions"]:
            answer = normalised(q["answer"])
            holding = [p for p, t in stored if answer in normalised(t)]
            if q["file"] not in written:
                skipped.append({"id": q["id"], "why": f"{q['file']} not built (material missing)"})
            elif not any(p.endswith(q["file"]) for p in holding):
                skipped.append(
                    {"id": q["id"], "why": "the answer string is in no chunk of its file"}
                )
            else:
                questions[q["id"]] = {**q, "answer_chunks": len(holding)}
        for s in skipped:
            print(f"skipped {s['id']}: {s['why']}", file=sys.stderr)
        turns = [
            {"id": q["id"], "message": q["question"], "group": "question"}
            for q in questions.values()
        ]
        turns += [{**t, "group": "no_documents"} for t in spec["no_documents"]]
        turns += [{**t, "group": "general_knowledge"} for t in spec["general_knowledge"]]

        runs: dict[str, Any] = {}
        print(
            "| mode | target | found in top 8 | offered | evidence recall | mean rank | "
            "passages | source tokens | false grounding | general grounded | "
            "to passages p50/p95 ms |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for mode in args.modes:
            for target_name in args.targets:
                target = FirstWordTarget(target_name)
                results = run_turns(
                    model,
                    library,
                    turns,
                    mode=mode,
                    target=target,
                    prompt_tokens_per_s=args.prompt_speed,
                )
                summary = summarise(results, questions)
                runs[f"{mode}/{target_name}"] = summary
                print(
                    f"| {mode} | {target_name} | {summary['found_recall']:.2f} | "
                    f"{summary['offered_recall']:.2f} | {summary['evidence_recall']:.2f} | "
                    f"{summary['mean_rank_sent']} | "
                    f"{summary['passages_sent_mean']} | {summary['source_tokens_mean_phi3']} | "
                    f"{summary['false_grounding']:.1%} | {summary['general_knowledge_grounded']} | "
                    f"{summary['to_passages_p50_ms']:.0f} / {summary['to_passages_p95_ms']:.0f} |",
                    flush=True,
                )
        library.close()
    model.close()

    latency = None
    if args.latency_chunks:
        texts = [t for _, t in stored] + _msmarco_texts()
        latency = latency_at(
            args.latency_chunks,
            embedder,
            texts,
            [q["question"] for q in questions.values()],
            args.modes[0],
        )
        print(
            f"\nquestion -> passages through GroundingSource ({latency['mode']}) at "
            f"{latency['chunks']:,} chunks: p50 {latency['p50_ms']:.0f} ms, "
            f"p95 {latency['p95_ms']:.0f} ms"
        )
    print(
        f"\nplanned at {args.prompt_speed} Phi-3 tokens/s; source tokens are Phi-3's "
        f"({chars_per_phi3:.2f} characters each, {ratio:.2f} per MiniLM token); load average "
        f"{load_start} -> "
        f"{os.getloadavg()[0]:.2f}"
    )
    for key, summary in runs.items():
        for miss in summary["misses"]:
            print(f"{key} missed {miss['id']}: {miss['why']}")

    write_results(
        "grounding.json",
        {
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{physical_cores()} physical cores, {platform.system()}",
            "note": (
                "real turn path (ChatSession + GroundingSource + planner) on a tiny Phi-3 "
                "GGUF with Phi-3's own tokenizer (every count in Phi-3 tokens), planned at "
                f"{args.prompt_speed} tokens/s (Phi-3-mini Q4 on this VM), 4K context"
            ),
            "folder": {"files": written, "chunks": chunks, "per_file": per_file, "failed": failed},
            "phi3_tokens_per_minilm_token": round(ratio, 3),
            "chars_per_phi3_token": round(chars_per_phi3, 2),
            "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
            "skipped_questions": skipped,
            "answer_chunks": {q["id"]: q["answer_chunks"] for q in questions.values()},
            "runs": runs,
            "latency": latency,
        },
    )


if __name__ == "__main__":
    main()
