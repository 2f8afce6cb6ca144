"""Photograph the *installed* app (the .deb's /usr/bin/footnote), not the checkout.

    sudo apt-get install ./dist/footnote_*.deb xvfb xdotool imagemagick
    .venv/bin/python packaging/screenshot_installed.py     # writes docs/screenshot-installed.png

Same method as packaging/screenshots.py (Xvfb, xdotool typing like a person,
ImageMagick's ``import``), with the binary the package installed and a
throwaway FOOTNOTE_HOME holding the tiny synthetic Phi-3 as the chosen model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import screenshots  # the helpers of the sibling script (after the path insert)

INSTALLED = Path("/usr/bin/footnote")
QUESTION = "What can you do offline?"


def main() -> None:
    if not INSTALLED.exists():
        raise SystemExit(f"{INSTALLED} is missing: apt-get install ./dist/footnote_*.deb first")
    for tool in ("Xvfb", "xdotool", "import"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install xvfb xdotool imagemagick")
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine.synthetic_model import write_phi3_gguf

    xvfb = subprocess.Popen(
        ["Xvfb", screenshots.DISPLAY, "-screen", "0", screenshots.SCREEN, "-nolisten", "tcp"]
    )
    env = {**os.environ, "DISPLAY": screenshots.DISPLAY, "QT_QPA_PLATFORM": "xcb"}
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            model = write_phi3_gguf(Path(tmp) / "Phi-3-mini-4k-instruct-tiny.gguf")
            paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
            settings = load_settings(paths.settings_file).settings
            settings.remember_model(str(model))
            save_settings(paths.settings_file, settings)
            # Started from / so nothing can come from the checkout.
            app = subprocess.Popen(
                [str(INSTALLED)], cwd="/", env={**env, "FOOTNOTE_HOME": str(home)}
            )
            try:
                window = screenshots.wait_for_window(env)
                width, height = screenshots.WINDOW_SIZE
                screenshots.sh("xdotool", "windowsize", window, str(width), str(height), env=env)
                screenshots.sh("xdotool", "windowmove", window, "0", "0", env=env)
                screenshots.sh("xdotool", "windowfocus", "--sync", window, env=env)
                time.sleep(2.0)  # the model loads on the engine thread
                screenshots.type_and_send(window, QUESTION, env, wait_s=12.0)  # the whole answer
                screenshots.capture(window, "screenshot-installed.png", env)
            finally:
                app.terminate()
                app.wait(30)
    finally:
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()
