"""A turn's prompt: its parts counted for the planner, rendered and tokenized
to fit the context, reusing the tokens of what it repeats from the last one.

Split from ``engine.turn`` (which runs the turn: sources, evaluation,
decoding) so each reads on its own. The planner (``engine.budget``) decides
with the counts :meth:`PromptBuilder.sizes` gives; :meth:`PromptBuilder.fit`
makes the real prompt and trims it when the context is short.
:class:`~engine.prompt_cache.PromptCache` keeps the tokens llama.cpp has
cached, so a follow-up turn repeats them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.budget import PromptSizes
from engine.chat_template import ChatMessage
from engine.context import Passage, SourcePassage, passage_block, user_content_with_sources
from engine.errors import ContextOverflow
from engine.model_backend import ModelBackend
from engine.prompt_cache import PromptCache, Segment, shared_prefix

# Room kept free for the answer when deciding whether a prompt fits.
ANSWER_RESERVE_TOKENS = 512
# Separator tokens between source blocks ("\n\n"), counted with each block.
_BLOCK_SEPARATOR_TOKENS = 2


@dataclass(frozen=True)
class BuiltPrompt:
    """A rendered, tokenized prompt and how its evaluation went."""

    text: str
    tokens: list[int]
    question: str  # as the user wrote it
    user_content: str  # the question with its numbered sources, as sent
    reused_tokens: int = 0
    seconds: float = 0.0
    sources: tuple[Passage, ...] = ()
    segments: tuple[Segment, ...] = ()  # how tokens map to text (engine.prompt_cache)


class PromptBuilder:
    """Renders and tokenizes one session's prompts (one model, one cache)."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend
        self.model = backend.model
        # Text and tokens of the last prompt + answer the model evaluated.
        self.cache = PromptCache(self.model)
        # Token counts of the system prompt and history units planned last
        # turn, by their messages: a follow-up repeats them verbatim, so each
        # is tokenized once, not again at every turn (sizes).
        self._unit_tokens: dict[tuple[tuple[ChatMessage, ...], bool], int] = {}

    def sizes(
        self, system: list[ChatMessage], units: list[list[ChatMessage]], question: str
    ) -> PromptSizes:
        """Token counts of each part (each rendered and tokenized on its own:
        an estimate within a few tokens; fit() checks the real prompt).
        The parts this turn repeats from the last one are not tokenized again."""
        model, render = self.model, self.model.chat_format.render_parts
        tokenizer = model.prompt_tokenizer
        n_ctx = model.context_tokens
        known, counted = self._unit_tokens, {}

        def count(messages: list[ChatMessage], *, bos: bool = False) -> int:
            key = (tuple(messages), bos)
            if key not in known:
                pieces = tokenizer.pieces(render(messages, add_generation_prompt=False))
                known[key] = sum(
                    len(tokenizer.tokens(p, first=bos and i == 0)) for i, p in enumerate(pieces)
                )
            counted[key] = known[key]
            return counted[key]

        framing = user_content_with_sources(question, [SourcePassage("", "", "web")])
        question_tokens = count([ChatMessage("user", framing)])
        history = [m for unit in units for m in unit]
        tokens = self.tokenize_messages([*system, *history, ChatMessage("user", question)])
        cached = shared_prefix(self.backend.cached_tokens(), tokens)
        sizes = PromptSizes(
            context_tokens=n_ctx,
            answer_reserve_tokens=min(ANSWER_RESERVE_TOKENS, n_ctx // 4),
            system_tokens=count(system, bos=True) if system else 0,
            history_tokens=[count(unit) for unit in units],
            question_tokens=question_tokens,
            cached_prefix_tokens=cached,
            cache_shifts=self.backend.can_shift(),
        )
        self._unit_tokens = counted  # only this conversation's parts: bounded by its length
        return sizes

    def block_tokens(self, passage: Passage) -> int:
        block = passage_block(99, passage)
        return len(self.model.prompt_tokenizer.text_tokens(block)) + _BLOCK_SEPARATOR_TOKENS

    def question_start(
        self,
        system: list[ChatMessage],
        units: list[list[ChatMessage]],
        dropped_units: int,
        question: str,
        prompt: BuiltPrompt,
    ) -> int:
        """How much of ``prompt`` a longer question would repeat: what it
        shares with the same prompt for the question with more words after
        it (everything up to the question's last word piece, whatever the
        tokenizer does at the seam)."""
        sources = list(prompt.sources)
        history = [m for unit in units[dropped_units:] for m in unit]
        content = user_content_with_sources(question + " \u2026", sources)
        parts = self.model.chat_format.render_parts(
            [*system, *history, ChatMessage("user", content)]
        )
        return shared_prefix(prompt.tokens, self.cache.tokenize(parts).tokens)

    def fit(
        self,
        system: list[ChatMessage],
        units: list[list[ChatMessage]],
        dropped_units: int,
        question: str,
        passages: list[Passage],
    ) -> tuple[BuiltPrompt, int]:
        """Render and tokenize; until the prompt plus an answer reserve fits,
        leave out the last passage (while more than one is left),
        then the oldest exchange, then the last passage. Returns the prompt
        and how many history units are left out."""
        n_ctx = self.model.context_tokens
        reserve = min(ANSWER_RESERVE_TOKENS, n_ctx // 4)
        sources = list(passages)
        while True:
            user_content = user_content_with_sources(question, sources)
            history = [m for unit in units[dropped_units:] for m in unit]
            messages = [*system, *history, ChatMessage("user", user_content)]
            parts = self.model.chat_format.render_parts(messages)
            tokenized = self.cache.tokenize(parts)
            tokens = tokenized.tokens
            if len(tokens) + reserve <= n_ctx:
                text = "".join(part.text for part in parts)
                prompt = BuiltPrompt(
                    text,
                    tokens,
                    question,
                    user_content,
                    sources=tuple(sources),
                    segments=tokenized.segments,
                )
                return prompt, dropped_units
            if len(sources) > 1:
                sources.pop()  # in the search's order: the last is the least relevant
            elif dropped_units < len(units):
                dropped_units += 1  # a whole exchange: history never starts with an answer
            elif sources:
                sources.pop()
            else:
                raise ContextOverflow(
                    f"This message is too long for the model's context: the prompt needs "
                    f"{len(tokens):,} tokens plus {reserve:,} for the answer, and the context "
                    f"holds {n_ctx:,}. Shorten the message, or raise the context size in "
                    "Settings if your memory allows.",
                    needed_tokens=len(tokens) + reserve,
                    limit_tokens=n_ctx,
                )

    def tokenize_messages(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt for ``messages`` (with the assistant's opening), reusing
        the cached tokens of what it repeats."""
        return self.cache.tokenize(self.model.chat_format.render_parts(messages)).tokens


def history_units(history: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """Earlier turns grouped into the units history is dropped by: a user
    message with the answers after it (a leading answer is a unit of its own)."""
    units: list[list[ChatMessage]] = []
    for message in history:
        if message.role == "user" or not units:
            units.append([message])
        else:
            units[-1].append(message)
    return units
