from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from engine.synthetic_model import SCRIPTED_ANSWER


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FOOTNOTE_HOME": str(home)},
        timeout=120,
        check=False,
    )


def test_ask_streams_the_answer_to_stdout(tiny_model: Path, footnote_home: Path) -> None:
    result = run_cli("ask", "--model", str(tiny_model), "hi", home=footnote_home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCRIPTED_ANSWER + "\n"
    # llama.cpp's log goes to the log file, not the terminal. (ggml's Vulkan
    # backend prints its device list to stderr itself, past any log hook.)
    assert [line for line in result.stderr.splitlines() if not line.startswith("ggml_")] == []


def test_ask_never_imports_qt(tiny_model: Path, footnote_home: Path) -> None:
    code = (
        "import sys, app.cli.commands as cli\n"
        f"rc = cli.main(['ask', '--model', {str(tiny_model)!r}, 'hi'])\n"
        "assert 'PySide6' not in sys.modules, 'the CLI imported Qt'\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "FOOTNOTE_HOME": str(footnote_home)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_corrupt_model_exits_nonzero_with_one_readable_line(
    tmp_path: Path, footnote_home: Path
) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 20)
    result = run_cli("ask", "--model", str(bad), "hi", home=footnote_home)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.match(r"footnote: error: model\.gguf is (damaged or incomplete|truncated)", lines[0])
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_no_model_configured_says_how_to_choose_one(footnote_home: Path) -> None:
    result = run_cli("ask", "hi", home=footnote_home)
    assert result.returncode == 1
    assert "Pass --model FILE.gguf" in result.stderr


def test_usage_error_exits_2(footnote_home: Path) -> None:
    result = run_cli("ask", home=footnote_home)
    assert result.returncode == 2


def test_models_inspect_describes_the_file(tiny_model: Path, footnote_home: Path) -> None:
    result = run_cli("models", "inspect", str(tiny_model), home=footnote_home)
    assert result.returncode == 0, result.stderr
    assert re.search(r"architecture\s+phi3", result.stdout)
    assert re.search(r"quantization\s+F32", result.stdout)
    assert re.search(r"context\s+4,096 tokens", result.stdout)
    assert re.search(r"chat template\s+yes", result.stdout)


def test_models_inspect_warns_about_missing_chat_tokens(
    tmp_path: Path, footnote_home: Path
) -> None:
    from engine.synthetic_model import write_phi3_gguf

    broken = write_phi3_gguf(tmp_path / "no-chat.gguf", weights="random", chat_tokens=False)
    result = run_cli("models", "inspect", str(broken), home=footnote_home)
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"chat tokens\s+MISSING <\|system\|> <\|end\|> <\|user\|> <\|assistant\|>", result.stdout
    )
    assert "warning: no-chat.gguf has no chat tokens" in result.stderr


def test_models_inspect_explains_a_bad_file(tmp_path: Path, footnote_home: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    result = run_cli("models", "inspect", str(bad), home=footnote_home)
    assert result.returncode == 1
    assert "notes.gguf is not a GGUF model file" in result.stderr


def test_models_download_from_a_url_then_list_and_ask(
    tiny_model: Path, footnote_home: Path
) -> None:
    import hashlib

    from tests.http_server import serve_file

    payload = tiny_model.read_bytes()
    with serve_file(payload, "Phi-3-tiny.gguf") as (url, _):
        result = run_cli(
            "models",
            "download",
            url,
            "--sha256",
            hashlib.sha256(payload).hexdigest(),
            home=footnote_home,
        )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == footnote_home.resolve() / "models" / "Phi-3-tiny.gguf"
    assert "100.0%" in result.stderr
    listed = run_cli("models", "list", home=footnote_home)
    assert "Phi-3-tiny.gguf  F32" in listed.stdout
    answer = run_cli("ask", "--model", str(path), "hi", home=footnote_home)
    assert answer.stdout == SCRIPTED_ANSWER + "\n"


def test_models_download_with_a_wrong_checksum_keeps_nothing(
    tiny_model: Path, footnote_home: Path
) -> None:
    from tests.http_server import serve_file

    with serve_file(tiny_model.read_bytes(), "bad.gguf") as (url, _):
        result = run_cli("models", "download", url, "--sha256", "0" * 64, home=footnote_home)
    assert result.returncode == 1
    assert "arrived damaged" in result.stderr
    assert list((footnote_home / "models").iterdir()) == []


def test_models_download_unknown_name(footnote_home: Path) -> None:
    result = run_cli("models", "download", "phi-9-giga", home=footnote_home)
    assert result.returncode == 1
    assert "no catalog model called “phi-9-giga”" in result.stderr


def test_convert_a_hugging_face_folder_from_the_cli(tmp_path: Path, footnote_home: Path) -> None:
    from tests.hf_checkpoint import build_phi3_checkpoint

    folder = build_phi3_checkpoint(tmp_path / "Phi-3-tiny", seed=4)
    out = tmp_path / "phi3-q4.gguf"
    result = run_cli(
        "convert", str(folder), "-o", str(out), "--quant", "q4_k_m", home=footnote_home
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "Quantizing: 100%" in result.stderr
    inspected = run_cli("models", "inspect", str(out), home=footnote_home)
    assert re.search(r"quantization\s+Q4_K_M", inspected.stdout)


def test_convert_refuses_phi3_small_with_one_line(tmp_path: Path, footnote_home: Path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["Phi3SmallForCausalLM"]}')
    result = run_cli("convert", str(tmp_path), "-o", str(tmp_path / "x.gguf"), home=footnote_home)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "block-sparse attention" in result.stderr
