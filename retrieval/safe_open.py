"""Opening a user's file without trusting that it is still what the scan found.

Between the scan (``discovery``) and the read, a file can be swapped: for a
named pipe (an ``open`` that waits for a writer forever), for a link to
``/dev/zero`` (a read that never ends) or to a file outside the collection.
So every open of a user file here:

- is non-blocking (``O_NONBLOCK``: opening a pipe returns at once) and, when
  the scan found a plain name (not a link), does not follow a link put in its
  place (``O_NOFOLLOW``);
- is checked on the opened descriptor (``fstat``): a regular file, and the
  same device and inode the scan saw;
- reads at most the size ``fstat`` reported, so even a device that slipped
  through could not be read forever.

``sha256_of`` hashes on a helper thread and waits for it in short steps, so
the caller stops within ``STOP_POLL_S`` when asked, and gives up on a read that
makes no progress for ``READ_STALL_TIMEOUT_S`` (a network drive that stopped
answering): the file is skipped with that reason instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from retrieval.discovery import FoundFile, file_type

READ_STALL_TIMEOUT_S = 30.0  # longest wait for one block of a file being hashed
STOP_POLL_S = 0.1  # how often a waiting reader looks at its stop flag
READ_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Identity:
    """What the scan found at a path: the file a later open must find again."""

    device: int
    inode: int
    via_link: bool  # the path itself is a link (one the scan allowed)

    @classmethod
    def of(cls, found: FoundFile) -> Identity | None:
        """``found``'s identity, or None when the scan did not record one."""
        if not found.device and not found.inode:
            return None
        return cls(found.device, found.inode, found.via_link)


class NotTheScannedFile(OSError):
    """The path no longer names the file the scan found. ``replaced`` is
    True when another regular file (or a link) took its place, as an
    editor's save does: read it again on the next scan rather than call it
    a failure. ``reason`` is a short phrase for a person."""

    def __init__(self, reason: str, *, replaced: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.replaced = replaced


class ReadStopped(Exception):
    """The caller asked to stop while the file was being read."""


class ReadStalled(OSError):
    """A read made no progress for ``READ_STALL_TIMEOUT_S``."""


def open_scanned(path: Path, identity: Identity | None) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` and its ``fstat``, checked against
    ``identity``; raises ``NotTheScannedFile`` (closing it) when it is not a
    regular file or not the one scanned, ``OSError`` when it cannot be opened."""
    flags = os.O_RDONLY
    # Each where the platform has it (Windows has no pipes to block on, and
    # needs O_BINARY so that reads are not translated).
    for name in ("O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY", "O_BINARY"):
        flags |= getattr(os, name, 0)
    no_follow = identity is not None and not identity.via_link
    if no_follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if no_follow and exc.errno == errno.ELOOP:
            raise NotTheScannedFile(
                "replaced by a symbolic link after the scan", replaced=True
            ) from exc
        raise
    try:
        st = os.fstat(fd)
        check(st, identity)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check(st: os.stat_result, identity: Identity | None) -> None:
    """Raise ``NotTheScannedFile`` unless ``st`` is a regular file with ``identity``."""
    if not stat.S_ISREG(st.st_mode):
        raise NotTheScannedFile(
            f"replaced by {file_type(st.st_mode)} after the scan; not read", replaced=False
        )
    if identity is not None and (st.st_dev, st.st_ino) != (identity.device, identity.inode):
        raise NotTheScannedFile("replaced by another file after the scan", replaced=True)


def sha256_of(
    path: Path,
    identity: Identity | None,
    stopped: Callable[[], bool] = lambda: False,
    *,
    stall_timeout_s: float = READ_STALL_TIMEOUT_S,
) -> str:
    """SHA-256 of the file the scan found at ``path`` (hex). Raises
    ``ReadStopped`` once ``stopped()``, ``ReadStalled`` after a read stuck for
    ``stall_timeout_s``, ``NotTheScannedFile`` or ``OSError``."""
    hasher = _Hasher(path, identity)
    thread = threading.Thread(target=hasher.run, name="footnote-hash", daemon=True)
    thread.start()
    while not hasher.done.wait(STOP_POLL_S):
        if stopped():
            hasher.abandon.set()
            thread.join(STOP_POLL_S)  # it stops at its next block
            raise ReadStopped
        if time.monotonic() - hasher.progress_at > stall_timeout_s:
            # The thread is stuck in the kernel; it ends when the read returns.
            hasher.abandon.set()
            raise ReadStalled(
                errno.ETIMEDOUT,
                f"reading it made no progress for {stall_timeout_s:g} s "
                "(a network drive that stopped answering?)",
            )
    thread.join()
    if hasher.error is not None:
        raise hasher.error
    return hasher.digest


class _Hasher:
    def __init__(self, path: Path, identity: Identity | None) -> None:
        self.path = path
        self.identity = identity
        self.done = threading.Event()
        self.abandon = threading.Event()
        self.progress_at = time.monotonic()
        self.digest = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            fd, st = open_scanned(self.path, self.identity)
            with contextlib.closing(_Fd(fd)):
                digest = hashlib.sha256()
                left = st.st_size  # a file that grows meanwhile is read again next scan
                while left > 0 and not self.abandon.is_set():
                    block = os.read(fd, min(READ_BLOCK_BYTES, left))
                    if not block:
                        break
                    digest.update(block)
                    left -= len(block)
                    self.progress_at = time.monotonic()
                self.digest = digest.hexdigest()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting caller)
            self.error = exc
        finally:
            self.done.set()


class _Fd:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)
