"""``python -m app``: the window, a command-line subcommand (``ask`` ...), or ``--self-test``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-psn_")]
    # (macOS Finder adds -psn_… to GUI launches.) A path opens the window on it,
    # as a file association or "Open With" does: a .gguf is loaded, a Hugging
    # Face folder is converted. Anything else is a command-line subcommand.
    if args == ["--self-test"]:
        from app.self_test import main as self_test

        return self_test()
    if len(args) == 1 and Path(args[0]).exists():
        from app.application import run_gui

        return run_gui(open_path=Path(args[0]))
    if args:
        from app.cli import main as cli_main

        return cli_main(args)
    from app.application import run_gui

    return run_gui()


if __name__ == "__main__":
    sys.exit(main())
