"""Render conversations into prompt text with the model's own chat template.

The template comes from the GGUF's ``tokenizer.chat_template`` (a Jinja2
string, as on Hugging Face) and is rendered in a sandbox: it is data from a
downloaded file, not code we trust.
"""

from __future__ import annotations

import datetime as _dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engine.errors import ChatTemplateFailed, ModelLoadFailed
from engine.gguf_info import ModelInfo

Role = Literal["system", "user", "assistant"]

# For non-Phi models that ship without a template: plain role-prefixed turns.
GENERIC_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

# Phi-3's chat template as published in Microsoft's tokenizer_config.json.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class PromptPart:
    """A span of a rendered prompt. ``template``: written by the chat template
    itself (its markers may become control tokens); otherwise a message's
    content (the user's words, documents, web text, answers), which must only
    ever be read as text: a web page that writes ``<|end|><|system|>`` must not
    open a system turn."""

    text: str
    template: bool


# Stands in for a message's content while rendering, to see where the template
# puts it. Private-use characters plus a fresh random nonce per render, so no
# content (which cannot know the nonce) can pass for a placeholder.
_PLACEHOLDER_OPEN, _PLACEHOLDER_CLOSE = "\ue000", "\ue001"


class ChatFormat:
    """A compiled chat template plus what it needs to render."""

    def __init__(
        self,
        template: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        add_bos: bool = True,
        note: str | None = None,
    ) -> None:
        from jinja2 import BaseLoader, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(
            loader=BaseLoader(), trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
        )
        env.globals["raise_exception"] = _raise_template_exception
        env.globals["strftime_now"] = lambda fmt: _dt.datetime.now().strftime(fmt)
        try:
            self._template = env.from_string(template)
        except TemplateError as exc:
            raise ModelLoadFailed(
                "The model's chat template is broken and cannot be used.", detail=str(exc)
            ) from exc
        self.source = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.add_bos = add_bos
        # Shown to the user when we had to guess (no template in the file).
        self.note = note

    @classmethod
    def for_model(cls, info: ModelInfo) -> ChatFormat:
        common = {
            "bos_token": info.bos_token or "",
            "eos_token": info.eos_token or "",
            "add_bos": info.add_bos_token,
        }
        if info.chat_template:
            try:
                return cls(info.chat_template, **common)  # type: ignore[arg-type]
            except ModelLoadFailed:
                if not info.is_phi:
                    raise
                return cls(
                    PHI3_CHAT_TEMPLATE,
                    note="The model's chat template is broken; using Phi-3's.",
                    **common,  # type: ignore[arg-type]
                )
        if info.is_phi:
            return cls(
                PHI3_CHAT_TEMPLATE,
                note="This model file has no chat template; using Phi-3's.",
                **common,  # type: ignore[arg-type]
            )
        return cls(
            GENERIC_CHAT_TEMPLATE,
            note=(
                "This model file has no chat template; answers may be poor. "
                "Use a GGUF that includes one."
            ),
            **common,  # type: ignore[arg-type]
        )

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text, without a leading BOS (the tokenizer adds it)."""
        return self._render(messages, add_generation_prompt)

    def render_parts(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> tuple[PromptPart, ...]:
        """The prompt as spans of template text and of message content; their
        texts joined are exactly :meth:`render`'s text.

        The template is rendered a second time with a placeholder for each
        content, which shows where it put each one. A template that changes
        the content on its way (``| trim``) gives a text that differs; the
        contents are then looked for in order in the real text instead; and a
        template that rewrites them beyond recognition gets the whole prompt
        as content but for the spans found before: safe (no content becomes a
        control token) at the price of the template's own markers there.
        """
        text = self._render(messages, add_generation_prompt)
        nonce = secrets.token_hex(8)
        marked = self._render(
            [
                ChatMessage(m.role, f"{_PLACEHOLDER_OPEN}{nonce}:{i}{_PLACEHOLDER_CLOSE}")
                for i, m in enumerate(messages)
            ],
            add_generation_prompt,
        )
        placeholder = re.compile(
            re.escape(_PLACEHOLDER_OPEN + nonce) + r":(\d+)" + re.escape(_PLACEHOLDER_CLOSE)
        )
        parts: list[PromptPart] = []
        position = 0
        for match in placeholder.finditer(marked):
            parts.append(PromptPart(marked[position : match.start()], template=True))
            parts.append(PromptPart(messages[int(match.group(1))].content, template=False))
            position = match.end()
        parts.append(PromptPart(marked[position:], template=True))
        if "".join(p.text for p in parts) == text:
            return _merged(parts)
        return _merged(_find_contents(text, messages))

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        from jinja2 import TemplateError

        try:
            text = self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as exc:
            # Not a load failure: the model is loaded and other conversations
            # work. The template's own words (often "roles must alternate")
            # are for the details, not the sentence the user reads.
            raise ChatTemplateFailed(
                "The model's chat template cannot format this conversation, so it was not "
                "sent. Start a new chat, or use a GGUF with a standard Phi-3 chat template.",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        # Some templates write the BOS text themselves; llama.cpp adds it as a
        # token too, and a doubled BOS degrades answers.
        if self.add_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token) :]
        return text


def _find_contents(text: str, messages: Sequence[ChatMessage]) -> list[PromptPart]:
    """Spans of ``text`` split at each message's content, looked for in order
    (as it is, then stripped). From the first content not found on, the rest
    of the text counts as content: it cannot be told apart."""
    parts: list[PromptPart] = []
    position = 0
    for message in messages:
        for content in (message.content, message.content.strip()):
            at = text.find(content, position) if content else -1
            if at >= 0:
                break
        else:
            if message.content.strip():
                parts.append(PromptPart(text[position:], template=False))
                return parts
            continue
        parts.append(PromptPart(text[position:at], template=True))
        parts.append(PromptPart(content, template=False))
        position = at + len(content)
    parts.append(PromptPart(text[position:], template=True))
    return parts


def _merged(parts: Sequence[PromptPart]) -> tuple[PromptPart, ...]:
    """Without empty spans, neighbours of one kind joined."""
    out: list[PromptPart] = []
    for part in parts:
        if not part.text:
            continue
        if out and out[-1].template == part.template:
            out[-1] = PromptPart(out[-1].text + part.text, part.template)
        else:
            out.append(part)
    return tuple(out)


def _raise_template_exception(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)
