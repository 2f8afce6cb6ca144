"""Markdown answers to the HTML subset Qt's rich-text engine renders.

Qt labels understand HTML 4 with inline styles, not CSS classes, so code is
highlighted by Pygments with inline styles and code blocks are wrapped in a
one-cell table (the reliable way to get a padded background in Qt). Raw HTML in
the model's output is escaped, never rendered: the text may echo a hostile
web page.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

CODE_BACKGROUND = "#f6f7f9"
CODE_BORDER = "#e3e6ea"
INLINE_CODE_BACKGROUND = "#eef0f3"
PYGMENTS_STYLE = "default"


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    md.add_render_rule("code_inline", _render_code_inline)
    return md


def markdown_to_html(text: str) -> str:
    """Render ``text``. Safe on partial Markdown (an unclosed ``` while streaming)."""
    return str(_parser().render(text))


def parse_blocks(text: str) -> list[int]:
    """The first line of each top-level block of ``text``, in order."""
    return [
        token.map[0]
        for token in _parser().parse(text)
        # Openings (paragraph_open, bullet_list_open, ...) and self-contained
        # blocks (fence, hr); closings carry no line map.
        if token.level == 0 and token.nesting in (0, 1) and token.map is not None
    ]


def _render_fence(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    token = tokens[idx]
    language = (token.info or "").strip().split(" ")[0]
    body = _highlight(token.content.rstrip("\n"), language)
    return (
        f'<table width="100%" cellspacing="0" cellpadding="10" '
        f'style="background-color:{CODE_BACKGROUND}; border:1px solid {CODE_BORDER}; '
        f'margin-top:4px; margin-bottom:8px;"><tr><td>'
        f'<pre style="margin:0; font-family:monospace;">{body}</pre>'
        f"</td></tr></table>\n"
    )


def _render_code_inline(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    code = html.escape(tokens[idx].content)
    return (
        f'<code style="background-color:{INLINE_CODE_BACKGROUND}; font-family:monospace;">'
        f"&nbsp;{code}&nbsp;</code>"
    )


def _highlight(code: str, language: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return html.escape(code)
    formatter = HtmlFormatter(nowrap=True, noclasses=True, style=PYGMENTS_STYLE)
    return str(highlight(code, lexer, formatter)).rstrip("\n")
