"""Identifiers in text: the words a person types exactly and expects found exactly.

Command-line options (``--cid``, ``-v``), code names (``snake_case``,
``CamelCase``, ``dotted.names``, ``func()``), versions (``3.11.2``, ``v0.3``),
error codes (``E1101``, ``ENOSPC``, ``404``) and file names
(``settings.json``, ``.gitignore``). SQLite's ``unicode61`` tokenizer splits
most of them (``--cid`` becomes ``cid``, ``snake_case`` becomes ``snake`` and
``case``, ``3.11.2`` becomes three numbers), so BM25 over words cannot tell the
passage that defines ``--cid`` from any that mentions "cid". The lexical index
keeps these whole in a second FTS5 table (see :mod:`retrieval.lexical_index`),
and the query's identifiers are looked up there.

Plain lower-case words are never identifiers (unless called: ``parse()``), so
prose adds almost nothing to that table. Everything is lower-cased: people
type ``enospc`` or ``Settings.json`` and mean the same thing.
"""

from __future__ import annotations

import re

# A candidate: optional leading dashes or dot, then runs of word characters
# joined by single dots or dashes, never ending on one (sentence ends stay
# out; ``3.4.5...3.4.6`` is two versions). The look-behind keeps the middle
# of a word (``e-mail``) from starting one.
_CANDIDATE = re.compile(r"(?<![\w\-])(?<!\w\.)(?:--?|\.)?\w+(?:[.\-]\w+)*")
_VERSION = re.compile(r"v?\d+(?:\.\d+)+[a-z0-9]*")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
_ALLCAPS_MIN_LETTERS = 4  # README, ENOSPC, SIGTERM; not "I", "OK", "US"
_NUMBER_MIN_DIGITS = 3  # 404, 1101, 2024; not "1" or "10"
MAX_IDENTIFIER_CHARS = 64  # a longer run is a hash or a URL, not something typed


def _identifier(token: str, called: bool) -> str | None:  # noqa: PLR0911, PLR0912
    """The normalized identifier ``token`` is, or None for a plain word."""
    if len(token) > MAX_IDENTIFIER_CHARS:
        return None
    if token.startswith("-"):
        # an option: --cid, -v, --dry-run (the look-behind already made sure
        # the dash does not sit inside a word)
        return token.lower() if token.lstrip("-")[:1].isalpha() else None
    if token.startswith("."):
        if token[1:2].isalpha():
            return token.lower()  # .gitignore, .env
        return _identifier(token[1:], called)  # "...3.4.6": the dot ends an ellipsis
    lower = token.lower()
    if _VERSION.fullmatch(lower):
        return lower[1:] if lower.startswith("v") else lower  # v0.3 == 0.3
    if "." in token:
        parts = token.split(".")
        if all(len(p) <= 1 for p in parts):
            return None  # e.g, i.e, U.S: abbreviations, not names
        return lower  # settings.json, os.path.join, example.com
    if "_" in token.strip("_") or token.startswith("__"):
        return lower  # snake_case, __init__
    if "-" in token:
        return lower  # dry-run, utf-8, x86-64, pre-commit
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    if has_digit and has_alpha:
        return lower  # E1101, sha256, x86, py3
    if has_digit:
        return lower if len(token) >= _NUMBER_MIN_DIGITS else None  # 404, 2024
    if token.isupper() and len(token) >= _ALLCAPS_MIN_LETTERS:
        return lower  # ENOSPC, SIGTERM, README
    if _CAMEL.search(token):
        return lower  # DocumentLibrary, getItem, PySide
    if called:
        return lower  # parse(): a function, even with a plain name
    return None


def identifiers(text: str) -> list[str]:
    """Every identifier in ``text``, normalized, in order, repeats kept (BM25
    counts them)."""
    found: list[str] = []
    for match in _CANDIDATE.finditer(text):
        token = match.group()
        called = text.startswith("(", match.end())
        if not called and token.islower() and token.isalpha():
            continue  # a plain word, most of any text: skip the rules (3x faster)
        ident = _identifier(token, called)
        if ident is not None:
            found.append(ident)
    return found


def query_identifiers(text: str) -> list[str]:
    """The distinct identifiers of a question, first occurrence first."""
    return list(dict.fromkeys(identifiers(text)))
