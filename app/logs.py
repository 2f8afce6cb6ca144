"""Logging to a rotating file in the log folder; nothing on the terminal
except warnings when asked (the CLI's stdout is the answer)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_MAX_BYTES = 2_000_000
LOG_BACKUPS = 3


def configure_logging(log_file: Path, *, verbose: bool = False) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_footnote", False) for h in root.handlers):
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError:
        handler = logging.NullHandler()  # an unwritable log folder must not stop the app
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    handler._footnote = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # llama.cpp's own chatter is DEBUG; keep the file readable.
    logging.getLogger("footnote.llama_cpp").setLevel(logging.DEBUG if verbose else logging.WARNING)
