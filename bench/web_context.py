"""Web context: does the answer-bearing passage reach the model, and how fast?

    .venv/bin/python -m bench.web_context [CORPUS_DIR] [--json OUT.json]

CORPUS_DIR (default ``bench/web_corpus``, format in its README.md) holds
pages and question/answer pairs. The pages are served by a real HTTP server
on 127.0.0.1; a stand-in search engine (the only fake: the public engines
cannot be reached here) returns the pages that share the most words with the
query, as a keyword engine would. Everything after that is the product's own
pipeline (``retrieval.web.pipeline.WebSearch``): the guarded concurrent
fetcher, trafilatura extraction, the shared chunker, MiniLM ranking with
duplicate and per-site limits, and the ledger.

Measures, per question, whether a final passage from the right page contains
the answer (``answer_in_context``; also at rank 1 and within the top 3) and
the time from the question to the passages, excluding the search engine's
own latency (here ~0; on the internet, DuckDuckGo takes 0.5-2 s).

Then, per question, the whole grounded turn as the window runs it
(``engine.turn.ChatSession`` with ``app.wiring.grounding.GroundingSource`` in Always
mode, the budget planner at "balanced"): the model writes the query, the
pipeline runs, the planner keeps what fits, llama.cpp reads the prompt, and
the clock stops at the first answer token (``first_token_seconds``, engine
latency again excluded). ``--model GGUF`` times a real model (e.g. the
benchmark's Phi-3-mini-shaped Q4_K_M; ``--turns N`` limits how many
questions, since prompt reading costs ~5 s per 100 source tokens on 2
cores); without it a tiny generated Phi-3 measures the pipeline's own share.
Prints a table and writes ``bench/results/web_context.json`` (or ``--json
OUT``).
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import platform
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.generation import write_results
from retrieval.embedding import Embedder
from retrieval.parsing.html_text import html_to_text
from retrieval.passage import RetrievedPassage
from retrieval.web.events import Ranking
from retrieval.web.fetcher import FetchLimits
from retrieval.web.need_search import WebMode
from retrieval.web.pipeline import PAGES_TO_FETCH, SEARCH_RESULTS, WebSearch, WebSearchSettings
from retrieval.web.ranking import TOP_PASSAGES
from retrieval.web.results import SafeSearch, SearchResult

DEFAULT_CORPUS = Path(__file__).parent / "web_corpus"
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    _WORD.findall(
        "a an and are at by did do does for from has have how in is it its many much of on "
        "one the to was were what when where which who why with"
    )
)


@dataclass(frozen=True)
class Question:
    question: str
    page: str
    answer: str


class KeywordEngine:
    """Stands in for a public search engine: ranks the corpus pages by how
    many of the query's words they contain (title words count double)."""

    name = "keyword engine (benchmark)"

    def __init__(self, pages: dict[str, tuple[str, str]], base_url: str) -> None:
        self._pages = pages  # file name -> (title, text)
        self._base = base_url
        self.seconds = 0.0  # time spent here, excluded from the measurement

    def search(
        self,
        query: str,
        *,
        region: str,  # noqa: ARG002 - the provider Protocol's settings; one "region" here
        safesearch: SafeSearch,  # noqa: ARG002
        max_results: int,
        timeout_s: float,  # noqa: ARG002 - answers at once
    ) -> list[SearchResult]:
        started = time.perf_counter()
        terms = {w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS}

        def score(item: tuple[str, tuple[str, str]]) -> int:
            title, text = item[1]
            words, title_words = set(_WORD.findall(text.lower())), set(_WORD.findall(title.lower()))
            return len(terms & words) + len(terms & title_words)

        ranked = sorted(self._pages.items(), key=score, reverse=True)[:max_results]
        results = [
            SearchResult(title, f"{self._base}/{name}", text[:200])
            for name, (title, text) in ranked
        ]
        self.seconds += time.perf_counter() - started
        return results


def load_corpus(folder: Path) -> tuple[dict[str, tuple[str, str]], list[Question]]:
    pages: dict[str, tuple[str, str]] = {}
    for path in sorted((folder / "pages").iterdir()):
        raw = path.read_text(encoding="utf-8", errors="replace") if path.suffix != ".pdf" else ""
        title, text = html_to_text(raw) if path.suffix in (".html", ".htm") else (path.stem, raw)
        pages[path.name] = (title or path.stem, text)
    questions = [Question(**q) for q in json.loads((folder / "questions.json").read_text())]
    missing = {q.page for q in questions} - set(pages)
    if missing:
        raise SystemExit(f"questions.json names pages that are not in pages/: {sorted(missing)}")
    return pages, questions


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def drain(
    generator: Generator[Any, None, list[RetrievedPassage]],
) -> tuple[list[RetrievedPassage], float | None]:
    """The passages, and when ranking began (``perf_counter``): fetching and
    extraction are done by then."""
    ranking_at = None
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value, ranking_at
        if isinstance(event, Ranking):
            ranking_at = time.perf_counter()


def answer_rank(question: Question, passages: list[RetrievedPassage], base: str) -> int | None:
    """1-based rank of the first passage from the right page holding the answer."""
    url = f"{base}/{question.page}"
    for rank, passage in enumerate(passages, start=1):
        from_page = (passage.locator.url or "").split("#")[0] == url
        if from_page and question.answer.lower() in passage.text.lower():
            return rank
    return None


def measure(folder: Path) -> dict[str, Any]:
    pages, questions = load_corpus(folder)
    handler = functools.partial(_QuietHandler, directory=str(folder / "pages"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-site", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    engine = KeywordEngine(pages, base)
    embedder = Embedder()
    embedder.load()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            search = WebSearch.build(
                [engine],
                embedder,
                WebSearchSettings(mode=WebMode.ALWAYS, allow_local_fetch=True),
                ledger_path=Path(scratch) / "ledger.sqlite3",
                cache_path=None,  # every question goes through the whole pipeline
                local_networks=[ipaddress.ip_network("127.0.0.0/8")],
                fetch_limits=FetchLimits(),
            )
            drain(search.run("warm-up: imports, tokenizer, first fetch", threading.Event()))
            for question in questions:
                engine.seconds = 0.0
                started = time.perf_counter()
                passages, ranking_at = drain(search.run(question.question, threading.Event()))
                finished = time.perf_counter()
                elapsed_s = finished - started - engine.seconds
                rank_s = finished - (ranking_at or finished)
                rows.append(
                    {
                        "question": question.question,
                        "rank": answer_rank(question, passages, base),
                        "passages": len(passages),
                        "seconds": round(elapsed_s, 4),
                        "fetch_extract_seconds": round(elapsed_s - rank_s, 4),
                        "embed_rank_seconds": round(rank_s, 4),
                    }
                )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    return summarize(rows, len(pages))


def measure_first_token(folder: Path, model_path: Path | None, turns: int | None) -> dict[str, Any]:
    """Question → first answer token through the real chat turn."""
    from app.wiring.grounding import GroundingChoice, GroundingSource
    from engine.budget import FirstWordTarget
    from engine.events import Finished, Token
    from engine.model import LoadOptions, load_model
    from engine.synthetic_model import write_phi3_gguf
    from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest

    pages, questions = load_corpus(folder)
    questions = questions[:turns] if turns else questions
    handler = functools.partial(_QuietHandler, directory=str(folder / "pages"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-site", daemon=True)
    thread.start()
    engine = KeywordEngine(pages, f"http://127.0.0.1:{server.server_port}")
    embedder = Embedder()
    embedder.load()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        path = model_path or write_phi3_gguf(Path(scratch) / "tiny.gguf")
        model = load_model(path, LoadOptions(context_tokens=4096))
        try:
            session = ChatSession(model)
            search = WebSearch.build(
                [engine],
                embedder,
                WebSearchSettings(allow_local_fetch=True),
                ledger_path=Path(scratch) / "ledger.sqlite3",
                cache_path=None,
                local_networks=[ipaddress.ip_network("127.0.0.0/8")],
            )
            source = GroundingSource(None, search, GroundingChoice(web=WebMode.ALWAYS))
            budget = TurnBudget(FirstWordTarget.BALANCED)
            for question in questions:
                engine.seconds = 0.0
                request = TurnRequest("", [], question.question, SamplingParams(temperature=0))
                started = time.perf_counter()
                first: float | None = None
                sources = prompt_tokens = 0
                cancel = threading.Event()
                for event in session.run(request, cancel, source, budget=budget):
                    if isinstance(event, Token) and first is None:
                        first = time.perf_counter() - started - engine.seconds
                        cancel.set()  # the first word is what this measures
                    elif isinstance(event, Finished):
                        sources = len(event.sources)
                        prompt_tokens = event.stats.prompt_tokens
                rows.append(
                    {
                        "question": question.question,
                        "first_token_seconds": round(first or 0.0, 3),
                        "sources": sources,
                        "prompt_tokens": prompt_tokens,
                    }
                )
        finally:
            model.close()
            server.shutdown()
            server.server_close()
            thread.join(5)
    times = sorted(r["first_token_seconds"] for r in rows)
    return {
        "model": model_path.name if model_path else "tiny generated Phi-3 (pipeline share)",
        "turns": len(rows),
        "first_token_seconds_median": round(statistics.median(times), 3),
        "first_token_seconds_max": round(times[-1], 3),
        "prompt_tokens_median": statistics.median(r["prompt_tokens"] for r in rows),
        "per_turn": rows,
    }


def summarize(rows: list[dict[str, Any]], page_count: int) -> dict[str, Any]:
    n = len(rows)
    ranks = [r["rank"] for r in rows]
    times = sorted(r["seconds"] for r in rows)
    return {
        "questions": n,
        "pages": page_count,
        "answer_in_context": round(sum(r is not None for r in ranks) / n, 3),
        "answer_at_1": round(sum(r == 1 for r in ranks) / n, 3),
        "answer_in_top_3": round(sum(r is not None and r <= 3 for r in ranks) / n, 3),
        "seconds_median": round(statistics.median(times), 3),
        "seconds_p90": round(times[min(n - 1, int(0.9 * n))], 3),
        "seconds_max": round(times[-1], 3),
        "fetch_extract_seconds_median": round(
            statistics.median(r["fetch_extract_seconds"] for r in rows), 3
        ),
        "embed_rank_seconds_median": round(
            statistics.median(r["embed_rank_seconds"] for r in rows), 3
        ),
        "settings": {
            "search_results": SEARCH_RESULTS,
            "pages_fetched": PAGES_TO_FETCH,
            "final_passages": TOP_PASSAGES,
        },
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "per_question": rows,
    }


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\n{results['questions']} questions over {results['pages']} pages "
        f"(fetch top {results['settings']['pages_fetched']}, keep "
        f"{results['settings']['final_passages']} passages)\n"
    )
    print(
        "| answer in context | at rank 1 | in top 3 | question → passages "
        "(median / p90 / max) | of which fetch + extract / embed + rank (median) |"
    )
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {results['answer_in_context']:.0%} | {results['answer_at_1']:.0%} | "
        f"{results['answer_in_top_3']:.0%} | {results['seconds_median']:.2f} s / "
        f"{results['seconds_p90']:.2f} s / {results['seconds_max']:.2f} s | "
        f"{results['fetch_extract_seconds_median']:.2f} s / "
        f"{results['embed_rank_seconds_median']:.2f} s |"
    )
    misses = [r["question"] for r in results["per_question"] if r["rank"] is None]
    if misses:
        print("\nnot in context:\n" + "\n".join(f"- {q}" for q in misses))
    turn = results.get("first_token")
    if turn:
        print(
            f"\nquestion → first token, whole grounded turn ({turn['model']}, "
            f"{turn['turns']} turns): median {turn['first_token_seconds_median']:.2f} s, "
            f"max {turn['first_token_seconds_max']:.2f} s, "
            f"median prompt {turn['prompt_tokens_median']:.0f} tokens"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, help="write the results here instead")
    parser.add_argument("--model", type=Path, help="a GGUF for the first-token timing")
    parser.add_argument("--turns", type=int, help="first-token timing on this many questions")
    args = parser.parse_args()
    results = measure(args.corpus)
    results["first_token"] = measure_first_token(args.corpus, args.model, args.turns)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    else:
        write_results("web_context.json", results)


if __name__ == "__main__":
    main()
