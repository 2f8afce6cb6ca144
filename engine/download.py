"""Download a model file: resumable, verified, cancellable, never half-visible.

The file grows as ``NAME.part`` next to its destination; HTTP Range requests
resume it after a dropped connection or a restart. The SHA-256 is computed
while the bytes arrive (and over the existing part when resuming); only a file
whose hash matches is renamed to its final name, atomically. So the models
folder only ever holds complete, verified files, and a killed download resumes
on the next attempt.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
CONNECT_TIMEOUT_S = 30.0
PROGRESS_INTERVAL_S = 0.25
DISK_HEADROOM_BYTES = 256 << 20  # leave the disk some room beyond the file itself
USER_AGENT = "Footnote (+local model download)"
MAX_RESUME_ATTEMPTS = 5


class DownloadError(EngineError):
    """A download failed; the message says why and what to do."""


class ChecksumMismatch(DownloadError):
    pass


class NotEnoughDisk(DownloadError):
    pass


@dataclass(frozen=True)
class DownloadProgress:
    done_bytes: int
    total_bytes: int | None
    bytes_per_second: float

    @property
    def fraction(self) -> float | None:
        return self.done_bytes / self.total_bytes if self.total_bytes else None

    @property
    def eta_seconds(self) -> float | None:
        if not self.total_bytes or self.bytes_per_second <= 0:
            return None
        return (self.total_bytes - self.done_bytes) / self.bytes_per_second


@dataclass(frozen=True)
class DownloadDone:
    path: Path
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class DownloadCancelled:
    """Stopped by the user; the part file is kept so it can resume."""

    part_path: Path
    done_bytes: int


DownloadEvent = DownloadProgress | DownloadDone | DownloadCancelled


def part_path_for(destination: Path) -> Path:
    return destination.with_name(destination.name + ".part")


def download(
    url: str,
    destination: Path,
    cancel: threading.Event,
    *,
    sha256: str | None = None,
    min_free_bytes: int = DISK_HEADROOM_BYTES,
) -> Iterator[DownloadEvent]:
    """Yield progress, then DownloadDone or DownloadCancelled; raise DownloadError.

    ``sha256``: the expected hex digest (catalog pin or the hub's published
    LFS hash). Without one, the server's ``X-Linked-ETag`` (Hugging Face's
    LFS SHA-256) is used when present.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    job = _Job(url, destination, part_path_for(destination), cancel, sha256, min_free_bytes)
    attempts = 0
    while True:
        try:
            yield from _attempt(job)
            return
        except _ConnectionDropped as exc:
            attempts += 1
            if attempts >= MAX_RESUME_ATTEMPTS or cancel.is_set():
                raise DownloadError(
                    f"The download of {destination.name} keeps breaking off ({exc}). Check your "
                    "connection and try again: it will continue where it stopped."
                ) from exc
            log.info("connection dropped (%s); resuming, attempt %d", exc, attempts + 1)
            time.sleep(min(2.0**attempts * 0.1, 5.0))


class _ConnectionDropped(Exception):
    pass


@dataclass
class _Job:
    url: str
    destination: Path
    part: Path
    cancel: threading.Event
    expected_sha256: str | None
    min_free_bytes: int


def _attempt(job: _Job) -> Iterator[DownloadEvent]:
    have = job.part.stat().st_size if job.part.exists() else 0
    request = urllib.request.Request(job.url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        # A fresh opener reads the proxy settings now (environment, and the OS
        # settings on macOS/Windows); urlopen's global one caches them forever.
        opener = urllib.request.build_opener()
        response = opener.open(request, timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the part may be complete
            yield from _finish(job.part, job.destination, job.expected_sha256, have)
            return
        raise DownloadError(_http_message(exc.code, job.destination.name), detail=str(exc)) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DownloadError(
            f"Could not reach the server for {job.destination.name}: "
            f"{getattr(exc, 'reason', exc)}. Check your internet connection or proxy.",
            detail=repr(exc),
        ) from exc
    with response:
        if have and response.status != 206:
            log.info("server ignored Range; restarting %s from zero", job.destination.name)
            have = 0
        yield from _receive(job, response, have)


def _receive(job: _Job, response: http.client.HTTPResponse, have: int) -> Iterator[DownloadEvent]:
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    expected = job.expected_sha256 or _linked_etag(response.headers.get("X-Linked-ETag"))
    if total is not None:
        _check_disk(job.destination, total - have, job.min_free_bytes)
    hasher = hashlib.sha256()
    if have:
        _hash_file(job.part, hasher)
    done = have
    started = time.monotonic()
    last_report = 0.0
    with job.part.open("ab" if have else "wb") as out:
        while True:
            if job.cancel.is_set():
                out.flush()
                yield DownloadCancelled(job.part, done)
                return
            try:
                chunk = response.read(CHUNK_BYTES)
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                out.flush()
                raise _ConnectionDropped(str(exc) or type(exc).__name__) from exc
            if not chunk:
                break
            out.write(chunk)
            hasher.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                yield DownloadProgress(done, total, (done - have) / max(now - started, 1e-6))
    if total is not None and done < total:
        raise _ConnectionDropped(f"got {done:,} of {total:,} bytes")
    yield DownloadProgress(done, total or done, 0.0)
    yield _verify_and_publish(job.part, job.destination, expected, hasher.hexdigest(), done)


def _finish(
    part: Path, destination: Path, expected: str | None, size: int
) -> Iterator[DownloadEvent]:
    hasher = hashlib.sha256()
    _hash_file(part, hasher)
    yield _verify_and_publish(part, destination, expected, hasher.hexdigest(), size)


def _verify_and_publish(
    part: Path, destination: Path, expected: str | None, actual: str, size: int
) -> DownloadDone:
    if expected and actual.lower() != expected.lower():
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{destination.name} arrived damaged: its checksum does not match the published one, "
            "so it was deleted and will not be loaded. Download it again.",
            detail=f"expected sha256 {expected}, got {actual}",
        )
    part.replace(destination)
    return DownloadDone(destination, actual, size)


def _check_disk(destination: Path, needed: int, headroom: int) -> None:
    free = shutil.disk_usage(destination.parent).free
    if free < needed + headroom:
        raise NotEnoughDisk(
            f"Not enough disk space for {destination.name}: it needs {_gb(needed)} and "
            f"{_gb(free)} is free on that disk. Free some space or choose another models folder."
        )


def _hash_file(path: Path, hasher: hashlib._Hash) -> None:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            hasher.update(block)


def _linked_etag(value: str | None) -> str | None:
    """Hugging Face sends an LFS file's SHA-256 as ``X-Linked-ETag: "hex"``."""
    if not value:
        return None
    value = value.strip().removeprefix("W/").strip('"')
    return (
        value if len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower()) else None
    )


def _http_message(code: int, name: str) -> str:
    if code == 404:
        return f"{name} is no longer at this address (HTTP 404). The catalog may be out of date."
    if code in (401, 403):
        return (
            f"The server refused to send {name} (HTTP {code}). The model may require accepting "
            "a license on its web page first."
        )
    if code == 429:
        return (
            f"The server is rate-limiting downloads (HTTP 429). Try {name} again in a few minutes."
        )
    return f"The server failed to send {name} (HTTP {code}). Try again later."


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
