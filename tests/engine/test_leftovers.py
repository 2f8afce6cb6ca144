"""What a killed quantization leaves behind: a name no download shares, and
removed at the next start (kill -9, so no cleanup code of ours runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.convert import remove_leftovers
from engine.download import part_path_for
from engine.synthetic_model import ModelShape, write_phi3_gguf

# Big enough that quantizing takes seconds on a laptop (the kill must land
# while llama.cpp is writing), small enough to write in about a second.
SLOW_SHAPE = ModelShape(n_embd=512, n_layer=4, n_head=8, n_ff=2048, n_ctx_train=4096)
APPEAR_TIMEOUT_S = 60.0

QUANTIZE = """
import sys
from pathlib import Path
from engine.quantize import quantize_gguf
quantize_gguf(Path(sys.argv[1]), Path(sys.argv[2]), "q4_k_m")
"""


def test_a_killed_quantization_leaves_no_download_lookalike_and_is_cleaned_up(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    source = write_phi3_gguf(tmp_path / "source-f32.gguf", shape=SLOW_SHAPE, weights="random")
    # The output is named like a catalog download would be.
    target = models / "Phi-3-mini-4k-instruct-q4.gguf"
    proc = subprocess.Popen(
        [sys.executable, "-c", QUANTIZE, str(source), str(target)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        partial = _first_file_in(models, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert not target.exists(), "quantizing finished before the kill; use a bigger SLOW_SHAPE"
    assert partial.exists()
    # A download's part file would be resumed at the next start, not deleted.
    assert partial != part_path_for(target)

    assert remove_leftovers(models) == [partial]
    assert list(models.iterdir()) == []


def _first_file_in(folder: Path, proc: subprocess.Popen[bytes]) -> Path:
    """Wait until the quantizer has created its output file."""
    deadline = time.monotonic() + APPEAR_TIMEOUT_S
    while time.monotonic() < deadline:
        found = list(folder.iterdir())
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the quantizer exited ({proc.returncode}) before writing anything")
        time.sleep(0.005)  # polling a file system condition; nothing to wait on
    pytest.fail(f"the quantizer wrote nothing within {APPEAR_TIMEOUT_S} s")
