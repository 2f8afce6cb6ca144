"""The seam between a chat turn and whatever supplies grounding passages.

The engine never imports ``retrieval``: the app passes a retriever in as a
:class:`ContextSource`, any callable of this shape.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol


class Passage(Protocol):
    """A piece of text the answer may cite."""

    @property
    def text(self) -> str: ...

    @property
    def citation(self) -> str:
        """Where it comes from, for people: "report.pdf, p. 3", a page title + URL."""
        ...


class ContextSource(Protocol):
    def __call__(self, query: str, cancel: threading.Event) -> Sequence[Passage]:
        """Passages relevant to ``query``; return early (possibly empty) once
        ``cancel`` is set."""
        ...


def user_content_with_sources(question: str, passages: Sequence[Passage]) -> str:
    """The newest user turn with its sources. Sources go here, not into the
    system prompt, so the system prompt and earlier turns stay byte-stable and
    llama.cpp can reuse their KV cache."""
    if not passages:
        return question
    blocks = [f"[{i}] {p.citation}\n{p.text.strip()}" for i, p in enumerate(passages, start=1)]
    return (
        "Sources:\n\n"
        + "\n\n".join(blocks)
        + "\n\nAnswer the question using the sources above when they are relevant, and cite "
        "them as [1], [2]. If they do not contain the answer, say so.\n\nQuestion: " + question
    )
