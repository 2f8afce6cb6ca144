"""The engine-side measurements of ``bench.engine``: real ``ChatSession`` turns.

Every figure comes from the events ``ChatSession.run`` yields (or the
``TurnStats`` in its ``Finished``), so it includes what the window pays:
templating, tokenizing, KV-prefix matching, the budget planner, sampling,
detokenization and the event objects themselves.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.budget import FirstWordTarget
from engine.chat_template import ChatMessage
from engine.context import ContextProgress, ContextRequest, Passage, SourcePassage, passage_block
from engine.events import Finished, Notice, Sources, Token, TurnEvent
from engine.llama_internals import cached_count
from engine.model import LocalModel
from engine.prompt_speed import PromptSpeed
from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest

SYSTEM = "You are a helpful assistant. Answer from the numbered sources and cite them."
# One source passage: the documents index's chunks are ~512 characters.
PASSAGE_TOKENS = 128
STOP_TRIALS = 5
STOP_AFTER_TOKENS = 3
FOLLOWUP_ANSWER_TOKENS = 8
_TEXT = (
    "private assistant reads local documents and answers questions with numbered citations "
    "from the user's own files while memory bandwidth bounds generation speed on laptop "
    "processors so every token reads the weights once and the cache of earlier tokens grows "
    "with the conversation report chapter table figure section summary result method"
)


@dataclass(frozen=True)
class TurnSizes:
    prompt_tokens: tuple[int, int]  # the short and the long prefill prompt
    gen_tokens: int
    source_tokens: tuple[int, ...]  # sources in the newest turn, for time to first token
    turns: int  # follow-up conversation length
    turn_source_tokens: int  # sources in each follow-up turn
    context_tokens: int


def words(count: int, seed: int) -> str:
    rng = random.Random(seed)
    vocabulary = _TEXT.split()
    return " ".join(rng.choice(vocabulary) for _ in range(count))


def text_of_tokens(model: LocalModel, tokens: int, seed: int) -> str:
    """Plain text of about ``tokens`` tokens for this model's tokenizer."""
    if tokens <= 0:
        return ""
    count = tokens
    text = words(count, seed)
    for _ in range(3):
        have = len(model.tokenize(text, add_bos=False))
        if abs(have - tokens) <= 1:
            break
        count = max(1, round(count * tokens / max(have, 1)))
        text = words(count, seed)
    return text


def prompt_of_tokens(model: LocalModel, tokens: int, seed: int) -> str:
    """A user message whose whole rendered prompt (system + user) is ~``tokens``."""
    render = model.chat_format.render
    frame = render([ChatMessage("system", SYSTEM), ChatMessage("user", "")])
    overhead = len(model.tokenize(frame, add_bos=True, special=True))
    return text_of_tokens(model, tokens - overhead, seed)


def passages_of_tokens(model: LocalModel, tokens: int, seed: int) -> list[Passage]:
    """Document passages of ~PASSAGE_TOKENS each, ~``tokens`` in all, best first."""
    count = math.ceil(tokens / PASSAGE_TOKENS) if tokens > 0 else 0
    size = tokens // count if count else 0
    return [
        SourcePassage(
            text=text_of_tokens(model, size - 12, seed * 100 + i),  # minus the block header
            citation=f"report-{seed}-{i}.pdf, p. {i + 1}",
            kind="document",
            location={"path": f"/docs/report-{seed}-{i}.pdf", "page": i + 1},
            id=f"bench-{seed}-{i}",
            score=1.0 - i / 100,
        )
        for i in range(count)
    ]


def block_tokens(model: LocalModel, passages: Sequence[Passage]) -> int:
    return sum(
        len(model.tokenize(passage_block(i, p), add_bos=False))
        for i, p in enumerate(passages, start=1)
    )


@dataclass
class _Timed:
    ttft_s: float
    finished: Finished
    sent: tuple[Passage, ...]
    notices: list[str]


def _run_timed(
    session: ChatSession,
    request: TurnRequest,
    passages: list[Passage] | None = None,
    budget: TurnBudget | None = None,
) -> _Timed:
    # The ContextSource protocol names its parameters; these passages need neither.
    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:  # noqa: ARG001
        yield from ()
        return list(passages or [])

    started = time.perf_counter()
    ttft = 0.0
    sent: tuple[Passage, ...] = ()
    notices: list[str] = []
    finished: Finished | None = None
    events = session.run(
        request, threading.Event(), source if passages is not None else None, budget=budget
    )
    for event in events:
        if isinstance(event, Token) and not ttft:
            ttft = time.perf_counter() - started
        elif isinstance(event, Sources):
            sent = tuple(event.passages)
        elif isinstance(event, Notice):
            notices.append(event.text)
        elif isinstance(event, Finished):
            finished = event
    if finished is None:
        raise RuntimeError("the turn failed; see the log")
    return _Timed(ttft or time.perf_counter() - started, finished, sent, notices)


def prefill_run(
    model: LocalModel,
    prompt_tokens: int,
    gen_tokens: int,
    speed: PromptSpeed,
    decode_repeats: int = 1,
) -> dict[str, Any]:
    """A fresh conversation with a ~``prompt_tokens`` prompt, then ``gen_tokens``
    answer tokens (at least one: the first token ends the prompt's evaluation).

    ``decode_repeats`` > 1 asks the same question again that many times in
    all: the prompt is cached, so each repeat decodes ``gen_tokens`` at the
    same depth (``decode`` is the median; ``decode_samples`` all of them)."""
    model.llama.reset()  # nothing cached: the whole prompt is evaluated
    session = ChatSession(model, speed)
    request = TurnRequest(
        SYSTEM,
        [],
        prompt_of_tokens(model, prompt_tokens, seed=prompt_tokens),
        SamplingParams(max_answer_tokens=max(gen_tokens, 1)),
    )
    timed = _run_timed(session, request)
    decodes = [_decode_figures(timed.finished)]
    for _ in range(decode_repeats - 1):
        decodes.append(_decode_figures(_run_timed(session, request).finished))
    stats = timed.finished.stats
    # Our batches evaluate all but the prompt's last token (the first decode
    # evaluates that one), and prompt_seconds times exactly those batches.
    batched = stats.evaluated_prompt_tokens - 1
    return {
        "prompt_tokens": stats.prompt_tokens,
        "evaluated_tokens": batched,
        "prompt_s": stats.prompt_seconds,
        "tokens_per_s": batched / stats.prompt_seconds if stats.prompt_seconds else 0.0,
        "ttft_s": timed.ttft_s,
        "decode": median_run(decodes),
        "decode_samples": decodes,
    }


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median tokens/s, and every run's rate beside it."""
    ordered = sorted(runs, key=lambda run: float(run["tokens_per_s"]))
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["samples_tokens_per_s"] = [float(run["tokens_per_s"]) for run in runs]
    return middle


def decode_run(model: LocalModel, gen_tokens: int, speed: PromptSpeed) -> dict[str, Any]:
    """``gen_tokens`` answer tokens after a short prompt (empty context, as tg)."""
    model.llama.reset()
    session = ChatSession(model, speed)
    request = TurnRequest(
        SYSTEM, [], "Write a long story.", SamplingParams(max_answer_tokens=gen_tokens)
    )
    return _decode_figures(_run_timed(session, request).finished)


def _decode_figures(finished: Finished) -> dict[str, Any]:
    stats = finished.stats
    # generation_seconds spans one decode per generated token (the first is
    # the prompt's last token), sampling and detokenizing each: what tgN times.
    return {
        "generated_tokens": stats.generated_tokens,
        "depth_tokens": stats.prompt_tokens,
        "seconds": stats.generation_seconds,
        "tokens_per_s": stats.tokens_per_second,
        "finish_reason": finished.reason,
    }


def sourced_ttft(model: LocalModel, sizes: TurnSizes, speed: PromptSpeed) -> list[dict[str, Any]]:
    """Time to the first token when the newest turn carries sources, with the
    budget planner's first-word target, after one exchange already cached."""
    model.llama.reset()
    session = ChatSession(model, speed)
    history = [
        ChatMessage("user", "What is in my reports folder?"),
        ChatMessage("assistant", "Reports about local assistants and their speed on laptops."),
    ]
    _run_timed(
        session, TurnRequest(SYSTEM, history, "Thanks.", SamplingParams(max_answer_tokens=1))
    )
    cases = [(tokens, FirstWordTarget.BALANCED) for tokens in sizes.source_tokens]
    cases.append((sizes.source_tokens[-1], FirstWordTarget.FAST))
    rows = []
    for tokens, target in cases:
        passages = passages_of_tokens(model, tokens, seed=tokens + 1)
        planner_speed = speed.tokens_per_s
        request = TurnRequest(
            SYSTEM, history, "How fast do they answer?", SamplingParams(max_answer_tokens=1)
        )
        timed = _run_timed(session, request, passages, TurnBudget(target))
        stats = timed.finished.stats
        rows.append(
            {
                "asked_source_tokens": block_tokens(model, passages),
                "asked_passages": len(passages),
                "sent_passages": len(timed.sent),
                "sent_source_tokens": block_tokens(model, timed.sent),
                "evaluated_tokens": stats.evaluated_prompt_tokens,
                "reused_tokens": stats.reused_prompt_tokens,
                "ttft_s": timed.ttft_s,
                "target": target.name,
                "target_s": target.seconds,
                "within_target": timed.ttft_s <= target.seconds,
                "planner_prompt_tokens_per_s": planner_speed,
                "limited_by_time": any("sources to start answering" in n for n in timed.notices),
            }
        )
    return rows


def followup_ttft(model: LocalModel, sizes: TurnSizes, speed: PromptSpeed) -> list[dict[str, Any]]:
    """Turns 1..N of one conversation, each with the same amount of new text
    (a question and its sources), history as the app keeps it."""
    model.llama.reset()
    session = ChatSession(model, speed)
    history: list[ChatMessage] = []
    rows = []
    for turn in range(1, sizes.turns + 1):
        passages = passages_of_tokens(model, sizes.turn_source_tokens, seed=1000 + turn)
        request = TurnRequest(
            SYSTEM,
            list(history),
            f"And what does source {turn % 3 + 1} say about that?",
            SamplingParams(max_answer_tokens=FOLLOWUP_ANSWER_TOKENS),
        )
        timed = _run_timed(session, request, passages, TurnBudget())
        stats = timed.finished.stats
        rows.append(
            {
                "turn": turn,
                "ttft_s": timed.ttft_s,
                "prompt_tokens": stats.prompt_tokens,
                "reused_tokens": stats.reused_prompt_tokens,
                "evaluated_tokens": stats.evaluated_prompt_tokens,
            }
        )
        history += [
            ChatMessage("user", timed.finished.user_content_as_sent),
            ChatMessage("assistant", timed.finished.text),
        ]
    return rows


def _deliver(
    session: ChatSession,
    request: TurnRequest,
    cancel: threading.Event,
    events: queue.Queue[TurnEvent | None],
) -> None:
    """The engine thread's side: run the turn, hand each event over."""
    for event in session.run(request, cancel):
        events.put(event)
    events.put(None)


def stop_latency(model: LocalModel, speed: PromptSpeed) -> list[dict[str, Any]]:
    """Stop pressed from another thread (as the window's Stop button does) at
    a random moment after a few tokens: how many tokens llama.cpp still
    finished computing after it, and how long until the turn ended."""
    session = ChatSession(model, speed)
    rng = random.Random(7)
    rows = []
    for trial in range(STOP_TRIALS):
        cancel = threading.Event()
        events: queue.Queue[TurnEvent | None] = queue.Queue()
        request = TurnRequest(
            SYSTEM, [], f"Tell story number {trial}.", SamplingParams(max_answer_tokens=256)
        )

        worker = threading.Thread(target=_deliver, args=(session, request, cancel, events))
        worker.start()
        tokens = 0
        per_token_s = 0.0
        last = time.perf_counter()
        finished: Finished | None = None
        delivered_all = False
        while tokens < STOP_AFTER_TOKENS:
            event = events.get()
            if event is None:
                delivered_all = True
                break
            if isinstance(event, Finished):
                finished = event
            if isinstance(event, Token):
                tokens += 1
                now = time.perf_counter()
                per_token_s, last = now - last, now
        # A random moment within one token's time: mid-decode or between tokens.
        threading.Event().wait(rng.uniform(0, per_token_s))
        decoded_at_stop = cached_count(model.llama)  # read before setting: never undercounts
        stopped = time.perf_counter()
        cancel.set()
        if not delivered_all:
            while (event := events.get()) is not None:
                if isinstance(event, Finished):
                    finished = event
        worker.join()
        rows.append(
            {
                "tokens_after_stop": cached_count(model.llama) - decoded_at_stop,
                "stop_to_finished_s": time.perf_counter() - stopped,
                "reason": finished.reason if finished else "failed",
                "token_s": per_token_s,
            }
        )
    return rows
