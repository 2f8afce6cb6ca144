"""``footnote --self-test`` from the source tree, as a user (or the .deb's
post-install check) runs it: a separate process, offscreen, no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_answers_and_indexes_then_exits_0(tmp_path: Path) -> None:
    user_home = tmp_path / "user-footnote-home"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FOOTNOTE_HOME": str(user_home)}
    env.pop("DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "app", "--self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith("Footnote self-test passed"), lines[0]
    assert "answered through llama.cpp" in lines[0]
    assert "indexed and found" in lines[0]
    # It ran in a temporary home of its own: the user's data is never touched.
    assert not user_home.exists()


def test_launcher_runs_multiprocessing_helpers_as_python() -> None:
    """In the installed app sys.executable is the `footnote` binary;
    multiprocessing's forkserver and spawn start it as `exe [flags] -c CODE`.
    The launcher must run CODE instead of the app's command line."""
    launcher = ROOT / "packaging" / "footnote" / "__main__.py"
    code = "import sys; print('ran', sys.argv)"
    done = subprocess.run(
        [sys.executable, str(launcher), "-B", "-s", "-X", "utf8", "-c", code, "--extra"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran ['-c', '--extra']"
