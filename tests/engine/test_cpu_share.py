"""Threads for llama.cpp from what other programs leave free (engine.cpu_share)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import llama_cpp
import pytest

from engine.cpu_share import CpuShare, PaceWatch, Reading, threads_for
from engine.local_backend import LocalBackend
from engine.model import LoadOptions, load_model
from engine.sampling import SamplingParams
from engine.turn import ChatSession, TurnRequest


def test_a_busy_core_is_left_to_its_program() -> None:
    assert threads_for(2, 2, 0.0) == 2  # quiet: every physical core
    assert threads_for(2, 2, 0.3) == 2  # a little background work is not a core
    assert threads_for(2, 2, 1.0) == 1  # one busy process: one core left
    assert threads_for(2, 2, 2.0) == 1  # never fewer than one
    assert threads_for(4, 8, 1.0) == 4  # hyper-threads: the busy one has a sibling
    assert threads_for(8, 8, 3.2) == 5


def _spin(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        pass


@pytest.mark.skipif(
    (multiprocessing.cpu_count() or 1) < 2, reason="needs two CPUs to leave one free"
)
def test_another_busy_process_is_seen(tmp_path: Path) -> None:
    share = CpuShare(physical_cores=multiprocessing.cpu_count(), sample=False)
    stop = multiprocessing.get_context("spawn").Event()
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(stop,))
    spinner.start()
    try:
        busy = max(share.others_busy_cpus() for _ in range(3))
    finally:
        stop.set()
        spinner.join(10)
    assert busy >= 0.6


def test_a_turn_runs_on_the_threads_the_load_leaves(tiny_model: Path) -> None:
    model = load_model(tiny_model, LoadOptions(seed=1))
    try:
        assert model.cpu_share is not None

        class Busy:
            def threads(self) -> int:
                return 1

            def close(self) -> None:
                pass

        model.cpu_share.close()  # the real one's counter thread
        model.cpu_share = Busy()  # type: ignore[assignment]
        request = TurnRequest("", (), "Hi", SamplingParams(max_answer_tokens=2))
        list(ChatSession(model).run(request, threading.Event()))
        assert model.threads == 1
        assert llama_cpp.llama_n_threads(model.llama.ctx) == 1
        assert model.backend_label == "CPU · 1 thread"
    finally:
        model.close()
    # A count the user chose is left alone.
    chosen = load_model(tiny_model, LoadOptions(seed=1, threads=2))
    try:
        assert chosen.cpu_share is None
    finally:
        chosen.close()


def test_the_pace_watch_speaks_when_token_times_jump_not_at_one_slow_token() -> None:
    watch = PaceWatch()
    steady = [0.10, 0.12, 0.09, 0.11] * 5
    assert not any(watch.token(s) for s in steady)  # learns ~0.1 s, then quiet
    assert not watch.token(0.5)  # one slow token (a page fault, a GC) is not a change
    assert not any(watch.token(s) for s in [0.1, 0.11, 0.1, 0.4, 0.1])  # nor two
    busy = [0.26, 0.25, 0.27, 0.25, 0.26]  # another program took a core
    said = [watch.token(s) for s in busy]
    assert said.count(True) == 1 and not said[0]  # once, when most recent tokens are slow
    # The new pace is learnt again (the new thread count changes it), not
    # compared with the old one.
    assert not any(watch.token(s) for s in [0.2, 0.21, 0.2, 0.19] * 3)
    quiet = [0.08, 0.09, 0.08, 0.08, 0.08]  # the other program ended
    assert [watch.token(s) for s in quiet].count(True) == 1


def test_an_answer_whose_tokens_slow_down_gets_a_new_thread_count_mid_way(
    tiny_model: Path,
) -> None:
    """Between two tokens, not only before the turn (clock and CPU share
    stand-ins: nothing is timed)."""
    model = load_model(tiny_model, LoadOptions(seed=1))

    class Share:
        looks = 0
        asked = 0

        def threads(self) -> int:
            return model.threads

        def restart(self) -> None:
            Share.looks += 1

        def threads_when_ready(self) -> int | None:
            # The look needs a few tokens' time; decoding goes on meanwhile.
            Share.asked += 1
            return None if Share.asked < 3 else model.threads + 1

        def close(self) -> None:
            pass

    times, now = [0.0], 0.0
    for n in range(24):  # two clock reads per token: after it, and as the next starts
        now += 0.1 if n < 12 else 0.3
        times += [now, now]
    clock = iter(times)
    try:
        assert model.cpu_share is not None
        model.cpu_share.close()  # the real one's counter thread
        model.cpu_share = Share()  # type: ignore[assignment]
        before = model.threads
        backend = LocalBackend(model, clock=lambda: next(clock))
        prompt = model.tokenize("Once upon a time", add_bos=True)
        written = backend.write(prompt, SamplingParams(temperature=0.0), threading.Event())
        for n, _piece in enumerate(written):
            if n == 11:
                assert Share.looks == 0  # a steady pace: nothing to look at
            if n == 23:
                break
        written.close()
        assert Share.looks == 1 and Share.asked == 3
        assert model.threads == before + 1
        assert llama_cpp.llama_n_threads(model.llama.ctx) == before + 1
    finally:
        model.close()


class _Machine:
    """Stand-in CPU counters: other programs keep ``busy`` CPUs busy from now
    on, while this process uses ``own``; time moves only when told."""

    def __init__(self) -> None:
        self.now, self.busy_s, self.own_s = 100.0, 0.0, 0.0

    def run(self, seconds: float, busy: float, own: float = 0.0) -> None:
        self.now += seconds
        self.busy_s += seconds * (busy + own)
        self.own_s += seconds * own

    def read(self, clock: object) -> Reading:
        return Reading(self.now, self.busy_s, self.own_s)


def _share(machine: _Machine) -> CpuShare:
    return CpuShare(
        physical_cores=2,
        logical_cpus=2,
        clock=lambda: machine.now,
        read=machine.read,
        sample=False,
    )


def test_no_look_ever_waits() -> None:
    """A turn right after the counters started keeps the last count, and a
    look mid-answer answers only once enough time has passed (stand-in
    clock and counters; nothing sleeps)."""
    machine = _Machine()
    share = _share(machine)
    assert share.threads() == 2  # no span to read yet: the last count, at once
    machine.run(0.5, busy=0.0, own=2.0)
    share.restart()
    machine.run(0.05, busy=1.0, own=1.0)
    assert share.threads_when_ready() is None  # too soon to tell: decode on
    machine.run(0.3, busy=1.0, own=1.0)
    assert share.threads_when_ready() == 1


def test_a_look_reads_the_last_second_not_the_time_since_the_last_turn() -> None:
    """A build started seconds before the question takes a core, though the
    minutes before were quiet; a program that ended seconds before frees
    it, though it ran for minutes (averaged since the last turn, both came
    out wrong: bench.engine's decode ran on one thread beside a llama-bench
    that had just exited)."""
    machine = _Machine()
    share = _share(machine)
    for _ in range(240):  # two quiet minutes while the user reads the answer
        machine.run(0.25, busy=0.0)
        share.sample()
    for _ in range(12):  # then a build starts: 3 s of one busy CPU
        machine.run(0.25, busy=1.0)
        share.sample()
    assert share.threads() == 1

    for _ in range(240):  # it runs for two minutes
        machine.run(0.25, busy=1.0)
        share.sample()
    for _ in range(8):  # and ends 2 s before the next question
        machine.run(0.25, busy=0.0)
        share.sample()
    assert share.threads() == 2
    # Our own threads never count as another program.
    for _ in range(8):
        machine.run(0.25, busy=0.0, own=2.0)
        share.sample()
    assert share.threads() == 2
