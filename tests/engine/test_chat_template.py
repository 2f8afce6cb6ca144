from __future__ import annotations

from pathlib import Path

import pytest

from engine.chat_template import ChatFormat, ChatMessage
from engine.errors import ChatTemplateFailed, ModelLoadFailed
from engine.gguf_info import inspect_gguf
from engine.synthetic_model import write_phi3_gguf

CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "What is GGUF?"),
    ChatMessage("assistant", "A file format for llama.cpp models."),
    ChatMessage("user", "Who made it?"),
]

# Golden: Phi-3's documented prompt format, byte for byte.
PHI3_GOLDEN = (
    "<|system|>\nBe brief.<|end|>\n"
    "<|user|>\nWhat is GGUF?<|end|>\n"
    "<|assistant|>\nA file format for llama.cpp models.<|end|>\n"
    "<|user|>\nWho made it?<|end|>\n"
    "<|assistant|>\n"
)


def test_template_from_gguf_renders_phi3_format(tiny_model: Path) -> None:
    fmt = ChatFormat.for_model(inspect_gguf(tiny_model))
    assert fmt.render(CONVERSATION) == PHI3_GOLDEN
    assert fmt.note is None


def test_rendering_is_byte_stable_across_turns(tiny_model: Path) -> None:
    """Turn N's prompt + answer is a prefix of turn N+1's prompt: the KV cache can be reused."""
    fmt = ChatFormat.for_model(inspect_gguf(tiny_model))
    first = fmt.render(CONVERSATION[:2])
    second = fmt.render(CONVERSATION)
    assert second.startswith(first + CONVERSATION[2].content)


def test_phi3_file_without_template_falls_back_to_phi3_with_a_note(tmp_path: Path) -> None:
    path = write_phi3_gguf(tmp_path / "no-template.gguf", chat_template=None)
    fmt = ChatFormat.for_model(inspect_gguf(path))
    assert fmt.render(CONVERSATION) == PHI3_GOLDEN
    assert fmt.note and "no chat template" in fmt.note


def test_leading_bos_written_by_a_template_is_not_doubled() -> None:
    fmt = ChatFormat("{{ bos_token }}{{ messages[0]['content'] }}", bos_token="<s>", add_bos=True)
    assert fmt.render([ChatMessage("user", "hi")]) == "hi"


def test_broken_template_is_a_readable_error() -> None:
    with pytest.raises(ModelLoadFailed, match="chat template is broken"):
        ChatFormat("{% for %}")


def test_template_cannot_escape_the_sandbox() -> None:
    fmt = ChatFormat("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ChatTemplateFailed):
        fmt.render([ChatMessage("user", "x")])
