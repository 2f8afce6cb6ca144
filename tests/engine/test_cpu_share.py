"""Threads for llama.cpp from what other programs leave free (engine.cpu_share)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import llama_cpp
import pytest

from engine.cpu_share import CpuShare, threads_for
from engine.model import LoadOptions, load_model
from engine.turn import ChatSession, SamplingParams, TurnRequest


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
    share = CpuShare(physical_cores=multiprocessing.cpu_count())
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
