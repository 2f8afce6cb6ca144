"""``footnote`` as installed: the same entry point as ``python -m app``.

In an installed app ``sys.executable`` is this launcher, not a Python
interpreter, yet ``multiprocessing`` starts its helpers (the forkserver that
runs the document parsers, the resource tracker, spawned children) as
``sys.executable [interpreter flags] -c CODE [args]``. Run those as Python
would instead of handing ``-c`` to the app's command line; the interpreter
is already set up exactly like the parent's (same paths, same packages).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Interpreter flags multiprocessing may pass before -c (see
# subprocess._args_from_interpreter_flags); -X and -W take a value.
_FLAGS_WITH_VALUE = {"-X", "-W"}


def interpreter_code(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(code, its sys.argv) when ``argv`` is ``[flags...] -c CODE [args]``."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag = argv[i]
        if flag == "-c":
            if i + 1 >= len(argv):
                return None
            return argv[i + 1], ["-c", *argv[i + 2 :]]
        if flag in _FLAGS_WITH_VALUE:
            i += 2
        elif len(flag) >= 2 and flag[1] != "-":  # -B, -s, -E, -I, -O, -OO, -bb ...
            i += 1
        else:
            return None  # a long option is the app's own (--self-test)
    return None


def run() -> int:
    code = interpreter_code(sys.argv[1:])
    if code is None:
        from app.__main__ import main

        return main()
    source, sys.argv = code
    exec(compile(source, "<string>", "exec"), {"__name__": "__main__"})
    return 0


if __name__ == "__main__":
    sys.exit(run())
