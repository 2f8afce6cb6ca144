"""Lines of Markdown and reStructuredText that are markup, not content.

Documentation sources are full of lines a reader never sees as text: MyST
targets ``(installing-plugins)=`` and RST labels ``.. _installing:``, link
definitions, front matter, ``toctree`` and ``contents`` blocks, lists that
only link to other pages, badge rows. Left in, they make chunks of their own
(a label line once ranked #5 with cosine 0.66 and was sent to the model as a
source) or pad real chunks with noise. The line scanners in ``markup`` ask
this module about each line outside code blocks and drop what it names.

Links decide "navigation" conservatively: a list item is dropped only when it
holds nothing but links and every link points inside the documentation (a
relative path, an anchor, a ``:doc:``/``{ref}`` role). A list of web
addresses ("Download for Windows", references) is content and stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# Directives whose block holds no prose: navigation, indexes, inclusions of
# other files (indexed on their own), settings for the renderer.
NON_CONTENT_DIRECTIVES = frozenset(
    {
        "autosummary",
        "contents",
        "currentmodule",
        "default-role",
        "highlight",
        "include",
        "index",
        "literalinclude",
        "meta",
        "module",
        "sectnum",
        "tableofcontents",
        "toctree",
    }
)
# Front matter longer than this is taken for text that starts with a rule.
FRONT_MATTER_MAX_LINES = 200

_MYST_TARGET = re.compile(r"^ {0,3}\([^()\s][^()]*\)=\s*$")
_LINK_DEFINITION = re.compile(
    r"^ {0,3}\[(?!\^)[^\]]+\]:[ \t]*<?\S+>?(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$"
)
# [TOC], [[_TOC_]], [[TOC]] (several dialects); kramdown's {:toc} and {: .class}
_TOC_MARKER = re.compile(r"^\s*(?:\[TOC\]|\[\[_?TOC_?\]\]|\{:[^}]*\})\s*$", re.IGNORECASE)
# An HTML tag (not an autolink such as <https://…>): a name, then attributes.
_TAG = r"<(?:/?[a-zA-Z][\w-]*(?:\s(?:[^<>\"']|\"[^\"]*\"|'[^']*')*)?/?)>"
_TAGS_ONLY = re.compile(rf"^\s*(?:{_TAG}\s*)+$")
_HTML_COMMENT = re.compile(r"^\s*<!--(?:(?!-->).)*-->\s*$")
_DIRECTIVE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}|:{3,})\s*\{([\w:.-]+)\}")

_RST_EXPLICIT = re.compile(r"^([ \t]*)\.\.(?:[ \t]+(.*))?$")
_RST_DIRECTIVE = re.compile(r"([\w:.+-]+)[ \t]*::")

_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,9}[.)]|\(\d{1,9}\)|#\.)\s+")
_IMAGE = re.compile(r"!\[[^\]]*\](?:\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(
    r"\[(?P<text>[^\]]*)\]\(\s*<?(?P<url>[^)\s>]*)>?(?:\s+[^)]*)?\)"  # [text](url)
    r"|<(?P<auto>[a-zA-Z][\w+.-]*:[^>\s]*)>"  # <https://...>
    r"|`[^`<]*<(?P<rst>[^>]+)>`__?"  # `text <url>`_
    r"|`[^`]+`__?(?!\w)"  # `target`_
    r"|(?:\{(?P<myst>[\w:-]+)\}|:(?P<role>[\w:-]+):)`[^`]+`"  # {doc}`x`, :ref:`x`
)
# Roles that link somewhere; other roles (math, kbd, abbr…) are content.
_LINK_ROLES = frozenset(
    {"doc", "ref", "any", "numref", "download", "term", "class", "func", "meth", "mod"}
    | {"attr", "obj", "data", "exc", "const", "envvar", "option", "keyword"}
)
_SCHEME = re.compile(r"^(?:[a-zA-Z][\w+.-]*:|//)")
_WORD = re.compile(r"[^\W_]")


def is_markdown_noise(line: str) -> bool:
    """A Markdown line outside code blocks that holds no content."""
    return bool(
        _MYST_TARGET.match(line)
        or _LINK_DEFINITION.match(line)
        or _TOC_MARKER.match(line)
        or _HTML_COMMENT.match(line)
        or _TAGS_ONLY.match(line)
        or is_navigation_item(line)
        or is_badge_line(line)
    )


class MarkdownNoise:
    """Which Markdown lines (outside code blocks) to drop, line by line: it
    remembers whether it is inside a dropped directive block."""

    def __init__(self) -> None:
        self.fence: str | None = None  # the fence of the dropped block we are in

    def drops(self, line: str) -> bool:
        if self.fence is not None:
            if closes_fence(line, self.fence):
                self.fence = None
            return True
        if (opened := directive_fence(line)) is not None:
            self.fence = opened
            return True
        return is_markdown_noise(line)


def directive_fence(line: str) -> str | None:
    """The fence that opens a non-content MyST directive (```{toctree},
    :::{contents}…), or None: it and its block are dropped up to the fence
    that closes it."""
    match = _DIRECTIVE_FENCE.match(line)
    if match is None or match.group(2).lower() not in NON_CONTENT_DIRECTIVES:
        return None
    return match.group(1)


def closes_fence(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def rst_markup_block(line: str) -> int | None:
    """If ``line`` starts explicit markup without content (a label or link
    target, a substitution, a comment, a toctree-like directive), its
    indent: the block goes on while lines are blank or indented deeper."""
    match = _RST_EXPLICIT.match(line)
    if match is None:
        return None
    rest = (match.group(2) or "").strip()
    if rest.startswith("["):
        return None  # a footnote or citation: content
    directive = _RST_DIRECTIVE.match(rest)
    if directive is not None and directive.group(1).lower() not in NON_CONTENT_DIRECTIVES:
        return None  # note, code-block, figure…: content
    return len(match.group(1).expandtabs())


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip()) if line.strip() else 0


def is_navigation_item(line: str) -> bool:
    """A list item that holds only links into the documentation itself."""
    marker = _LIST_MARKER.match(line)
    if marker is None:
        return False
    rest = _IMAGE.sub(" ", line[marker.end() :])
    links = 0
    for link in _LINK.finditer(rest):
        role = link.group("myst") or link.group("role")
        if role is not None and role.lower().rsplit(":", 1)[-1] not in _LINK_ROLES:
            return False
        url = link.group("url") or link.group("auto") or link.group("rst")
        if url is not None and _SCHEME.match(url.strip()):
            return False  # a web address: a reference, not navigation
        links += 1
    return links > 0 and _WORD.search(_LINK.sub(" ", rest)) is None


def is_badge_line(line: str) -> bool:
    """A line of images only (badges, logos), bare or each inside a link."""
    if _IMAGE.search(line) is None:
        return False
    rest = _LINK.sub(_drop_empty_link, _IMAGE.sub("", line))
    return _WORD.search(rest) is None


def _drop_empty_link(link: re.Match[str]) -> str:
    """A ``[text](url)`` link whose text was only an image goes; others stay."""
    text = link.group("text")
    return link.group(0) if text is None or _WORD.search(text) else " "


def without_front_matter(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """``lines`` without a YAML (``---``) or TOML (``+++``) block at the top.

    Held back at most ``FRONT_MATTER_MAX_LINES`` lines: a block that does not
    close by then, or holds a line that is not ``key: value`` shaped, was a
    rule at the top of the text and is given back whole."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        return
    opener = first[1].strip()
    if first[0] != 1 or opener not in ("---", "+++"):
        yield first
        yield from iterator
        return
    closers = ("---", "...") if opener == "---" else ("+++",)
    shape = _YAML_LINE if opener == "---" else _TOML_LINE
    held = [first]
    for item in iterator:
        held.append(item)
        if item[1].strip() in closers:
            yield from iterator  # the front matter is dropped
            return
        if len(held) > FRONT_MATTER_MAX_LINES or not shape.match(item[1]):
            break
    yield from held
    yield from iterator


# key: value, a list item, an indented continuation, a comment, a blank line
_YAML_LINE = re.compile(r"^(?:[\w\"'.-][^:]*:(?:\s|$)|\s|-(?:\s|$)|#|$)")
# key = value, [table], a continuation, a comment, a blank line
_TOML_LINE = re.compile(r"^(?:[\w\"'.-][^=]*=|\[|\s|#|$)")
