"""llama.cpp's own ``llama-bench``, built from the sources our wheel was built from.

The reference for ``bench.engine`` must be the same llama.cpp, with the same
compiler flags, as the llama-cpp-python in ``.venv``: otherwise a ratio
measures two builds, not our wrapper. llama-cpp-python's sdist vendors exactly
those sources (``vendor/llama.cpp``), so we download the sdist of the installed
version with pip, configure it with the flags ``./dev`` passes (the portable
AVX2 set on Linux x86-64) and build only the ``llama-bench`` target, once, into
``~/.cache/footnote-dev/llama-bench/<version>/``.

``FOOTNOTE_LLAMA_CPP_SRC=/path/to/vendor/llama.cpp`` skips the download (an
unpacked sdist already on disk).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# The flags ./dev's default_cmake_args gives llama-cpp-python on Linux x86-64
# (keep in step): a portable AVX2 build, never -march=native (AMX SIGILL on VMs).
LINUX_X86_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
)
COMMON_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary in the cache folder
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
)


def llama_cpp_python_version() -> str:
    return metadata.version("llama-cpp-python")


def cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "footnote-dev" / "llama-bench" / version


def cmake_args() -> list[str]:
    """CMAKE_ARGS from the environment if set (as ./dev honours), else ./dev's defaults."""
    if "CMAKE_ARGS" in os.environ:
        return os.environ["CMAKE_ARGS"].split()
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        return list(LINUX_X86_CMAKE_ARGS)
    return []


def ensure_llama_bench() -> Path:
    """The path of a built ``llama-bench`` for the installed llama-cpp-python."""
    version = llama_cpp_python_version()
    folder = cache_dir(version)
    binary = folder / "bin" / "llama-bench"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    source = _llama_cpp_source(version, folder)
    build = folder / "build"
    jobs = str(os.cpu_count() or 2)
    print(f"building llama-bench from llama-cpp-python {version}'s llama.cpp…", flush=True)
    # nice: the build is long and the machine may be shared.
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    subprocess.run(
        [*nice, "cmake", "-S", str(source), "-B", str(build), *COMMON_CMAKE_ARGS, *cmake_args()],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [*nice, "cmake", "--build", str(build), "--target", "llama-bench", "-j", jobs],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    built = build / "bin" / "llama-bench"
    binary.parent.mkdir(exist_ok=True)
    shutil.copy2(built, binary)
    (folder / "cmake_args.txt").write_text(" ".join([*COMMON_CMAKE_ARGS, *cmake_args()]) + "\n")
    return binary


def _llama_cpp_source(version: str, folder: Path) -> Path:
    given = os.environ.get("FOOTNOTE_LLAMA_CPP_SRC")
    if given:
        return Path(given)
    unpacked = folder / "src" / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if unpacked.exists():
        return unpacked
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                tmp,
                f"llama-cpp-python=={version}",
            ],
            check=True,
        )
        archive = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(folder / "src", filter="data")
    return unpacked


WARMUP_PROMPT_TOKENS = 32


@dataclass(frozen=True)
class BenchSettings:
    """What both sides must share for a fair ratio."""

    threads: int
    batch_tokens: int  # n_batch
    ubatch_tokens: int  # n_ubatch
    flash_attn: bool
    kv_type: str = "f16"  # llama-bench's -ctk/-ctv name
    mmap: bool = False  # llama-bench's -lm mmap / none: as engine.model loads


@dataclass(frozen=True)
class BenchResult:
    test: str  # "pp512", "tg128", "tg128 @ d3000"
    n_prompt: int
    n_gen: int
    n_depth: int
    tokens_per_s: float
    stddev_tokens_per_s: float
    samples_tokens_per_s: tuple[float, ...]


def run_llama_bench(
    binary: Path,
    model: Path,
    settings: BenchSettings,
    *,
    prompt_tokens: int = 0,
    gen_tokens: int = 0,
    depth_tokens: int = 0,
    repetitions: int = 1,
) -> BenchResult:
    """One llama-bench test (pp, tg, or tg at a depth), parsed from its JSON.

    Each call is a fresh process, whose first graph pays the page faults of
    mapping the weights (~0.5 s here) and buffer setup. A tg test keeps
    llama-bench's warmup (one token). A pp test does not (its warmup repeats
    the whole prompt: minutes for pp3000 on 2 cores); instead a short pp
    test runs first in the same process and absorbs that cost.
    """
    prompts = f"{WARMUP_PROMPT_TOKENS},{prompt_tokens}" if prompt_tokens else "0"
    command = [
        str(binary),
        "-m",
        str(model),
        "-p",
        prompts,
        "-n",
        str(gen_tokens),
        "-d",
        str(depth_tokens),
        "-r",
        str(repetitions),
        "-t",
        str(settings.threads),
        "-b",
        str(settings.batch_tokens),
        "-ub",
        str(settings.ubatch_tokens),
        "-fa",
        "1" if settings.flash_attn else "0",
        "-ctk",
        settings.kv_type,
        "-ctv",
        settings.kv_type,
        "-ngl",
        "0",
        "-lm",
        "mmap" if settings.mmap else "none",
        *(["--no-warmup"] if prompt_tokens else []),
        "-o",
        "json",
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    rows = json.loads(done.stdout)
    row = rows[-1]  # the warm-up pp test, if any, comes first
    n_prompt, n_gen, n_depth = int(row["n_prompt"]), int(row["n_gen"]), int(row["n_depth"])
    name = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
    if n_depth:
        name += f" @ d{n_depth}"
    return BenchResult(
        test=name,
        n_prompt=n_prompt,
        n_gen=n_gen,
        n_depth=n_depth,
        tokens_per_s=float(row["avg_ts"]),
        stddev_tokens_per_s=float(row["stddev_ts"]),
        samples_tokens_per_s=tuple(float(s) for s in row.get("samples_ts", [])),
    )


if __name__ == "__main__":
    print(ensure_llama_bench())
