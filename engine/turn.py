"""One chat turn as a generator of events, with KV-cache reuse across turns.

Why the care with tokens: llama.cpp keeps the KV cache of the longest token
prefix shared with the previous call, so a follow-up turn costs only its new
tokens *if* the new prompt repeats exactly the tokens evaluated before.
:class:`~engine.prompt_cache.PromptCache` keeps the last turn's text and
tokens so they are reused verbatim (also after the oldest history is left out,
when the cache is shifted instead of read again).

The prompt itself is counted, rendered and fitted in ``engine.prompt_builder``.
What stays here are the stages of one turn on the session's model and cache
(sources, evaluation, the one decode loop shared by answers and search
queries, reading ahead while the user types); they share that state, which
is why this module is longer than most.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from engine.budget import FirstWordTarget, TimeBudget, plan_prompt, select_passages
from engine.chat_template import ChatMessage
from engine.context import (
    ContextRequest,
    ContextSource,
    EarlierMessage,
    Passage,
    system_prompt_with_rules,
)
from engine.errors import EngineError
from engine.events import (
    Failed,
    Finished,
    FinishReason,
    LookingForSources,
    Notice,
    PromptProgress,
    ReadingPrompt,
    Sources,
    Token,
    TurnEvent,
    TurnStats,
    Writing,
)
from engine.model import PROMPT_BATCH_TOKENS, LocalModel
from engine.model_backend import ModelBackend, PromptRead
from engine.prompt_builder import BuiltPrompt, PromptBuilder, history_units
from engine.prompt_cache import Tokenized
from engine.prompt_speed import CALIBRATION_TOKENS, GPU_DEFAULT_TOKENS_PER_S, PromptSpeed
from engine.query_writer import (
    MAX_QUERY_TOKENS,
    fallback_query,
    query_instruction,
    sanitize_query,
)
from engine.read_ahead import ReadAheadState, read_ahead_batch_tokens, whole_in_cache
from engine.sampling import SamplingParams

if TYPE_CHECKING:
    from engine.server_model import ServerModel

log = logging.getLogger(__name__)

# Earlier user questions a context source sees (oldest first).
RECENT_QUESTIONS = 3


@dataclass(frozen=True)
class TurnRequest:
    system_prompt: str
    # Earlier messages, oldest first: EarlierMessage keeps a question and its
    # sources apart; a ChatMessage is taken as the model saw it (and its text
    # as the question).
    history: Sequence[ChatMessage | EarlierMessage]
    user_message: str  # the question as the user wrote it
    sampling: SamplingParams = dataclasses.field(default_factory=SamplingParams)


@dataclass(frozen=True)
class TurnBudget:
    """The first-word time target of a sourced turn (see engine.budget).

    ``prompt_tokens_per_s`` None: the session's measured estimate
    (:attr:`ChatSession.prompt_speed`)."""

    first_word: FirstWordTarget = FirstWordTarget.BALANCED
    prompt_tokens_per_s: float | None = None


@dataclass(frozen=True)
class _Decoded:
    text: str  # without trailing whitespace
    tokens: list[int]  # as sampled: what the KV cache now holds after the prompt
    reason: FinishReason


# Greedy: the most likely query, the same every time for the same conversation.
_QUERY_SAMPLING = SamplingParams(
    temperature=0.0, repeat_penalty=1.0, max_answer_tokens=MAX_QUERY_TOKENS
)


class _WriteFailed(Exception):
    """The backend failed mid-answer: its error and what was written before."""

    def __init__(self, error: EngineError, written: _Decoded) -> None:
        super().__init__(str(error))
        self.error = error
        self.written = written


class ChatSession:
    """Runs turns on one loaded model. Not thread-safe: one turn at a time.

    ``prompt_speed``: this machine's prompt-reading speed for this model,
    updated by every turn; pass the one the app saved for this model file
    (``PromptSpeed.from_dict``) and save ``session.prompt_speed.to_dict()``.
    """

    def __init__(
        self, model: LocalModel | ServerModel, prompt_speed: PromptSpeed | None = None
    ) -> None:
        self.model = model
        # The one seam between the turn and what computes it (engine.model_backend).
        self.backend: ModelBackend
        if isinstance(model, LocalModel):
            from engine.local_backend import LocalBackend

            self.backend = LocalBackend(model)
            self.prompt_speed = prompt_speed or PromptSpeed.for_model(model)
        else:
            self.backend = model.backend()
            self.prompt_speed = prompt_speed or PromptSpeed(GPU_DEFAULT_TOKENS_PER_S)
        self._prompts = PromptBuilder(self.backend)
        # Text and tokens of the last prompt + answer the model evaluated.
        self._cache = self._prompts.cache
        # What the last read_ahead left in the backend's cache, for the turn after it.
        self._ahead = ReadAheadState()

    def run(
        self,
        request: TurnRequest,
        cancel: threading.Event,
        context_source: ContextSource | None = None,
        *,
        budget: TurnBudget | None = None,
    ) -> Iterator[TurnEvent]:
        """Yield the turn's events. Expected failures end in :class:`Failed`;
        setting ``cancel`` ends it within one token with reason "cancelled".

        With a ``context_source``: ``LookingForSources`` and whatever the
        source yields, then ``Sources`` (the passages sent, in their [1], [2]
        order), ``ReadingPrompt(sources=N)`` with ``PromptProgress``, then
        ``Writing``, ``Token``s and ``Finished`` (its ``sources`` are the same
        passages). A source that fails gives a ``Notice`` and an
        answer without sources. ``budget`` adds the first-word time target to
        the context limit; None: the context alone limits the sources.
        """
        self.backend.prepare_turn()
        try:
            yield from self._run(request, cancel, context_source, budget)
        except EngineError as exc:
            yield Failed(exc)
        finally:
            self._ahead.forget()  # a read-ahead serves the one turn after it

    def read_ahead(
        self,
        request: TurnRequest,
        cancel: threading.Event,
        context_source: ContextSource,
        *,
        budget: TurnBudget | None = None,
        superseded: threading.Event | None = None,
    ) -> int:
        """While the user is still typing ``request.user_message``: find its
        sources and read the prompt, up to the text typed so far, into
        llama.cpp's KV cache, so that the turn sent on Enter finds system
        prompt, history, *sources* and the question's beginning cached and
        reads only the rest (on a laptop CPU, the ~20 s of a Balanced turn's
        sources).

        The turn that follows plans and searches exactly as it would have,
        and reuses whatever of this prompt it repeats: all of it when the
        finished question finds the same passages, a prefix when it finds
        others. ``context_source`` must not send anything off the machine
        (the app passes one with web search off). Returns the tokens now
        cached for that prompt (0: nothing to read ahead); stops at once
        when ``cancel`` is set (Enter: the turn is next). ``superseded``
        set (newer text waits for its read-ahead) stops it at the end of
        the batch in progress: what it read stays cached for the newer one,
        which searches again and reads on if it finds the same passages.
        Without that, a read-ahead begun on a question's first three words
        read their passages, often the wrong ones, for the whole question.
        Never with a model server: a question not yet sent stays here."""
        if not self.backend.on_this_computer:
            return 0
        self.backend.prepare_turn()
        try:
            for _event in self._run(
                request, cancel, context_source, budget, read_ahead=True, superseded=superseded
            ):
                pass
        except EngineError as exc:
            log.info("reading ahead failed: %s", exc)
            return 0
        return self._ahead.tokens

    def calibrate_prompt_speed(self) -> float:
        """Measure the prompt speed once (~128 tokens: seconds on a laptop CPU)
        and count it as a sample; for the engine thread right after loading,
        so the first sourced turn plans with this machine's speed. Clears
        llama.cpp's KV cache (the next turn re-reads its prompt)."""
        self._cache.clear()
        started = time.perf_counter()
        rate = self.backend.calibrate()
        if rate > 0:
            self.prompt_speed.record(CALIBRATION_TOKENS, CALIBRATION_TOKENS / rate)
        log.info("prompt speed %.1f tokens/s (%.1f s)", rate, time.perf_counter() - started)
        return rate

    # ------------------------------------------------------------------ stages

    def _run(
        self,
        request: TurnRequest,
        cancel: threading.Event,
        source: ContextSource | None,
        budget: TurnBudget | None,
        *,
        read_ahead: bool = False,
        superseded: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        # A turn that may carry sources says how to read them once, in the
        # system prompt (cached), rather than in its own user turn.
        system_text = (
            system_prompt_with_rules(request.system_prompt)
            if source is not None
            else request.system_prompt
        )
        system = [ChatMessage("system", system_text)] if system_text.strip() else []
        earlier = [_earlier(m) for m in request.history]
        units = history_units([m.as_sent() for m in earlier])
        # The questions as the user asked them, without the sources sent with them.
        recent = tuple(m.text for m in earlier if m.role == "user")[-RECENT_QUESTIONS:]
        passages: list[Passage] = []
        dropped_units = 0
        if source is not None:
            passages, dropped_units = yield from self._gather_sources(
                request=request,
                system=system,
                units=units,
                recent=recent,
                source=source,
                budget=budget,
                cancel=cancel,
            )
            if cancel.is_set():
                prompt = BuiltPrompt("", [], request.user_message, request.user_message)
                yield self._finished(prompt, "", "cancelled")
                return

        prompt, dropped_units = self._prompts.fit(
            system, units, dropped_units, request.user_message, passages
        )
        if read_ahead:
            self._ahead.tokens = 0
            # Superseded already: the newer text reads; reading now would
            # first drop what the cache holds beyond this prompt's prefix.
            waiting = superseded is not None and superseded.is_set()
            if prompt.sources and not cancel.is_set() and not waiting:
                start = self._prompts.question_start(
                    system, units, dropped_units, request.user_message, prompt
                )
                # Before reading: stopped half-way (Enter), what was read is
                # still these passages' start, which the turn can reuse.
                self._ahead.sources = prompt.sources
                # _evaluate_prompt reads all but the last token it is given,
                # in small batches: Enter stops it mid-batch, losing only that one.
                batch = read_ahead_batch_tokens(self.prompt_speed.tokens_per_s)
                started = time.perf_counter()
                done = yield from self._evaluate_prompt(
                    prompt.tokens[: start + 1], cancel, batch, between=superseded
                )
                self._ahead.tokens = done.reused_tokens + done.evaluated_tokens
                self._ahead.whole = whole_in_cache(
                    prompt.sources, self._prompts.block_tokens, start, self._ahead.tokens
                )
                log.info(
                    "read ahead %s: %d of %d tokens cached, %d read in %.1f s (%d-token batches)%s",
                    [p.id[:8] for p in prompt.sources],
                    self._ahead.tokens,
                    start,
                    done.evaluated_tokens,
                    time.perf_counter() - started,
                    batch,
                    "" if done.complete else " (stopped)",
                )
            return
        dropped = sum(len(unit) for unit in units[:dropped_units])
        if dropped:
            yield Notice(
                f"The {dropped} oldest message{'s' if dropped > 1 else ''} of this conversation "
                "were left out so the new one fits in the model's context."
            )
        if prompt.sources:
            yield Sources(prompt.sources)
        if cancel.is_set():
            yield self._finished(prompt, "", "cancelled")
            return

        yield ReadingPrompt(len(prompt.sources))
        evaluation = yield from self._evaluate_prompt(prompt.tokens, cancel)
        prompt = dataclasses.replace(
            prompt, reused_tokens=evaluation.reused_tokens, seconds=evaluation.seconds
        )
        if cancel.is_set():
            yield self._finished(prompt, "", "cancelled")
            return

        yield Writing()
        yield from self._generate(request.sampling, prompt, cancel)

    def _gather_sources(
        self,
        *,
        request: TurnRequest,
        system: list[ChatMessage],
        units: list[list[ChatMessage]],
        recent: tuple[str, ...],
        source: ContextSource,
        budget: TurnBudget | None,
        cancel: threading.Event,
    ) -> Generator[TurnEvent, None, tuple[list[Passage], int]]:
        """Plan the budget, ask the source, keep what fits. Returns the passages
        to send (best first) and how many history units to leave out."""
        time_budget = None
        if budget is not None:
            speed = budget.prompt_tokens_per_s or self.prompt_speed.tokens_per_s
            time_budget = TimeBudget(budget.first_word, speed)
        # One plan, made before retrieval, sets both the cap the source sees and
        # the history kept. Re-planning with the passages found could keep a
        # little more history when they need less than their share, but the
        # search query was written on this history's KV cache: changing it now
        # would make the answer re-read the whole conversation.
        sizes = self._prompts.sizes(system, units, request.user_message)
        plan = plan_prompt(sizes, time=time_budget)
        kept_history = [m for unit in units[plan.dropped_history_units :] for m in unit]
        today = _dt.date.today()

        def query_writer(query_cancel: threading.Event) -> str:
            # On this turn's kept history: the answer then finds it cached.
            return self.write_search_query(
                system + kept_history,
                request.user_message,
                recent_questions=recent,
                today=today,
                cancel=query_cancel,
            )

        context_request = ContextRequest(
            question=request.user_message,
            recent_questions=recent,
            today=today,
            write_search_query=query_writer,
        )
        yield LookingForSources()
        found = yield from _ask(source, context_request, cancel)
        selected = select_passages(
            found, plan.source_tokens, self._prompts.block_tokens, request.user_message
        )
        selected = self._ahead.reuse(
            found,
            selected,
            self._prompts.block_tokens,
            new_tokens=plan.source_tokens,
            context_tokens=plan_prompt(sizes).source_tokens,
            question=request.user_message,
        )
        distinct = len({p.id or p.text for p in found})
        if plan.limited_by_time and len(selected) < distinct and time_budget is not None:
            yield Notice(
                f"Using {len(selected)} of {distinct} sources to start answering within "
                f"about {time_budget.target.seconds:.0f} s on this computer; a longer "
                "first-word target in Settings reads more of them."
            )
        return selected, plan.dropped_history_units

    def _evaluate_prompt(
        self,
        tokens: list[int],
        cancel: threading.Event,
        batch_tokens: int = PROMPT_BATCH_TOKENS,
        *,
        between: threading.Event | None = None,
    ) -> Generator[PromptProgress, None, PromptRead]:
        """Read the prompt but its last token into the backend's cache, and
        learn the prompt speed from it."""
        done = yield from self.backend.read(tokens, cancel, batch_tokens, between=between)
        if done.complete:
            self.prompt_speed.record(done.evaluated_tokens, done.seconds)
        return done

    def _generate(
        self, sampling: SamplingParams, prompt: BuiltPrompt, cancel: threading.Event
    ) -> Iterator[TurnEvent]:
        started = time.perf_counter()
        try:
            decoded = yield from self._decode(prompt.tokens, sampling, cancel)
        except _WriteFailed as failed:
            # The answer so far is kept with the error (a server that dropped
            # the stream mid-answer): the app shows both.
            written = failed.written
            partial = self._finished(
                prompt,
                written.text,
                "failed",
                len(written.tokens),
                time.perf_counter() - started,
            )
            yield Failed(failed.error, partial=partial if written.text else None)
            return
        # What the model now has in its KV cache, as text and as tokens (a
        # server sends text: its tokenizer's reading of it).
        answer_tokens = self.backend.answer_tokens(decoded.text, decoded.tokens)
        self._cache.remember(Tokenized(prompt.tokens, prompt.segments), decoded.text, answer_tokens)
        yield self._finished(
            prompt,
            decoded.text,
            decoded.reason,
            len(answer_tokens),
            time.perf_counter() - started,
        )

    def _decode(
        self,
        tokens: list[int],
        sampling: SamplingParams,
        cancel: threading.Event,
        *,
        one_line: bool = False,
    ) -> Generator[Token, None, _Decoded]:
        """The one writing loop, for answers and search queries, on any
        backend: write after ``tokens`` (all but the last already read)
        until the model ends its turn (reason "stop"), Stop ("cancelled"),
        the token cap or a full context ("length"), or with ``one_line`` a
        line break ("stop"). Yields the text as whole characters, the first
        piece without its leading space, and returns all of it with the
        tokens sampled (as far as the backend knows them). A backend that
        fails raises :class:`_WriteFailed` with what was written."""
        generated: list[int] = []
        pieces: list[str] = []
        reason: FinishReason = "stop"
        pieces_written = 0
        stream = self.backend.write(tokens, sampling, cancel)
        try:
            while True:
                try:
                    written = next(stream)
                except StopIteration as end:
                    reason = "cancelled" if cancel.is_set() else end.value
                    break
                generated.extend(written.tokens)
                pieces_written += 1
                text = written.text
                if not pieces:
                    text = text.lstrip()  # SentencePiece answers start with a space
                if text:
                    pieces.append(text)
                    yield Token(text)
                    if one_line and "\n" in text:
                        break
                # Checked after handing out each piece: Stop takes effect
                # before the next one is computed.
                if cancel.is_set():
                    reason = "cancelled"
                    break
                count = len(generated) if written.tokens else pieces_written
                if sampling.max_answer_tokens and count >= sampling.max_answer_tokens:
                    reason = "length"
                    break
        except EngineError as exc:
            if cancel.is_set():
                reason = "cancelled"
            else:
                self._cache.clear()
                so_far = _Decoded("".join(pieces).rstrip(), generated, "stop")
                raise _WriteFailed(exc, so_far) from exc
        finally:
            stream.close()
        return _Decoded("".join(pieces).rstrip(), generated, reason)

    # ------------------------------------------------------------ search query

    def write_search_query(
        self,
        prefix: Sequence[ChatMessage],
        question: str,
        *,
        recent_questions: Sequence[str] = (),
        today: _dt.date | None = None,
        cancel: threading.Event | None = None,
    ) -> str:
        """A one-line web search query for ``question`` written by the model
        (engine.query_writer: the recipe and why it is cheap), at most
        ``MAX_QUERY_CHARS`` characters; never empty.

        ``prefix``: the system message and history exactly as the answer turn
        will send them, so llama.cpp's cached prefix serves both; the
        session's record of its last answer is left as it is for the same
        reason. Runs on the calling thread (the engine thread: a turn's context
        source calls it through ``ContextRequest.write_search_query``).
        Greedy, at most ``MAX_QUERY_TOKENS`` tokens. Any failure, Stop, or a
        reply that is not a query gives the question's key words instead.
        """
        cancel = cancel or threading.Event()
        today = today or _dt.date.today()
        fallback = fallback_query(question, recent_questions)
        content = query_instruction(question, recent_questions, today)
        tokens = self._prompts.tokenize_messages([*prefix, ChatMessage("user", content)])
        if len(tokens) + MAX_QUERY_TOKENS >= self.backend.model.context_tokens:
            return fallback
        try:
            _drain(self._evaluate_prompt(tokens, cancel))
            if cancel.is_set():
                return fallback
            decoded = _drain(self._decode(tokens, _QUERY_SAMPLING, cancel, one_line=True))
        except (EngineError, _WriteFailed) as exc:
            log.warning("writing a search query failed: %s", exc)
            return fallback
        query = sanitize_query(
            decoded.text, question, recent_questions, ran_out=decoded.reason != "stop"
        )
        log.info("search query %r (model wrote %r)", query, decoded.text)
        return query

    @staticmethod
    def _finished(
        prompt: BuiltPrompt,
        answer: str,
        reason: FinishReason,
        generated_tokens: int = 0,
        generation_seconds: float = 0.0,
    ) -> Finished:
        stats = TurnStats(
            prompt_tokens=len(prompt.tokens),
            reused_prompt_tokens=prompt.reused_tokens,
            evaluated_prompt_tokens=len(prompt.tokens) - prompt.reused_tokens,
            generated_tokens=generated_tokens,
            prompt_seconds=prompt.seconds,
            generation_seconds=generation_seconds,
        )
        notes: tuple[str, ...] = ()
        if reason == "length":
            notes = ("The answer was cut short: it reached the length limit.",)
        return Finished(
            answer,
            reason,
            stats,
            prompt.user_content,
            notes,
            prompt.sources,
            tuple(prompt.tokens),
            question=prompt.question,
        )

    def _forget_cache(self) -> None:
        self._cache.clear()
        self.backend.forget()


def _earlier(message: ChatMessage | EarlierMessage) -> EarlierMessage:
    if isinstance(message, EarlierMessage):
        return message
    return EarlierMessage(message.role, message.content)


_T = TypeVar("_T")


def _drain(steps: Generator[Any, None, _T]) -> _T:
    """Run a generator to its end for its return value (its events unwanted)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _ask(
    source: ContextSource, request: ContextRequest, cancel: threading.Event
) -> Generator[TurnEvent, None, list[Passage]]:
    """Run the source, passing its progress on. A failing source costs the
    turn its sources, not its answer: that becomes a Notice."""
    try:
        result: Any = source(request, cancel)
        if isinstance(result, Generator):
            found = yield from result
        else:  # a plain callable returning its passages at once
            found = result
        return list(found or ())
    except Exception as exc:
        log.exception("context source failed")
        yield Notice(f"Sources unavailable, answering without them: {exc}")
        return []
