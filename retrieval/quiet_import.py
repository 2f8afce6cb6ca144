"""Import torch, sentence-transformers and chromadb without freezing the window.

They are imported on worker threads, but an import can still stall the GUI
thread: whatever holds the GIL blocks every other Python thread. Measured on
the 2-core VM (a 2 ms ticker thread while another thread imports; longest
gap), importing torch + transformers + chromadb + sentence_transformers:

* 250-330 ms: full (generation 2) garbage collections. An import creates
  ~760k objects that all live for ever, and each full collection walks all of
  them while holding the GIL; they fire every time the heap has grown by a
  quarter. Pausing the collector during the import and then ``gc.freeze()``
  (the objects move to a generation the collector never walks) removes them,
  and keeps later full collections from re-walking torch's module graph.
* 200-300 ms: the dynamic linker relocating ``torch._C`` and libtorch (an
  extension module is ``dlopen``-ed with the GIL held). Calling libc's
  ``dlopen`` through ctypes first releases the GIL while it links; the
  import then finds the library loaded.

What remains is 20-70 ms (the ``torch._C`` initialisation, big module
bodies). Cycles made by any thread while the collector is paused are kept,
not collected (a few KB per import run).
"""

from __future__ import annotations

import _imp
import contextlib
import ctypes
import gc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# An extension module whose linking takes long enough to do off the GIL:
# torch._C pulls in libtorch_cpu (~400 MB of code), 200-300 ms.
TORCH_C = ("torch", "_C")

_lock = threading.Lock()
# One thread at a time imports the heavy backends. Two threads importing
# packages that share dependencies (chromadb and transformers both import
# pydantic) can meet in Python's per-module import locks; the deadlock
# detector then hands one of them a half-initialized module, and its import
# fails ("cannot import name … from partially initialized module"): on 1 of
# 8 starts the warm-up's import and the documents reader's opening of the
# index did, and the window called a healthy index broken. Held across the
# body; re-entrant for nested use on one thread.
_backend_import_lock = threading.RLock()
_paused = 0  # threads inside quiet_imports()
_resume_gc = False  # the collector was on when the first one came in
_prelinked: dict[str, threading.Event] = {}  # set once linked (or given up)


@contextlib.contextmanager
def quiet_imports(prelink: Sequence[tuple[str, str]] = ()) -> Iterator[None]:
    """Run the heavy imports of the body with the collector paused (then frozen),
    after linking the ``prelink`` extension modules ((package, module) pairs,
    such as TORCH_C) off the GIL. Safe from several threads: they take turns."""
    with _backend_import_lock, _paused_collector(prelink):
        yield


@contextlib.contextmanager
def _paused_collector(prelink: Sequence[tuple[str, str]]) -> Iterator[None]:
    global _paused, _resume_gc
    with _lock:
        if _paused == 0:
            _resume_gc = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        prelink_extensions(prelink)
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                # What the imports built lives as long as the process: move it
                # where full collections never walk it.
                gc.freeze()
                if _resume_gc:
                    gc.enable()


def prelink_extensions(extensions: Sequence[tuple[str, str]]) -> None:
    """dlopen these extension modules with the GIL released (POSIX only; a
    failure just leaves the linking to the import)."""
    if os.name != "posix":
        return
    for package, module in extensions:
        name = f"{package}.{module}"
        with _lock:
            linked = _prelinked.get(name)
            first = linked is None
            if first:
                linked = _prelinked[name] = threading.Event()
        assert linked is not None
        if not first:
            # Another thread is linking it. Its import must not start meanwhile:
            # the import's own dlopen would wait for the loader's lock holding
            # the GIL (seen: 263 ms, the warm-up and the indexer together).
            linked.wait()
            continue
        try:
            _prelink(package, module)
        finally:
            linked.set()


def _prelink(package: str, module: str) -> None:
    path = _extension_path(package, module)
    if path is None or f"{package}.{module}" in sys.modules:
        return
    try:
        dlopen = ctypes.CDLL(None).dlopen  # a ctypes call releases the GIL
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        # Python's import lock is held meanwhile: a thread importing some other
        # extension would otherwise wait for the loader's lock inside its own
        # dlopen, holding the GIL (seen in the window: the folder watcher's
        # first import, 205-260 ms). Waiting for the import lock frees the GIL.
        _imp.acquire_lock()
        try:
            # The import's own flags, so its dlopen finds this very handle.
            handle = dlopen(os.fsencode(path), sys.getdlopenflags())
        finally:
            _imp.release_lock()
        if not handle:
            log.info("could not pre-link %s; the import will link it", path)
    except (AttributeError, OSError, TypeError):
        log.info("no dlopen to pre-link %s with", path, exc_info=True)


def _extension_path(package: str, module: str) -> Path | None:
    """Where ``package.module``'s shared library is, without importing ``package``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(folder) / f"{module}{suffix}"
            if candidate.is_file():
                return candidate
    return None
