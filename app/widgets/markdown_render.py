"""Markdown answers to the HTML subset Qt's rich-text engine renders.

Qt labels understand HTML 4 with inline styles, not CSS classes, so code is
highlighted by Pygments with inline styles and code blocks are wrapped in a
one-cell table (the reliable way to get a padded background in Qt). Raw HTML in
the model's output is escaped, never rendered: the text may echo a hostile
web page. For the same reason no ``<img>`` is ever produced (an image is shown
as a link: a remote image would be a tracking pixel), and a link whose text
looks like a web address other than its real target shows the real one.

Citations [1], [2] of an answer with sources become ``cite:N`` links, which
the chat view opens as the N-th source.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from app.style import colors

CITE_SCHEME = "cite"

# A colour in Pygments' inline styles ("color: #008000").
_STYLE_COLOR = re.compile(r"(?<![-\w])color: ?(#[0-9a-fA-F]{6})")
# [1] or [1, 2]: numbers the answer cites.
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# Link text that reads as an address: "example.org", "https://example.org/x".
_ADDRESS_TEXT = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)", re.I)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    md.add_render_rule("code_inline", _render_code_inline)
    md.add_render_rule("text", _render_text)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("link_close", _render_link_close)
    return md


@lru_cache(maxsize=1)
def _block_parser() -> Any:
    """The same block grammar without inline parsing (links, emphasis): where
    blocks begin is all ``parse_blocks`` needs, at a thirtieth of the cost."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("inline")
    return md


def markdown_to_html(text: str, *, citations: int = 0) -> str:
    """Render ``text``. Safe on partial Markdown (an unclosed ``` while streaming).
    ``citations``: how many sources the answer has; [n] up to it become links."""
    return str(_parser().render(text, {"citations": citations}))


def cite_number(url: str) -> int | None:
    """N for a ``cite:N`` link, else None."""
    scheme, _, rest = url.partition(":")
    if scheme != CITE_SCHEME or not rest.isdigit():
        return None
    return int(rest)


def parse_blocks(text: str) -> list[int]:
    """The first line of each top-level block of ``text``, in order."""
    return [
        token.map[0]
        for token in _block_parser().parse(text)
        # Openings (paragraph_open, bullet_list_open, ...) and self-contained
        # blocks (fence, hr); closings carry no line map.
        if token.level == 0 and token.nesting in (0, 1) and token.map is not None
    ]


def _render_fence(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    token = tokens[idx]
    language = (token.info or "").strip().split(" ")[0]
    body = _highlight(token.content.rstrip("\n"), language)
    scheme = colors.current()  # inline colours: Qt's rich text has no stylesheet classes
    return (
        f'<table width="100%" cellspacing="0" cellpadding="10" '
        f'style="background-color:{scheme["code_bg"]}; border:1px solid {scheme["code_border"]}; '
        f'margin-top:4px; margin-bottom:8px;"><tr><td>'
        f'<pre style="margin:0; font-family:monospace;">{body}</pre>'
        f"</td></tr></table>\n"
    )


def _render_code_inline(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    code = html.escape(tokens[idx].content)
    return (
        f'<code style="background-color:{colors.current()["inline_code_bg"]}; '
        f'font-family:monospace;">'
        f"&nbsp;{code}&nbsp;</code>"
    )


def _render_text(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    text = html.escape(tokens[idx].content)
    count = int((env or {}).get("citations", 0))
    if not count:
        return text

    def link(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        if not all(1 <= n <= count for n in numbers):
            return match.group(0)
        links = ", ".join(
            f'<a href="{CITE_SCHEME}:{n}" style="text-decoration:none;">{n}</a>' for n in numbers
        )
        return f"[{links}]"

    return _CITATION.sub(link, text)


def _render_image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    """An image as a link to it: never loaded, so a remote one cannot track."""
    token = tokens[idx]
    src = str(token.attrs.get("src", ""))
    alt = token.content or "image"
    return f'<a href="{html.escape(src)}">[image: {html.escape(alt)}]</a>'


def _render_link_close(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # noqa: ARG001
    """Close the link; if its text names a different address than where it
    goes ("[bank.com](http://evil.example)"), show the real target after it."""
    depth, pieces, href = 0, [], ""
    # Walk back by index to this link's opening only: slicing tokens[:idx]
    # copied everything before it for every link, quadratic in links per block.
    for back in range(idx - 1, -1, -1):
        token = tokens[back]
        if token.type == "link_close":
            depth += 1
        elif token.type == "link_open":
            if depth == 0:
                href = str(token.attrs.get("href", ""))
                break
            depth -= 1
        elif token.type in ("text", "code_inline"):
            pieces.append(token.content)
    shown = "".join(reversed(pieces))
    match = _ADDRESS_TEXT.match(shown)
    real_host = (urlsplit(href).hostname or "").lower()
    if match is None or match.group(1).lower().rstrip(".") == real_host:
        return "</a>"
    return f'</a> <span style="color:{colors.current()["muted"]};">({html.escape(href)})</span>'


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
    scheme = colors.current()
    formatter = HtmlFormatter(nowrap=True, noclasses=True, style=scheme["pygments"])
    html_code = str(highlight(code, lexer, formatter)).rstrip("\n")
    # No Pygments style is readable on our code background in every token
    # (comments are often ~3:1): each colour is nudged until it reaches AA.
    return _STYLE_COLOR.sub(
        lambda match: "color: " + colors.readable_on(match.group(1), scheme["code_bg"]), html_code
    )
