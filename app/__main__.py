"""``python -m app``: the window, a command-line subcommand (``ask`` ...), or ``--self-test``."""

from __future__ import annotations

import os
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
    if args[:1] == ["search"]:
        # A search multiplies a dozen-token query through six small layers
        # (retrieval.query_encoder): one thread does it in ~25 ms, while
        # OpenBLAS's threads, spinning on cores other programs keep busy, took
        # 0.3-0.9 s on the 2-core VM. numpy's OpenBLAS reads this once, when
        # numpy is first imported, so it is set before anything imports it.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from app.cli.search import main as search_main

        return search_main(args)
    if args:
        from app.cli.commands import main as cli_main

        return cli_main(args)
    from app.application import run_gui

    return run_gui()


if __name__ == "__main__":
    sys.exit(main())
