"""One chat turn as a generator of events, with KV-cache reuse across turns.

Why the care with tokens: llama.cpp keeps the KV cache of the longest token
prefix shared with the previous call, so a follow-up turn costs only its new
tokens *if* the new prompt starts with exactly the tokens evaluated before.
Re-tokenizing the model's own answer rarely gives back the tokens it sampled,
so :class:`ChatSession` remembers the text and tokens of the last turn and,
when the new prompt text extends it, reuses those tokens verbatim and
tokenizes only the new suffix.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from engine.chat_template import ChatMessage
from engine.context import ContextSource, Passage, user_content_with_sources
from engine.errors import ContextOverflow, EngineError, GenerationFailed
from engine.events import (
    Failed,
    Finished,
    FinishReason,
    Notice,
    PromptProgress,
    Sources,
    Status,
    Token,
    TurnEvent,
    TurnStats,
)
from engine.model import PROMPT_BATCH_TOKENS, LocalModel

log = logging.getLogger(__name__)

# Room kept free for the answer when deciding whether a prompt fits.
ANSWER_RESERVE_TOKENS = 512


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_answer_tokens: int | None = None  # None: until the model stops or the context is full


@dataclass(frozen=True)
class TurnRequest:
    system_prompt: str
    history: Sequence[ChatMessage]  # earlier turns, oldest first, as the model saw them
    user_message: str
    sampling: SamplingParams = SamplingParams()


@dataclass(frozen=True)
class _Prompt:
    """A rendered, tokenized prompt and how its evaluation went."""

    text: str
    tokens: list[int]
    user_content: str
    reused_tokens: int = 0
    seconds: float = 0.0


class ChatSession:
    """Runs turns on one loaded model. Not thread-safe: one turn at a time."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        # Text and tokens of the last prompt + answer the model evaluated.
        self._cached_text = ""
        self._cached_tokens: list[int] = []
        # llama.cpp polls this between graph nodes, so Stop also interrupts a
        # prompt batch in progress (seconds on a laptop), not only between tokens.
        self._cancel = threading.Event()
        self._install_abort_callback()

    def _install_abort_callback(self) -> None:
        import llama_cpp

        self._abort_callback = llama_cpp.ggml_abort_callback(lambda _data: self._cancel.is_set())
        llama_cpp.llama_set_abort_callback(self.model.llama._ctx.ctx, self._abort_callback, None)

    def run(
        self,
        request: TurnRequest,
        cancel: threading.Event,
        context_source: ContextSource | None = None,
    ) -> Iterator[TurnEvent]:
        """Yield the turn's events. Expected failures end in :class:`Failed`;
        setting ``cancel`` ends it within one token with reason "cancelled"."""
        self._cancel = cancel
        try:
            yield from self._run(request, cancel, context_source)
        except EngineError as exc:
            yield Failed(exc)

    # ------------------------------------------------------------------ stages

    def _run(
        self, request: TurnRequest, cancel: threading.Event, source: ContextSource | None
    ) -> Iterator[TurnEvent]:
        passages: Sequence[Passage] = ()
        if source is not None:
            yield Status("Looking for sources…")
            try:
                passages = source(request.user_message, cancel)
            except Exception as exc:
                log.exception("context source failed")
                yield Notice(f"Sources unavailable, answering without them: {exc}")
            if passages:
                yield Sources(passages)
        user_content = user_content_with_sources(request.user_message, passages)

        prompt_text, tokens, dropped = self._fit_prompt(request, user_content)
        if dropped:
            yield Notice(
                f"The {dropped} oldest message{'s' if dropped > 1 else ''} of this conversation "
                "were left out so the new one fits in the model's context."
            )
        prompt = _Prompt(prompt_text, tokens, user_content)
        if cancel.is_set():
            yield self._finished(prompt, "", "cancelled")
            return

        yield Status("Reading the prompt…")
        started = time.perf_counter()
        reused = yield from self._evaluate_prompt(tokens, cancel)
        prompt = dataclasses.replace(
            prompt, reused_tokens=reused, seconds=time.perf_counter() - started
        )
        if cancel.is_set():
            yield self._finished(prompt, "", "cancelled")
            return

        yield Status("Writing…")
        yield from self._generate(request.sampling, prompt, cancel)

    def _fit_prompt(self, request: TurnRequest, user_content: str) -> tuple[str, list[int], int]:
        """Render and tokenize; drop the oldest turns until the prompt plus an
        answer reserve fits. Returns (text, tokens, number of messages dropped)."""
        n_ctx = self.model.context_tokens
        reserve = min(ANSWER_RESERVE_TOKENS, n_ctx // 4)
        history = list(request.history)
        dropped = 0
        while True:
            messages = []
            if request.system_prompt.strip():
                messages.append(ChatMessage("system", request.system_prompt))
            messages += history
            messages.append(ChatMessage("user", user_content))
            text = self.model.chat_format.render(messages)
            tokens = self._tokenize_reusing_cache(text)
            if len(tokens) + reserve <= n_ctx:
                return text, tokens, dropped
            if not history:
                raise ContextOverflow(
                    f"This message is too long for the model's context: the prompt needs "
                    f"{len(tokens):,} tokens plus {reserve:,} for the answer, and the context "
                    f"holds {n_ctx:,}. Shorten the message, or raise the context size in "
                    "Settings if your memory allows.",
                    needed_tokens=len(tokens) + reserve,
                    limit_tokens=n_ctx,
                )
            # Drop a whole exchange so the history never starts with an answer.
            drop = 2 if len(history) >= 2 and history[0].role == "user" else 1
            history = history[drop:]
            dropped += drop

    def _tokenize_reusing_cache(self, text: str) -> list[int]:
        cached = self._cached_text
        if cached and text.startswith(cached):
            suffix = text[len(cached) :]
            # Splice only at a special token (e.g. "<|end|>"): a plain-text
            # suffix would be tokenized with a spurious leading space.
            if any(suffix.startswith(stop) for stop in self.model.info.stop_tokens):
                return self._cached_tokens + self.model.tokenize(suffix, add_bos=False)
        return self.model.tokenize(text, add_bos=self.model.chat_format.add_bos)

    def _evaluate_prompt(
        self, tokens: list[int], cancel: threading.Event
    ) -> Generator[PromptProgress, None, int]:
        """Evaluate the prompt but its last token, in batches, reusing the
        longest cached prefix. Returns how many tokens were reused.

        We do this ourselves (rather than inside ``Llama.generate``) to check
        ``cancel`` between batches. ``generate`` then finds all but the last
        token cached and evaluates just that one, which yields the logits.
        """
        llama = self.model.llama
        cached = llama.input_ids[: llama.n_tokens]
        reused = 0
        for a, b in zip(cached, tokens[:-1], strict=False):
            if a != b:
                break
            reused += 1
        # Drop whatever of the cache this prompt does not share.
        llama.n_tokens = reused
        llama._ctx.kv_cache_seq_rm(-1, reused, -1)
        pending = tokens[reused:-1]
        try:
            for start in range(0, len(pending), PROMPT_BATCH_TOKENS):
                if cancel.is_set():
                    break
                llama.eval(pending[start : start + PROMPT_BATCH_TOKENS])
                if len(pending) > PROMPT_BATCH_TOKENS:
                    yield PromptProgress(
                        min(start + PROMPT_BATCH_TOKENS, len(pending)), len(pending)
                    )
        except RuntimeError as exc:
            if cancel.is_set():  # aborted mid-batch by Stop: the cache up to n_tokens is intact
                return reused
            self._forget_cache()
            raise GenerationFailed(
                "llama.cpp failed while reading the prompt. Try again; if it keeps failing, "
                "lower the context size in Settings.",
                detail=str(exc),
            ) from exc
        return reused

    def _generate(
        self, sampling: SamplingParams, prompt: _Prompt, cancel: threading.Event
    ) -> Iterator[TurnEvent]:
        model, llama = self.model, self.model.llama
        n_ctx = model.context_tokens
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated: list[int] = []
        pieces: list[str] = []
        reason: FinishReason = "stop"
        started = time.perf_counter()
        stream = llama.generate(
            prompt.tokens,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
        )
        try:
            for token in stream:
                if model.is_end_of_turn(token):
                    break
                generated.append(token)
                text = decoder.decode(model.token_bytes(token))
                if not pieces:
                    text = text.lstrip()  # SentencePiece answers start with a space
                if text:
                    pieces.append(text)
                    yield Token(text)
                # Checked after handing out each token: Stop takes effect
                # before the next one is computed.
                if cancel.is_set():
                    reason = "cancelled"
                    break
                if sampling.max_answer_tokens and len(generated) >= sampling.max_answer_tokens:
                    reason = "length"
                    break
                if llama.n_tokens + 1 >= n_ctx:
                    reason = "length"
                    break
        except RuntimeError as exc:
            if not cancel.is_set():
                self._forget_cache()
                raise GenerationFailed(
                    "llama.cpp failed while writing the answer. Try again.", detail=str(exc)
                ) from exc
            reason = "cancelled"  # Stop aborted the decode of the last token
        finally:
            stream.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            yield Token(tail)
        answer = "".join(pieces).rstrip()
        # What the model now has in its KV cache, as text and as tokens.
        self._cached_text = prompt.text + answer
        self._cached_tokens = prompt.tokens + generated
        yield self._finished(prompt, answer, reason, len(generated), time.perf_counter() - started)

    @staticmethod
    def _finished(
        prompt: _Prompt,
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
        return Finished(answer, reason, stats, prompt.user_content, notes)

    def _forget_cache(self) -> None:
        self._cached_text = ""
        self._cached_tokens = []
        self.model.llama.reset()
