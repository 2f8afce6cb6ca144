"""Parsers that misbehave on purpose, for ``parse_file(..., parser=...)``:
each runs inside the worker process and first writes its pid next to the
file, so a test can check that the worker was really stopped."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from retrieval.parsing.section import Section


def _note_pid(path: Path) -> None:
    path.with_suffix(".pid").write_text(str(os.getpid()))


def hang(path: Path) -> Iterator[Section]:
    _note_pid(path)
    threading.Event().wait()  # forever
    yield Section("never")


def exit_abruptly(path: Path) -> Iterator[Section]:
    _note_pid(path)
    os._exit(3)
    yield Section("never")


def segfault(path: Path) -> Iterator[Section]:
    _note_pid(path)
    os.kill(os.getpid(), signal.SIGSEGV)
    yield Section("never")


def eat_memory(path: Path) -> Iterator[Section]:
    _note_pid(path)
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
    yield Section("never")


def raise_error(path: Path) -> Iterator[Section]:
    _note_pid(path)
    yield Section("first part", line_start=1, line_end=1)
    raise ValueError("parser bug")


def sections_then_crash(path: Path) -> Iterator[Section]:
    _note_pid(path)
    for number in range(1, 4):
        yield Section(f"part {number}", line_start=number, line_end=number)
    os._exit(5)


def many_sections(path: Path) -> Iterator[Section]:
    _note_pid(path)
    for number in range(1, 100_001):
        yield Section(f"line {number} " * 20, line_start=number, line_end=number)


def read_whole(path: Path) -> Iterator[Section]:
    """What a careless parser does: the whole file in memory at once."""
    data = path.read_bytes()
    yield Section(data.decode(errors="replace")[:100])


def slow_but_steady(path: Path) -> Iterator[Section]:
    """A parser that takes a while but keeps making progress (a huge file)."""
    _note_pid(path)
    pause = threading.Event()
    for number in range(1, 9):
        pause.wait(0.3)
        yield Section(f"part {number}", line_start=number, line_end=number)
