"""./dev run names a missing system library in one line instead of Qt's abort."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.system_libraries import advice, missing_window_libraries, not_found, qt_dir, uses_x11

# What ldd printed on the fresh Debian of issue #18 (abridged).
FRESH_DEBIAN_LDD = """\
/venv/PySide6/Qt/plugins/platforms/libqxcb.so:
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
/venv/PySide6/Qt/lib/libQt6XcbQpa.so.6:
\tlibxcb-icccm.so.4 => not found
"""


def test_the_missing_libraries_and_their_packages_are_named_in_one_line() -> None:
    missing = not_found(FRESH_DEBIAN_LDD)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    line = advice(missing)
    assert "\n" not in line
    assert line.endswith("sudo apt install libxcb-icccm4 libxcb-keysyms1.")
    assert "PySide6 is incomplete" in advice(["libQt6Gui.so.6"])
    assert "apt-file search libfoo.so.3" in advice(["libfoo.so.3"])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="ldd")
def test_a_plugin_whose_libraries_are_missing_is_reported(tmp_path: Path) -> None:
    """The real xcb plugin, copied where its Qt libraries cannot be found."""
    qt = qt_dir()
    assert qt is not None
    (tmp_path / "plugins" / "platforms").mkdir(parents=True)
    shutil.copy(qt / "plugins" / "platforms" / "libqxcb.so", tmp_path / "plugins" / "platforms")
    assert "libQt6XcbQpa.so.6" in missing_window_libraries(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="ldd")
def test_the_check_exits_quietly_when_all_are_there_and_says_one_line_otherwise() -> None:
    missing = missing_window_libraries()
    done = subprocess.run(
        [sys.executable, "-m", "app.system_libraries"],
        capture_output=True,
        text=True,
        check=False,
        env={"QT_QPA_PLATFORM": "xcb", "PATH": "/usr/bin:/bin"},
    )
    if missing:
        assert done.returncode == 1 and done.stderr.count("\n") == 1
    else:
        assert (done.returncode, done.stderr) == (0, "")


def test_only_an_x11_window_is_checked() -> None:
    assert uses_x11({"QT_QPA_PLATFORM": "xcb"})
    assert not uses_x11({"QT_QPA_PLATFORM": "offscreen"})
    assert not uses_x11({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"})
    assert uses_x11({"DISPLAY": ":0"})
