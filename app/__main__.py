"""``python -m app``: the window, or a command-line subcommand (``ask`` ...)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-psn_"):  # macOS Finder adds -psn_… to GUI launches
        from app.cli import main as cli_main

        return cli_main(args)
    from app.application import run_gui

    return run_gui()


if __name__ == "__main__":
    sys.exit(main())
