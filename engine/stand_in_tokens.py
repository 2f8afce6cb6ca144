"""Stand-in tokens for a model server that does not share its tokenizer
(Ollama, LM Studio): the turn still counts, caches and trims in "tokens",
and the server gets the prompt as text.

A stand-in token is a run of at most :data:`CHUNK_BYTES` bytes of UTF-8
(whole characters), interned so the ids turn back into exactly the text;
a template marker (``<|user|>``…) is a token of its own. Three bytes is
about one real token of English or less (Phi-3's tokenizer averages ~4
characters), so the planner's counts err high, which is the safe side: a
prompt planned to fit does fit. (A rare CJK character can take two real
tokens for its three bytes; the answer reserve absorbs that.)

Hostile input: the server tokenizes the text itself, parsing special
tokens, so before a content text is cut into stand-ins every marker-like
span in it is broken with a zero-width space (``engine.server_model``'s
``break_markers``); only the template's own markers reach the server whole.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence

CHUNK_BYTES = 3
# Marker ids start above every Unicode code point, far from chunk ids.
_FIRST_MARKER_ID = 0x110000


class StandInTokenizer:
    """Text to stand-in ids and back. Thread-safe (the interning table)."""

    def __init__(self, markers: Iterable[str]) -> None:
        self.markers = {text: _FIRST_MARKER_ID + i for i, text in enumerate(sorted(set(markers)))}
        self._marker_text = {token: text for text, token in self.markers.items()}
        longest_first = sorted(self.markers, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(m) for m in longest_first)) if longest_first else None
        )
        self._ids: dict[str, int] = {}
        self._chunks: list[str] = []
        self._lock = threading.Lock()

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """``special``: marker texts in ``text`` become their marker ids."""
        if not special or self._pattern is None:
            return self._chunked(text)
        tokens: list[int] = []
        position = 0
        for match in self._pattern.finditer(text):
            tokens += self._chunked(text[position : match.start()])
            tokens.append(self.markers[match.group()])
            position = match.end()
        return tokens + self._chunked(text[position:])

    def text(self, tokens: Sequence[int]) -> str:
        with self._lock:
            return "".join(
                self._marker_text[t] if t >= _FIRST_MARKER_ID else self._chunks[t] for t in tokens
            )

    def _chunked(self, text: str) -> list[int]:
        tokens = []
        chunk, size = "", 0
        for char in text:
            width = len(char.encode("utf-8"))
            if chunk and size + width > CHUNK_BYTES:
                tokens.append(self._intern(chunk))
                chunk, size = "", 0
            chunk += char
            size += width
        if chunk:
            tokens.append(self._intern(chunk))
        return tokens

    def _intern(self, chunk: str) -> int:
        with self._lock:
            token = self._ids.get(chunk)
            if token is None:
                token = self._ids[chunk] = len(self._chunks)
                self._chunks.append(chunk)
            return token
