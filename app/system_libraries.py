"""Which system libraries Qt's X11 window needs and this Linux lacks.

Without one of them Qt prints a page about the "xcb" platform plugin and
aborts; a fresh Debian lacked libxcb-icccm4 and libxcb-keysyms1. ``./dev run``
runs this first (``python -m app.system_libraries``): it asks ``ldd`` which
libraries the plugin cannot find (a few milliseconds, no Qt loaded) and says,
in one line, which packages to install.

No Qt import here: this must work exactly when Qt cannot start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

LDD_TIMEOUT_S = 5.0

# The Debian/Ubuntu package of each library the xcb plugin and Qt's GUI load
# (ldd of PySide6's libqxcb.so and libQt6XcbQpa.so.6; README "System libraries").
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}
# Libraries that come with PySide6 itself, not with the system.
BUNDLED_PREFIXES = ("libQt6", "libpyside6", "libshiboken6", "libicu")
APT_INSTALL_ALL = "sudo apt install " + " ".join(sorted(set(DEBIAN_PACKAGES.values())))


def qt_dir() -> Path | None:
    """PySide6's bundled Qt (``…/site-packages/PySide6/Qt``), found without importing it."""
    spec = find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "Qt"


def not_found(ldd_output: str) -> list[str]:
    """The libraries ldd reports as "not found", in order, once each."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def advice(missing: list[str]) -> str:
    """One line: what is missing and how to install it."""
    packages = sorted({DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES})
    bundled = [name for name in missing if name.startswith(BUNDLED_PREFIXES)]
    others = [n for n in missing if n not in DEBIAN_PACKAGES and n not in bundled]
    steps = []
    if packages:
        steps.append(f"on Debian/Ubuntu: sudo apt install {' '.join(packages)}")
    if bundled:
        steps.append("PySide6 is incomplete: run ./dev setup again")
    if others:
        steps.append(f"find the package with: apt-file search {others[0]}")
    return (
        f"Footnote's window needs {', '.join(missing)}, missing on this computer; "
        + "; ".join(steps)
        + "."
    )


def uses_x11(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether Qt will open its window through X11 (xcb) here."""
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].startswith("xcb")
    return environ.get("XDG_SESSION_TYPE") != "wayland" or not environ.get("WAYLAND_DISPLAY")


def missing_window_libraries(qt: Path | None = None) -> list[str]:
    """The system libraries Qt's X11 plugin cannot find ([] when all are there,
    or when this cannot be checked: not Linux, no ldd, no PySide6)."""
    qt = qt or qt_dir()
    if not sys.platform.startswith("linux") or qt is None:
        return []
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    files = [f for f in files if f.exists()]
    if not files:
        return []
    try:
        result = subprocess.run(
            ["ldd", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=LDD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return not_found(result.stdout)


def main() -> int:
    if not uses_x11():
        return 0
    missing = missing_window_libraries()
    if missing:
        print(advice(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
