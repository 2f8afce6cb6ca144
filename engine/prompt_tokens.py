"""Prompt text to tokens, where only the chat template makes control tokens.

llama.cpp can tokenize a text with ``special=True`` (every ``<|end|>``,
``<|system|>``… in it becomes its control token) or ``special=False`` (all of
it is text). A prompt needs both: the template's markers must be control
tokens, and nothing inside a message may become one, or a web page, a
document or a pasted text can close the user's turn and open a forged system
or assistant turn (a hostile-input probe did exactly that through a fetched
page). So the prompt arrives as :class:`~engine.chat_template.PromptPart` s,
and only template parts are searched for markers.

The prompt is cut into :class:`Piece` s: a marker (or the prompt's start) and
the text up to the next marker, which is what llama.cpp itself does with a
``special=True`` text (``tokenizer_st_partition``): each text fragment is
tokenized on its own, as if it started a text (SentencePiece's space prefix),
after the whitespace next to a marker with the strip attribute is removed
(Phi-3's chat tokens strip the newline after them). Tokenized that way, a
prompt whose contents hold no markers gives exactly the tokens of the whole
text tokenized with ``special=True`` (a test holds it to that), so nothing
changes for normal prompts: answers, golden prompts and KV-cache reuse.

Pieces are also the unit ``engine.prompt_cache`` remembers and reuses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.chat_template import ChatFormat, PromptPart


class TokenizingModel(Protocol):
    """What the tokenizer reads of ``engine.model.LocalModel`` or
    ``engine.server_model.ServerModel``, which build it: named here so that
    this module does not import the model modules back."""

    @property
    def chat_format(self) -> ChatFormat: ...

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]: ...


# What llama.cpp's tokenizer counts as whitespace when a marker strips it (isspace).
_C_WHITESPACE = " \t\n\v\f\r"
# Breaks a marker's text inside content that llama.cpp would still match with
# special=False (user-defined tokens): a zero-width space after its first character.
_BREAK = "\u200b"


@dataclass(frozen=True)
class Piece:
    """A marker token (None: the start of the prompt) and the text after it,
    up to the next marker. ``strip_end``: that next marker strips the
    whitespace before it (llama.cpp's lstrip attribute), so this text's
    trailing whitespace is not tokenized."""

    marker: int | None
    text: str
    strip_end: bool = False

    def __post_init__(self) -> None:
        # Without trailing whitespace, strip_end changes nothing: keep pieces
        # that tokenize alike equal.
        if self.strip_end and not self.text.endswith(tuple(_C_WHITESPACE)):
            object.__setattr__(self, "strip_end", False)


@dataclass(frozen=True)
class Marker:
    token: int
    text: str
    strips_before: bool  # lstrip: whitespace before it is dropped
    strips_after: bool  # rstrip: whitespace after it is dropped


class PromptTokenizer:
    """Turns prompt parts into pieces and pieces into the model's tokens."""

    def __init__(self, model: TokenizingModel, markers: dict[int, Marker] | None = None) -> None:
        """``markers``: the model's control tokens, when known otherwise (a
        server's, probed through its tokenizer); None: read from llama.cpp's
        vocabulary of ``model`` (a LocalModel)."""
        self._model = model
        self.markers = markers if markers is not None else _special_tokens(model)
        by_text = sorted(self.markers.values(), key=lambda m: len(m.text), reverse=True)
        self._by_text = {m.text: m for m in by_text}
        # Longest first, as llama.cpp matches them.
        self._pattern = (
            re.compile("|".join(re.escape(m.text) for m in by_text)) if by_text else None
        )

    @functools.cached_property
    def marker_ids(self) -> frozenset[int]:
        return frozenset(self.markers)

    def pieces(self, parts: Iterable[PromptPart]) -> list[Piece]:
        """``parts`` cut at the markers of their template spans."""
        cuts: list[tuple[int | None, list[str]]] = [(None, [])]
        for part in parts:
            if not part.template or self._pattern is None:
                cuts[-1][1].append(part.text)
                continue
            position = 0
            for match in self._pattern.finditer(part.text):
                cuts[-1][1].append(part.text[position : match.start()])
                cuts.append((self._by_text[match.group()].token, []))
                position = match.end()
            cuts[-1][1].append(part.text[position:])
        pieces = []
        for index, (marker, texts) in enumerate(cuts):
            following = cuts[index + 1][0] if index + 1 < len(cuts) else None
            strip_end = following is not None and self.markers[following].strips_before
            pieces.append(Piece(marker, "".join(texts), strip_end))
        return pieces

    def tokens(self, piece: Piece, *, first: bool) -> tuple[int, ...]:
        """The tokens of one piece; ``first``: it starts the prompt (gets the BOS)."""
        text = piece.text
        head: tuple[int, ...] = ()
        if piece.marker is not None:
            head = (piece.marker,)
            if self.markers[piece.marker].strips_after:
                text = text.lstrip(_C_WHITESPACE)
        if piece.strip_end:
            text = text.rstrip(_C_WHITESPACE)
        bos = first and self._model.chat_format.add_bos
        return head + tuple(self.text_tokens(text, add_bos=bos))

    def text_tokens(self, text: str, *, add_bos: bool = False) -> list[int]:
        """``text`` as text: no marker in it becomes a control token."""
        if not text and not add_bos:
            return []
        tokens = self._model.tokenize(text, add_bos=add_bos, special=False)
        body = tokens[1:] if add_bos else tokens
        if self.marker_ids.isdisjoint(body):
            return tokens
        # llama.cpp matches user-defined tokens even with special=False: break
        # their texts so that they are read as the characters they are.
        for marker in self._by_text:
            text = text.replace(marker, marker[0] + _BREAK + marker[1:])
        return self._model.tokenize(text, add_bos=add_bos, special=False)

    def count_markers(self, tokens: Iterable[int]) -> dict[str, int]:
        """How often each marker occurs in ``tokens``, by its text."""
        counts: dict[str, int] = {}
        for token in tokens:
            if token in self.markers:
                text = self.markers[token].text
                counts[text] = counts.get(text, 0) + 1
        return counts

    def tokenize(self, parts: Sequence[PromptPart]) -> list[int]:
        pieces = self.pieces(parts)
        return [t for i, p in enumerate(pieces) for t in self.tokens(p, first=i == 0)]


def _special_tokens(model: Any) -> dict[int, Marker]:
    """The tokens llama.cpp matches in a ``special=True`` text (control,
    user-defined and unknown ones, as ``cache_special_tokens``), by id."""
    import llama_cpp

    vocab = model.vocab
    attr = llama_cpp.llama_vocab_get_attr
    wanted = (
        llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    )
    found: dict[int, Marker] = {}
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        flags = attr(vocab, token)
        if not flags & wanted:
            continue
        text = model.llama.detokenize([token], special=True).decode("utf-8", "replace")
        # Only a text that comes back as this one token is a marker.
        if text and model.tokenize(text, add_bos=False, special=True) == [token]:
            found[token] = Marker(
                token,
                text,
                strips_before=bool(flags & llama_cpp.LLAMA_TOKEN_ATTR_LSTRIP),
                strips_after=bool(flags & llama_cpp.LLAMA_TOKEN_ATTR_RSTRIP),
            )
    return found
