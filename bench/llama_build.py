"""Build one of llama.cpp's own tools (``llama-bench``, ``llama-server``) from
the sources our llama-cpp-python was built from.

A reference must be the same llama.cpp, with the same compiler flags, as the
llama-cpp-python in ``.venv``: otherwise a comparison measures two builds,
not our code. llama-cpp-python's sdist vendors exactly those sources
(``vendor/llama.cpp``), so we download the sdist of the installed version
with pip (a build step, like ``./dev setup``; never from a test's own
process), configure it once with the flags ``./dev`` passes (the portable
AVX2 set on Linux x86-64) and build only the target asked for. One build
tree per version serves every tool (ggml is compiled once); each binary is
copied to ``~/.cache/footnote-dev/<tool>/<version>/bin/<tool>``.

``FOOTNOTE_LLAMA_CPP_SRC=/path/to/vendor/llama.cpp`` skips the download (an
unpacked sdist already on disk).

    python -m bench.llama_build llama-server   # prints the binary's path
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    "-DBUILD_SHARED_LIBS=OFF",  # self-contained binaries in the cache folder
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",  # plain HTTP on 127.0.0.1 is all the tests need
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    # The server's web UI: neither built (needs npm) nor fetched from Hugging
    # Face at build time; the API works without it.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
TOOLS = ("llama-bench", "llama-server")


def llama_cpp_python_version() -> str:
    return metadata.version("llama-cpp-python")


def dev_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "footnote-dev"


def tool_path(tool: str, version: str | None = None) -> Path:
    """Where the built ``tool`` lives (it may not be built yet)."""
    version = version or llama_cpp_python_version()
    return dev_cache() / tool / version / "bin" / tool


def cmake_args() -> list[str]:
    """CMAKE_ARGS from the environment if set (as ./dev honours), else ./dev's defaults."""
    if "CMAKE_ARGS" in os.environ:
        return os.environ["CMAKE_ARGS"].split()
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        return list(LINUX_X86_CMAKE_ARGS)
    return []


def ensure_llama_tool(tool: str, *, quiet: bool = False) -> Path:
    """The path of a built ``tool`` for the installed llama-cpp-python,
    building it first if needed (minutes: ~5-8 on 2 cores for the first tool,
    less for the next, which shares the build tree). Safe to call from
    several processes at once (pytest-xdist, a bench beside the tests): the
    build holds a file lock."""
    if tool not in TOOLS:
        raise ValueError(f"unknown llama.cpp tool {tool!r}; known: {', '.join(TOOLS)}")
    version = llama_cpp_python_version()
    binary = tool_path(tool, version)
    if binary.exists():
        return binary
    root = dev_cache() / "llama-build" / version
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        if binary.exists():  # another process built it while we waited
            return binary
        source = _llama_cpp_source(version, root)
        build = root / "build"
        args = [*COMMON_CMAKE_ARGS, *cmake_args()]
        jobs = str(os.cpu_count() or 2)
        started = time.monotonic()
        if not quiet:
            print(f"building {tool} from llama-cpp-python {version}'s llama.cpp…", flush=True)
        # nice: the build is long and the machine may be shared.
        nice = ["nice", "-n", "19"] if shutil.which("nice") else []
        out = subprocess.DEVNULL
        subprocess.run(
            [*nice, "cmake", "-S", str(source), "-B", str(build), *args], check=True, stdout=out
        )
        subprocess.run(
            [*nice, "cmake", "--build", str(build), "--target", tool, "-j", jobs],
            check=True,
            stdout=out,
        )
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "bin" / tool, binary)
        seconds = time.monotonic() - started
        (binary.parent.parent / "build.txt").write_text(
            f"cmake args: {' '.join(args)}\nbuild seconds: {seconds:.0f}\n"
        )
        if not quiet:
            print(f"built {binary} in {seconds:.0f} s", flush=True)
    return binary


def phi3_vocabulary() -> Path:
    """Phi-3's tokenizer as a vocabulary-only GGUF, from the llama.cpp sources
    of the installed llama-cpp-python (``models/ggml-vocab-phi-3.gguf``,
    llama.cpp's tokenizer test file; downloaded with the sdist on first use).
    Benchmark models written with it count tokens exactly as Phi-3 does."""
    version = llama_cpp_python_version()
    root = dev_cache() / "llama-build" / version
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        source = _llama_cpp_source(version, root)
    path = source / "models" / "ggml-vocab-phi-3.gguf"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: llama.cpp's sources moved it")
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _llama_cpp_source(version: str, root: Path) -> Path:
    given = os.environ.get("FOOTNOTE_LLAMA_CPP_SRC")
    if given:
        return Path(given)
    unpacked = root / "src" / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
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
            tar.extractall(root / "src", filter="data")
    return unpacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tool", choices=TOOLS)
    print(ensure_llama_tool(parser.parse_args().tool))


if __name__ == "__main__":
    main()
