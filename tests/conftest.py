"""Shared fixtures: a sandboxed FOOTNOTE_HOME, loopback-only networking
(connects and name lookups),
leftover-thread detection, and tiny Phi-3 GGUF files written with ``gguf``."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.synthetic_model import write_phi3_gguf

# ----------------------------------------------------------------- no internet

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
_real_gethostbyname_ex = socket.gethostbyname_ex


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise OSError(f"tests may not reach the network (tried {address!r})")
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise OSError(f"tests may not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


def _is_loopback_name(host: object) -> bool:
    """Whether looking ``host`` up stays on this machine: no host (a port to
    bind), "localhost" (the hosts file answers it), or a numeric loopback
    address. Any other name may ask a DNS server, which is the internet too:
    a lookup leaks the name even if no connect follows. ("localhost." and
    "x.localhost" are left out: resolvers may send those to DNS.)"""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", errors="replace")
    if not isinstance(host, str):
        return False
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    try:  # the legacy numeric forms getaddrinfo parses itself: "2130706433", "0x7f.1"
        return ipaddress.IPv4Address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False


def _guarded_getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback_name(host):
        raise OSError(f"tests may not look up names on the network (tried {host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


def _guarded_gethostbyname(host: str) -> str:
    if not _is_loopback_name(host):
        raise OSError(f"tests may not look up names on the network (tried {host!r})")
    return _real_gethostbyname(host)


def _guarded_gethostbyname_ex(host: str) -> tuple[str, list[str], list[str]]:
    if not _is_loopback_name(host):
        raise OSError(f"tests may not look up names on the network (tried {host!r})")
    return _real_gethostbyname_ex(host)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    # Name lookups too: they reach a DNS server before any connect is tried.
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _guarded_gethostbyname
    socket.gethostbyname_ex = _guarded_gethostbyname_ex
    # transformers' progress bars (tests build HF checkpoints) would start
    # tqdm's never-ending monitor thread; switch it off and keep output quiet.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import tqdm

        tqdm.tqdm.monitor_interval = 0
    except ImportError:
        pass


# ----------------------------------------------------------------- sandbox


@pytest.fixture(autouse=True)
def footnote_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "footnote-home"
    monkeypatch.setenv("FOOTNOTE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """A test must stop every thread it started: Python's and Qt's (a QThread
    still running when its object goes away aborts the whole process)."""
    before = set(threading.enumerate())
    qthreads: list[Any] = []
    restore = _record_started_qthreads(qthreads)
    try:
        yield
    finally:
        restore()
    deadline = time.monotonic() + 5.0
    running = []
    for qthread in qthreads:
        try:
            remaining_ms = max(int(1000 * (deadline - time.monotonic())), 0)
            if not qthread.wait(remaining_ms):
                running.append(qthread)
        except RuntimeError:  # its C++ object is gone, so it had stopped
            pass
    qthreads.clear()
    # Kept referenced: freeing a running QThread would abort the test run.
    _RUNNING_QTHREADS.extend(running)
    names = [t.objectName() or repr(t) for t in running]
    assert not running, f"QThreads left running after the test: {names}"
    deadline = time.monotonic() + 5.0
    while True:
        # _DummyThread: Python's record of a thread it did not start (Qt's);
        # those are the QThreads checked above.
        extra = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
        ]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left running after the test: {[t.name for t in extra]}"


_RUNNING_QTHREADS: list[Any] = []


def _record_started_qthreads(started: list[Any]) -> Callable[[], None]:
    """Keep every QThread a test starts in ``started``; returns the undo.
    (Python cannot enumerate Qt's threads: it lists one only once it has run
    Python code, and never forgets it.)"""
    try:
        from PySide6.QtCore import QThread
    except ImportError:
        return lambda: None
    original = QThread.start

    def start(self: Any, *args: Any) -> None:
        started.append(self)
        original(self, *args)

    QThread.start = start  # type: ignore[method-assign]

    def restore() -> None:
        QThread.start = original  # type: ignore[method-assign]

    return restore


# ----------------------------------------------------------------- models


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """A child started in this test gets Ctrl+C as from a terminal. Started
    from a background job (``cmd &`` in a script, some CI runners), the test
    run inherits SIGINT *ignored*, and so would every child it starts (an
    ignored signal stays ignored across exec); a Python handler does not."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(models_dir: Path) -> Path:
    """A Phi-3 GGUF whose greedy answer to anything is SCRIPTED_ANSWER."""
    return write_phi3_gguf(models_dir / "tiny-phi3.gguf")


@pytest.fixture(scope="session")
def looping_model(models_dir: Path) -> Path:
    """A Phi-3 GGUF that never ends its answer by itself."""
    return write_phi3_gguf(models_dir / "looping-phi3.gguf", loop=True, name="Looping tiny Phi-3")


@pytest.fixture(scope="session")
def quantized_model(tiny_model: Path, models_dir: Path) -> Path:
    """The tiny model quantized to Q8_0 by llama.cpp's quantizer: exercises the
    quantized matmul kernels (where CPU-feature bugs such as AMX show up)."""
    from engine.quantize import quantize_gguf

    return quantize_gguf(tiny_model, models_dir / "tiny-phi3-q8_0.gguf", "q8_0")


def pytest_unconfigure(config: pytest.Config) -> None:
    # llama-cpp-python opens os.devnull twice at import and never closes it,
    # which prints ResourceWarnings at interpreter exit. Close them once the
    # session is over (no llama.cpp call happens after this).
    import sys

    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()
