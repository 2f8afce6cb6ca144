"""Removing the characters a reader never sees: control codes and zero-width marks.

MiniLM's tokenizer drops NUL and the other control characters, zero-width
spaces, byte-order marks and U+FFFD, so they count as 0 tokens: a chunker that
measures chunks in tokens alone lets one chunk swallow a whole run of them (a
16 MB NUL tail once became one 16 MB chunk after 103 s of quadratic work).
They carry nothing for search or for a cited passage either, so they are
taken out before chunking, in one linear regex pass per block of text:

- terminal colour codes (ANSI escape sequences, common in logs) are removed;
- a run of other control characters (C0 but tab and line breaks, DEL, C1)
  becomes one space: "col1\\x00col2" stays two words, a megabyte of NULs one space;
- zero-width and bidi-format marks (U+200B, U+FEFF, U+2060…, soft hyphens,
  direction overrides) are removed: they sit inside words, and the word
  without them is what a search is for;
- the zero-width joiner and non-joiner (U+200C/D) spell Persian, Indic
  scripts and emoji sequences, so one of them is kept; a run collapses to one;
- the Hangul fillers U+3164 and U+FFA0, letters that render as nothing and
  are a favourite of text that wants to look empty, are removed;
- a run of U+FFFD (undecodable bytes) collapses to one, which still says
  that something could not be read there.

Line breaks (\\n, and \\r where the caller still splits lines on it) and tabs
are kept, so line numbers and code indentation do not move.
"""

from __future__ import annotations

import re

# C0 controls but \t \n \r, DEL, C1 controls.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# Format (Cf) characters without a visible form, but the joiners and the
# Arabic/Syriac signs that do render (U+0600-0605, U+06DD, U+070F, U+08E2).
_ZERO_WIDTH = (
    "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\u3164\uffa0"  # Hangul fillers: letters, but blank
)
# ESC [ parameters intermediates final: colours, cursor moves.
_ANSI_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_CONTROL_RUN_KEEP_CR = re.compile(f"[{_CONTROLS}]+")
_CONTROL_RUN = re.compile(f"[{_CONTROLS}\r]+")
_ZERO_WIDTH_RUN = re.compile(f"[{_ZERO_WIDTH}]+")
_JOINER_RUN = re.compile("([\u200c\u200d])[\u200c\u200d]+")
_REPLACEMENT_RUN = re.compile("\ufffd{2,}")
# One search for any of them: most text has none, and then nothing is copied.
_ANY_KEEP_CR = re.compile(f"[{_CONTROLS}{_ZERO_WIDTH}]|[\u200c\u200d]{{2}}|\ufffd{{2}}")
_ANY = re.compile(f"[{_CONTROLS}\r{_ZERO_WIDTH}]|[\u200c\u200d]{{2}}|\ufffd{{2}}")


def strip_invisible(text: str, *, keep_cr: bool = False) -> str:
    """``text`` without invisible characters (see the module docstring).

    ``keep_cr``: leave carriage returns for a caller that still splits lines
    on them (the text reader); otherwise a stray \\r becomes a space.
    Idempotent, and linear in ``len(text)``.
    """
    if (_ANY_KEEP_CR if keep_cr else _ANY).search(text) is None:
        return text
    text = _ANSI_SEQUENCE.sub("", text)
    text = (_CONTROL_RUN_KEEP_CR if keep_cr else _CONTROL_RUN).sub(" ", text)
    text = _ZERO_WIDTH_RUN.sub("", text)
    text = _JOINER_RUN.sub(r"\1", text)
    return _REPLACEMENT_RUN.sub("\ufffd", text)
