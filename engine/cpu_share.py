"""How many threads llama.cpp should use, given what else the machine is doing.

llama.cpp splits every token's work across its threads and waits for the
slowest at each step. When another program keeps a core busy, one of those
threads is descheduled at every step and all the others wait for it:
measured on a 2-core VM, decoding on both cores beside one busy process fell
to a fifth of its single-thread speed. So, before each turn, the engine looks
at how busy the CPUs were *without it* in the last second, and runs on the
cores left: all physical cores on a quiet machine, one fewer per core that
another program keeps busy, never fewer than one.

The look is free: a daemon thread reads the CPU counters four times a
second (``/proc/stat`` and our own process's times: microseconds), and a look
compares the newest reading with the one a second before it, so nobody
waits for a sample. The last second, not the time since the previous turn:
averaged over the minutes a user spends reading an answer, a build started
ten seconds before the next question counted as a few per cent of a core,
and the answer ran on both cores beside it at a fraction of one core's
speed; a program that had just ended counted as busy and the answer ran on
one core (bench.engine, 2026-12-06: llama-bench run just before each turn
halved the decode speed). Only a user who set a thread count in Settings is
not second-guessed.

A program that starts (or stops) in the middle of an answer changes the
time each token takes: :class:`PaceWatch` notices the jump, the counters
restart, and once 0.2 s of the answer have passed the engine sets the new
count between two tokens (llama.cpp takes it for its next decode), instead
of writing the rest of a long answer at a fifth of the speed it could.
Decoding never pauses for a look.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

log = logging.getLogger(__name__)

# A look covers the last this many seconds of the CPU counters.
RECENT_S = 1.0
# The daemon thread reads the counters this often.
SAMPLE_EVERY_S = 0.25
# Readings spanning less than this say too little: a look mid-answer waits
# (decoding on) until this long after the pace jumped; a look right after
# the sampler started keeps the last count.
MIN_SAMPLE_S = 0.2
# A core counts as taken once other programs keep it this busy.
BUSY_CORE_SHARE = 0.6
# Token times this many times faster or slower than the turn's usual pace
# mean the machine changed: look again. Decode times on a quiet 2-core VM
# vary by ~20 % token to token; one busy process beside two threads makes
# them ~2.5x as long (bench.engine_load).
PACE_JUMP = 1.5
# The usual pace: the median of this many tokens (after a start or a change);
# a jump: the median of the last this many (most of them slower or faster),
# so one or two slow tokens (a page fault, a collection) are not one.
PACE_TOKENS = 5


def threads_for(physical_cores: int, logical_cpus: int, others_busy_cpus: float) -> int:
    """Threads for llama.cpp: the physical cores, less one for each CPU other
    programs keep busy (counted from ``BUSY_CORE_SHARE``), at least one."""
    taken = int(others_busy_cpus + (1 - BUSY_CORE_SHARE))
    return max(1, min(physical_cores, logical_cpus - taken))


@dataclass(frozen=True)
class Reading:
    """The CPU counters at one moment: seconds since any start."""

    at: float  # the clock
    busy_s: float  # CPU time all programs used (every CPU, not idle or waiting)
    own_s: float  # CPU time this process used (all its threads)


def read_counters(clock: Callable[[], float] = time.monotonic) -> Reading:
    import psutil

    system = psutil.cpu_times()
    # As psutil.cpu_percent counts busy time: Linux's guest times are already
    # inside user and nice, and a CPU waiting for the disk is idle.
    doubled = getattr(system, "guest", 0.0) + getattr(system, "guest_nice", 0.0)
    idle = system.idle + getattr(system, "iowait", 0.0)
    own = _this_process().cpu_times()
    return Reading(clock(), sum(system) - doubled - idle, own.user + own.system)


@functools.cache
def _this_process() -> psutil.Process:
    import psutil

    return psutil.Process()


class CpuShare:
    """The threads the machine can give llama.cpp now. ``threads()`` before
    each turn; ``restart()`` then ``threads_when_ready()`` during an answer.
    No call ever waits: the user never pays for a look.

    ``sample=False`` starts no thread: readings come from :meth:`sample`
    (tests, with ``clock`` and ``read`` stand-ins); ``logical_cpus``
    defaults to this machine's."""

    def __init__(
        self,
        physical_cores: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        logical_cpus: int | None = None,
        read: Callable[[Callable[[], float]], Reading] = read_counters,
        sample: bool = True,
    ) -> None:
        import psutil

        self._physical = physical_cores
        self._logical = (
            logical_cpus or psutil.cpu_count(logical=True) or os.cpu_count() or physical_cores
        )
        self._clock = clock
        self._read = read
        self._count = physical_cores  # the last choice, kept while readings say too little
        self._since = float("-inf")  # a look mid-answer reads only from here on
        keep = math.ceil(4 * RECENT_S / SAMPLE_EVERY_S)
        self._readings: deque[Reading] = deque(maxlen=keep)
        # The daemon thread and a look both read: one at a time keeps them in order.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sample()
        if sample:
            threading.Thread(
                target=self._sample_until_closed, name="cpu-share", daemon=True
            ).start()

    def sample(self) -> None:
        """Read the counters once (the daemon thread does, every
        :data:`SAMPLE_EVERY_S`)."""
        with self._lock:
            self._readings.append(self._read(self._clock))

    def _sample_until_closed(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                self.sample()
            except Exception:  # a counter that cannot be read: keep the last count
                log.debug("reading the CPU counters failed", exc_info=True)

    def close(self) -> None:
        self._stop.set()

    def _busy_between(self, old: Reading, new: Reading) -> float:
        """CPUs' worth other programs used from ``old`` to ``new``."""
        elapsed = new.at - old.at
        others = (new.busy_s - old.busy_s) - (new.own_s - old.own_s)
        return max(0.0, others / elapsed)

    def _recent(self, since: float) -> tuple[Reading, Reading] | None:
        """The newest reading and the latest one at least :data:`RECENT_S`
        before it (or the oldest after ``since``); None if they span less
        than :data:`MIN_SAMPLE_S`."""
        readings = [r for r in list(self._readings) if r.at >= since]
        if len(readings) < 2:
            return None
        newest = readings[-1]
        old = readings[0]
        for reading in readings:
            if newest.at - reading.at < RECENT_S:
                break
            old = reading
        if newest.at - old.at < MIN_SAMPLE_S:
            return None
        return old, newest

    def others_busy_cpus(self) -> float:
        """How many CPUs' worth other programs use, read over
        :data:`MIN_SAMPLE_S` from now (blocks that long: for benchmarks and
        tests that want a measurement now)."""
        old = self._read(self._clock)
        time.sleep(MIN_SAMPLE_S)
        return self._busy_between(old, self._read(self._clock))

    def threads(self) -> int:
        """The thread count for what other programs did in the last second.
        Too few readings yet (just started): the last count."""
        self.sample()
        span = self._recent(float("-inf"))
        if span is None:
            return self._count
        busy = self._busy_between(*span)
        self._count = threads_for(self._physical, self._logical, busy)
        log.info("other programs keep %.1f CPUs busy: %d llama.cpp threads", busy, self._count)
        return self._count

    def restart(self) -> None:
        """Mid-answer, when the token pace jumped: the next count reads only
        what happened from now on, so it says how the machine is, not how it
        was before the change."""
        self.sample()
        self._since = self._readings[-1].at

    def threads_when_ready(self) -> int | None:
        """After :meth:`restart`: the new count once readings span
        :data:`MIN_SAMPLE_S` of the answer (the engine asks between tokens and
        decodes on meanwhile), else None."""
        self.sample()
        span = self._recent(self._since)
        if span is None:
            return None
        busy = self._busy_between(*span)
        self._count = threads_for(self._physical, self._logical, busy)
        log.info("mid-answer: other programs keep %.1f CPUs busy: %d threads", busy, self._count)
        return self._count


class PaceWatch:
    """The time each answer token takes, told one token at a time; says when
    the pace jumped from the turn's usual (up or down) and a new thread count
    may fit better. Pure arithmetic on the durations it is given."""

    def __init__(self) -> None:
        self._usual: float | None = None
        self._recent: deque[float] = deque(maxlen=PACE_TOKENS)

    def token(self, seconds: float) -> bool:
        """One more token took ``seconds``; True: look at the machine again
        (the usual pace is then learnt anew, from the tokens that follow)."""
        self._recent.append(seconds)
        if len(self._recent) < PACE_TOKENS:
            return False
        pace = statistics.median(self._recent)
        if self._usual is None:
            self._usual = pace
            self._recent.clear()
            return False
        if self._usual / PACE_JUMP < pace < self._usual * PACE_JUMP:
            return False
        log.info("token time went from %.0f to %.0f ms", self._usual * 1000, pace * 1000)
        self._usual = None
        self._recent.clear()
        return True
