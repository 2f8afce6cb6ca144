"""Route llama.cpp's C-level log into Python logging, and keep recent errors.

llama.cpp explains failures only in its log ("unknown model architecture:
'x'"), while llama-cpp-python raises a bare ``ValueError("Failed to load model
from file")``. Capturing the log lets us tell the user *why*. It also keeps
llama.cpp from printing to the terminal, so ``python -m app ask`` output stays
clean.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque

log = logging.getLogger("footnote.llama_cpp")

# ggml_log_level: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continuation).
_LEVELS = {
    0: logging.CRITICAL,
    1: logging.DEBUG,
    2: logging.DEBUG,
    3: logging.WARNING,
    4: logging.ERROR,
}
_ERROR = 4
_CONT = 5

_lock = threading.Lock()
_errors: deque[tuple[int, str]] = deque(maxlen=64)  # (sequence number, message)
_error_count = 0
_installed: list[object] = []  # keeps the ctypes callback alive
_last_level = 2


def install() -> None:
    """Install the callback once per process (idempotent)."""
    import llama_cpp

    with _lock:
        if _installed:
            return

        @llama_cpp.llama_log_callback
        def _callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
            global _last_level, _error_count
            if level == _CONT:
                level = _last_level
            _last_level = level
            message = text.decode("utf-8", errors="replace").rstrip("\n")
            if not message:
                return
            if level == _ERROR:
                with _lock:
                    _errors.append((_error_count, message))
                    _error_count += 1
            log.log(_LEVELS.get(level, logging.DEBUG), "%s", message)

        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        _installed.append(_callback)


def error_mark() -> int:
    """A position in the error log; pass it to :func:`errors_since`."""
    with _lock:
        return _error_count


def errors_since(mark: int) -> list[str]:
    """llama.cpp errors logged since ``mark`` (the newest 64 at most)."""
    with _lock:
        return [message for seq, message in _errors if seq >= mark]
