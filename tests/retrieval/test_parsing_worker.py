"""parse_file: parsing in worker processes that may hang, crash or run out of
memory without taking the caller with them."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from retrieval.errors import ParseFailed
from retrieval.parsing import Section, iter_sections
from retrieval.parsing.worker import ParserPool, parse_file
from tests.retrieval.make_files import write_non_utf8_name

HOSTILE = "tests.retrieval.hostile_parsers"


def pid_of(path: Path) -> int:
    return int(path.with_suffix(".pid").read_text())


def wait_until_gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once no process has ``pid`` (polled: a process exit has no event)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0) until its parent reaps it; the parent
        # may reap it between the two calls, and /proc then says so by erroring.
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        except OSError:
            stat = ""  # no /proc (macOS): kill(0) alone decides
        if stat.split(") ")[-1].startswith("Z"):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("a file the hostile parser ignores\n")
    return path


def failed(pool: ParserPool, path: Path, **options: object) -> tuple[list[Section], ParseFailed]:
    got: list[Section] = []
    with pytest.raises(ParseFailed) as caught:
        for section in pool.parse(path, **options):  # type: ignore[arg-type]
            got.append(section)
    return got, caught.value


def test_worker_gives_the_same_sections_as_in_process(
    pool: ParserPool, good_files: dict[str, Path]
) -> None:
    for path in good_files.values():
        assert list(pool.parse(path)) == list(iter_sections(path)), path.name


def test_bad_files_fail_with_the_same_state_through_the_worker(
    pool: ParserPool, bad_files: dict[str, Path]
) -> None:
    expected = {
        "encrypted": "encrypted",
        "scanned": "no_text",
        "binary": "binary",
        "corrupt_pdf": "failed",
        "truncated_pdf": "failed",
        "folder_named_txt": "unreadable",
        "fifo": "unreadable",
    }
    for name, state in expected.items():
        _, error = failed(pool, bad_files[name])
        assert error.state == state, name
        assert error.message.startswith(bad_files[name].name + ":")
    assert list(pool.parse(bad_files["empty"])) == []


def test_a_hung_parser_times_out_and_its_worker_is_replaced(
    pool: ParserPool, target: Path, good_files: dict[str, Path]
) -> None:
    started = time.monotonic()
    _, error = failed(pool, target, timeout_s=1.0, parser=f"{HOSTILE}:hang")
    assert time.monotonic() - started < 30  # one timeout, not a hang
    assert error.state == "timeout"
    assert error.message == "victim.txt: reading it took over 1 s without progress; skipped"
    assert wait_until_gone(pid_of(target))
    assert [s.page for s in pool.parse(good_files["pdf"])] == [1, 2, 3]


def test_the_timeout_is_for_progress_not_for_the_whole_file(pool: ParserPool, target: Path) -> None:
    """8 sections 0.3 s apart take 2.4 s: more than the 1.5 s timeout, yet
    never 1.5 s without a section, so the file is read to the end."""
    got = list(pool.parse(target, timeout_s=1.5, parser=f"{HOSTILE}:slow_but_steady"))
    assert [s.text for s in got] == [f"part {n}" for n in range(1, 9)]


@pytest.mark.parametrize(
    ("parser", "state", "message"),
    [
        ("exit_abruptly", "failed", "victim.txt: the parser stopped unexpectedly on this file"
         " (exit code 3)"),
        ("segfault", "failed", "victim.txt: the file made Footnote's reader crash, so it was"
         " skipped; it may be damaged (open and re-save it, then retry)"),
        ("raise_error", "failed", "victim.txt: the parser failed on this file (ValueError)"),
    ],
)  # fmt: skip
def test_a_crashing_parser_fails_the_file_not_the_caller(
    pool: ParserPool,
    target: Path,
    good_files: dict[str, Path],
    parser: str,
    state: str,
    message: str,
) -> None:
    _, error = failed(pool, target, parser=f"{HOSTILE}:{parser}")
    assert (error.state, error.message) == (state, message)
    assert list(pool.parse(good_files["markdown"])) == list(iter_sections(good_files["markdown"]))


def test_a_parser_that_eats_memory_hits_the_cap(
    pool: ParserPool, target: Path, good_files: dict[str, Path]
) -> None:
    _, error = failed(pool, target, memory_limit_mb=256, parser=f"{HOSTILE}:eat_memory")
    assert error.state == "too_large_memory"
    assert error.message == "victim.txt: reading it needs more memory than a document may use"
    # The worker that ran out of memory is not reused.
    assert wait_until_gone(pid_of(target))
    assert len(list(pool.parse(good_files["docx"]))) == 5


def test_a_worker_killed_from_outside_reads_as_out_of_memory(
    pool: ParserPool, target: Path, good_files: dict[str, Path]
) -> None:
    """What the kernel's OOM killer does: SIGKILL the worker mid-file."""
    pid_file = target.with_suffix(".pid")

    def kill_when_started() -> None:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    _, error = failed(pool, target, timeout_s=60, parser=f"{HOSTILE}:hang")
    killer.join()
    assert error.state == "too_large_memory"
    assert "most likely for lack of memory" in error.message
    assert len(list(pool.parse(good_files["docx"]))) == 5


def test_sections_before_a_crash_arrive_then_the_failure(pool: ParserPool, target: Path) -> None:
    got, error = failed(pool, target, parser=f"{HOSTILE}:sections_then_crash")
    assert error.state == "failed"
    assert [s.text for s in got] in (["part 1", "part 2", "part 3"], [])


def test_leaving_early_stops_the_busy_worker(
    pool: ParserPool, target: Path, good_files: dict[str, Path]
) -> None:
    stream = pool.parse(target, parser=f"{HOSTILE}:many_sections")
    first = next(stream)
    assert first.line_start == 1
    stream.close()
    assert wait_until_gone(pid_of(target))
    assert list(pool.parse(good_files["rst"])) == list(iter_sections(good_files["rst"]))


def test_sections_stream_in_batches(pool: ParserPool, target: Path) -> None:
    count = 0
    for section in pool.parse(target, parser=f"{HOSTILE}:many_sections"):
        count += 1
        assert section.line_start == count
    assert count == 100_000


def test_two_threads_parse_at_once(pool: ParserPool, good_files: dict[str, Path]) -> None:
    results: dict[str, list[Section]] = {}
    errors: list[BaseException] = []

    def parse(name: str) -> None:
        try:
            results[name] = list(pool.parse(good_files[name]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=parse, args=(name,)) for name in ("pdf", "docx", "html")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for name in ("pdf", "docx", "html"):
        assert results[name] == list(iter_sections(good_files[name]))


@pytest.fixture
def huge_text(tmp_path: Path) -> Path:
    """120 MB of text in paragraphs of 20 lines."""
    line = ("All work and no play makes a dull document. " * 4).encode() + b"\n"
    paragraph = line * 20 + b"\n"
    path = tmp_path / "huge.log"
    with path.open("wb") as f:
        for _ in range(120 * 1024 * 1024 // len(paragraph)):
            f.write(paragraph)
    return path


def test_huge_text_streams_under_a_small_memory_cap(pool: ParserPool, huge_text: Path) -> None:
    """A worker allowed 64 MB parses all 120 MB: the file is never read at once."""
    with huge_text.open("rb") as f:
        total_lines = sum(1 for _ in f)
    last_line = 0
    size = 0
    for section in pool.parse(huge_text, memory_limit_mb=64):
        assert section.line_start is not None and section.line_end is not None
        assert section.line_start > last_line
        last_line = section.line_end
        size += len(section.text)
    assert last_line == total_lines - 1  # the final blank line is trimmed
    assert size > 100 * 1024 * 1024


def test_the_same_cap_stops_a_parser_that_reads_it_whole(pool: ParserPool, huge_text: Path) -> None:
    _, error = failed(pool, huge_text, memory_limit_mb=64, parser=f"{HOSTILE}:read_whole")
    assert error.state == "too_large_memory"
    # Without the cap the same parser gets through.
    assert (
        len(list(pool.parse(huge_text, memory_limit_mb=None, parser=f"{HOSTILE}:read_whole"))) == 1
    )


def test_shared_parse_file_and_non_utf8_names(tmp_path: Path) -> None:
    path = write_non_utf8_name(tmp_path)
    assert [s.text for s in parse_file(path)] == ["Bytes in the name are not UTF-8."]
    path.unlink()
    with pytest.raises(ParseFailed) as caught:
        list(parse_file(path))
    assert caught.value.state == "unreadable"


def test_a_closed_pool_refuses_work(good_files: dict[str, Path]) -> None:
    pool = ParserPool(size=1)
    assert len(list(pool.parse(good_files["markdown"]))) == 5
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(pool.parse(good_files["markdown"]))


def test_an_idle_worker_that_died_is_replaced_before_the_next_file(
    pool: ParserPool, good_files: dict[str, Path], target: Path
) -> None:
    failed(pool, target, parser=f"{HOSTILE}:raise_error")  # a failure that keeps the worker
    idle_pid = pid_of(target)
    os.kill(idle_pid, signal.SIGKILL)  # dies while waiting in the pool
    assert wait_until_gone(idle_pid)
    assert [s.page for s in pool.parse(good_files["pdf"])] == [1, 2, 3]


def test_the_spawn_start_method_works_too(good_files: dict[str, Path], target: Path) -> None:
    """macOS and Windows have no forkserver: workers are spawned afresh."""
    import multiprocessing

    with ParserPool(size=1, context=multiprocessing.get_context("spawn")) as spawned:
        assert list(spawned.parse(good_files["pdf"])) == list(iter_sections(good_files["pdf"]))
        _, error = failed(spawned, target, parser=f"{HOSTILE}:segfault")
        assert error.state == "failed"
        assert list(spawned.parse(good_files["markdown"])) != []
