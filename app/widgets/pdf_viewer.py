"""Opening a PDF at a page on Linux, where ``xdg-open`` cannot.

``xdg-open`` takes a file and nothing else (a ``file://…#page=4`` URL is a
file that does not exist), so to open a cited page Footnote asks which
program opens PDFs (``xdg-mime query default application/pdf``), reads that
program's ``.desktop`` entry, and, when it is a viewer whose page option is
known, starts it with that option. Any other viewer is opened the ordinary
way, and the caller says the page could not be chosen.

Nothing here imports Qt: the command is built here and launched by the caller,
so tests check the commands without starting real viewers.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

XDG_MIME_TIMEOUT_S = 2.0
PDF_MIME = "application/pdf"

# How each viewer is told the page (1-based). Names are the executable's
# basename, as a .desktop entry's Exec= starts it.
_PAGE_ARGS: dict[str, Callable[[str, int], list[str]]] = {
    "evince": lambda path, page: [f"--page-index={page}", path],
    "atril": lambda path, page: [f"--page-index={page}", path],  # MATE's evince
    "xreader": lambda path, page: [f"--page-index={page}", path],  # Cinnamon's evince
    "okular": lambda path, page: ["--page", str(page), path],
    "zathura": lambda path, page: [f"--page={page}", path],
}
# Browsers' built-in PDF viewers read the page from the URL's fragment.
_BROWSERS = frozenset(
    {
        "firefox",
        "firefox-esr",
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "microsoft-edge",
        "brave-browser",
        "vivaldi",
    }
)
# Wrappers whose first argument is the real program.
_LAUNCHERS = frozenset({"env", "nice", "ionice"})


@dataclass(frozen=True)
class Viewer:
    """The default PDF handler: its .desktop id, name and Exec= words."""

    desktop_id: str
    name: str
    exec_words: tuple[str, ...]

    @property
    def program(self) -> str:
        """The executable's basename (``/usr/bin/evince`` → ``evince``)."""
        words = list(self.exec_words)
        while words and (Path(words[0]).name in _LAUNCHERS or "=" in words[0]):
            words.pop(0)
        return Path(words[0]).name if words else ""


def page_command(viewer: Viewer, path: str, page: int) -> list[str] | None:
    """The command that opens ``path`` at ``page`` (1-based) in ``viewer``;
    None when this viewer's page option is not known (a Flatpak, an unknown
    program): then the PDF is opened normally."""
    program = viewer.program
    words = list(viewer.exec_words)
    # The program and what precedes it (env VAR=… evince): keep, drop field codes.
    head: list[str] = []
    for word in words:
        head.append(word)
        if Path(word).name == program:
            break
    if program in _PAGE_ARGS:
        return [*head, *_PAGE_ARGS[program](path, page)]
    if program in _BROWSERS:
        return [*head, f"{Path(path).resolve().as_uri()}#page={page}"]
    return None


def parse_desktop_entry(text: str, desktop_id: str) -> Viewer | None:
    """Name= and Exec= of a .desktop file's [Desktop Entry] group."""
    values: dict[str, str] = {}
    in_entry = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_entry = line == "[Desktop Entry]"
            continue
        if in_entry and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
    exec_line = values.get("Exec", "")
    if not exec_line:
        return None
    try:
        words = shlex.split(exec_line)
    except ValueError:
        return None
    # Field codes (%f %U …) are where the file goes: the page command adds it.
    words = [w for w in words if not (len(w) == 2 and w.startswith("%"))]
    return Viewer(desktop_id, values.get("Name", desktop_id), tuple(words))


def application_dirs(environ: dict[str, str] | None = None) -> list[Path]:
    """Where .desktop files live, in the XDG order (the user's first)."""
    env = os.environ if environ is None else environ
    home = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/share")
    dirs = [home, *(env.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")]
    return [Path(d) / "applications" for d in dirs if d]


def find_desktop_file(desktop_id: str, dirs: Sequence[Path]) -> Path | None:
    """``org.kde.okular.desktop`` in one of ``dirs`` (or ``kde4-okular.desktop``
    as ``kde4/okular.desktop``, the spec's prefix-to-folder rule)."""
    for folder in dirs:
        candidate = folder / desktop_id
        if candidate.is_file():
            return candidate
        if "-" in desktop_id:
            prefix, _, rest = desktop_id.partition("-")
            nested = folder / prefix / rest
            if nested.is_file():
                return nested
    return None


def default_pdf_viewer(
    run: Callable[[list[str]], str] | None = None, dirs: Sequence[Path] | None = None
) -> Viewer | None:
    """The desktop's default PDF handler, or None where that cannot be found
    (no xdg-utils, no default set, a .desktop file that cannot be read)."""
    run = run or _run
    try:
        desktop_id = run(["xdg-mime", "query", "default", PDF_MIME]).strip().splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no default PDF viewer: %s", exc)
        return None
    if not desktop_id or not desktop_id[0].endswith(".desktop"):
        return None
    path = find_desktop_file(desktop_id[0], application_dirs() if dirs is None else dirs)
    if path is None:
        return None
    try:
        return parse_desktop_entry(path.read_text(encoding="utf-8", errors="replace"), path.name)
    except OSError:
        return None


def _run(command: list[str]) -> str:
    return subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=XDG_MIME_TIMEOUT_S
    ).stdout
