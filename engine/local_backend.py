"""llama.cpp in this process as a turn's backend (``engine.model_backend``).

Footnote manages llama.cpp's KV cache itself: a new prompt reuses the longest
cached prefix (after shifting left-out history out, ``engine.prompt_cache``),
is read in batches with Stop checked between them (and polled by llama.cpp
inside one), and the answer is sampled one token at a time.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator

from engine.cpu_share import PaceWatch
from engine.errors import GenerationFailed
from engine.events import PromptProgress
from engine.llama_internals import cached_count, cached_tokens, context_handle, keep_cached
from engine.model import LocalModel
from engine.model_backend import PromptRead, WriteEnd, Written
from engine.prompt_cache import can_shift, reuse_cache
from engine.prompt_speed import measure_prompt_speed
from engine.sampling import SamplingParams

log = logging.getLogger(__name__)


class LocalBackend:
    """One loaded :class:`~engine.model.LocalModel`."""

    def __init__(self, model: LocalModel, clock: Callable[[], float] = time.perf_counter) -> None:
        import llama_cpp

        self.model = model
        self._clock = clock  # times answer tokens (PaceWatch); tests pass their own
        # What llama.cpp's abort callback polls: the Stop of the call in progress.
        self._cancel = threading.Event()
        self._abort_callback = llama_cpp.ggml_abort_callback(lambda _data: self._cancel.is_set())

    @property
    def where(self) -> str:
        return "this computer"

    @property
    def on_this_computer(self) -> bool:
        return True

    def prepare_turn(self) -> None:
        self.model.fit_threads_to_load()

    def cached_tokens(self) -> list[int]:
        return cached_tokens(self.model.llama)

    def can_shift(self) -> bool:
        return can_shift(self.model)

    @contextlib.contextmanager
    def _stoppable(self, cancel: threading.Event) -> Iterator[None]:
        """While the body runs, Stop also interrupts a prompt batch in progress
        (512 tokens: ~25 s on a 2-core laptop), not only between batches.

        llama.cpp polls the abort callback after every graph node (~600 per
        Phi-3 decode) from its own thread, and each poll needs the GIL: with
        another Python thread busy (the window, an index run), decoding one
        token took 7x as long in a probe (950 ms instead of 130). So it is on
        only around prompt batches; answer tokens are decoded one at a time
        and Stop is checked between them, within one token."""
        import llama_cpp

        self._cancel = cancel
        ctx = context_handle(self.model.llama)
        llama_cpp.llama_set_abort_callback(ctx, self._abort_callback, None)
        try:
            yield
        finally:
            # A function pointer type called without arguments is NULL: no callback.
            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)

    def read(
        self,
        tokens: list[int],
        cancel: threading.Event,
        batch_tokens: int,
        *,
        between: threading.Event | None = None,
    ) -> Generator[PromptProgress, None, PromptRead]:
        """Evaluate the prompt but its last token, in batches, reusing the
        longest cached prefix. ``cancel`` also aborts the batch in progress
        (llama.cpp keeps the batches before it); ``between`` ends the reading
        once the batch in progress is done.

        We do this ourselves (rather than inside ``Llama.generate``) to check
        ``cancel`` between batches. ``generate`` then finds all but the last
        token cached and evaluates just that one, which yields the logits.
        """
        llama = self.model.llama
        # History left out since the last turn: the rest of the cache moves up.
        reused = reuse_cache(self.model, tokens[:-1])
        # Drop whatever of the cache this prompt does not share.
        keep_cached(llama, reused)
        pending = tokens[reused:-1]
        log.debug("prompt of %d tokens: %d cached, %d to read", len(tokens), reused, len(pending))
        started = time.perf_counter()
        try:
            for start in range(0, len(pending), batch_tokens):
                if cancel.is_set() or (between is not None and between.is_set()):
                    break
                with self._stoppable(cancel):
                    llama.eval(pending[start : start + batch_tokens])
                if len(pending) > batch_tokens:
                    yield PromptProgress(min(start + batch_tokens, len(pending)), len(pending))
        except RuntimeError as exc:
            seconds = time.perf_counter() - started
            if cancel.is_set():  # aborted mid-batch by Stop: the cache up to n_tokens is intact
                return PromptRead(reused, cached_count(llama) - reused, seconds, complete=False)
            self.forget()
            raise GenerationFailed(
                "llama.cpp failed while reading the prompt. Try again; if it keeps failing, "
                "lower the context size in Settings.",
                detail=str(exc),
            ) from exc
        seconds = time.perf_counter() - started
        read = cached_count(llama) - reused
        return PromptRead(reused, read, seconds, complete=reused + read >= len(tokens) - 1)

    def write(
        self, tokens: list[int], sampling: SamplingParams, cancel: threading.Event
    ) -> Generator[Written, None, WriteEnd]:
        model, llama = self.model, self.model.llama
        n_ctx = model.context_tokens
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = llama.generate(
            tokens,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
        )
        reason: WriteEnd = "stop"
        # Another program that starts or stops mid-answer shows in the token
        # times: then the CPU counters restart and, once 0.2 s of decoding
        # later they can tell, the thread count is set between two tokens.
        pace, last, looking = PaceWatch(), self._clock(), False
        try:
            for token in stream:
                if model.is_end_of_turn(token):
                    break
                yield Written(decoder.decode(model.token_bytes(token)), (token,))
                if cached_count(llama) + 1 >= n_ctx:
                    reason = "length"
                    break
                if pace.token(self._clock() - last):
                    looking = model.start_thread_look()
                elif looking:
                    looking = not model.finish_thread_look()
                last = self._clock()
        except RuntimeError as exc:
            if not cancel.is_set():
                self.forget()
                raise GenerationFailed(
                    "llama.cpp failed while writing the answer. Try again.", detail=str(exc)
                ) from exc
        finally:
            stream.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            yield Written(tail)
        return reason

    def answer_tokens(self, text: str, sampled: list[int]) -> list[int]:  # noqa: ARG002 (the protocol's)
        return sampled

    def forget(self) -> None:
        self.model.llama.reset()

    def calibrate(self) -> float:
        """~128 tokens: seconds on a laptop CPU. Clears llama.cpp's KV cache."""
        with self._stoppable(threading.Event()):  # a Stop left from a turn must not abort it
            return measure_prompt_speed(self.model)
