"""How many threads llama.cpp should use, given what else the machine is doing.

llama.cpp splits every token's work across its threads and waits for the
slowest at each step. When another program keeps a core busy, one of those
threads is descheduled at every step and all the others wait for it:
measured on a 2-core VM, decoding on both cores beside one busy process fell
to a fifth of its single-thread speed. So, before each turn, the engine looks
at how busy the CPUs were *without it* since the last look, and runs on the
cores left: all physical cores on a quiet machine, one fewer per core that
another program keeps busy, never fewer than one.

The look is free: psutil's counters since the previous call (the idle time
between two questions, when Footnote itself computes nothing), not a sample
taken while the user waits. Only a user who set a thread count in Settings
is not second-guessed.

A program that starts (or stops) in the middle of an answer changes the
time each token takes: :class:`PaceWatch` notices the jump, the counters
restart, and once 0.2 s of the answer have passed the engine sets the new
count between two tokens (llama.cpp takes it for its next decode), instead
of writing the rest of a long answer at a fifth of the speed it could.
Decoding never pauses for a look.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

# Shorter than this since the last look, and the counters say too little: a
# turn asked right after the previous one keeps the last count, and a look
# mid-answer reads the counters once this long of decoding has passed.
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


class CpuShare:
    """Remembers the CPU counters between looks. ``threads()`` before each
    turn; ``restart()`` then ``threads_when_ready()`` during an answer. No
    call ever waits: the user never pays for a look."""

    def __init__(self, physical_cores: int, clock: Callable[[], float] = time.monotonic) -> None:
        import psutil

        self._physical = physical_cores
        self._logical = psutil.cpu_count(logical=True) or os.cpu_count() or physical_cores
        self._process = psutil.Process()
        self._clock = clock
        self._last = clock()
        self._count = physical_cores  # the last choice, kept while the counters say too little
        self._look()  # start the counters

    def _look(self) -> tuple[float, float]:
        """(system busy %, averaged over CPUs; this process's %, of one CPU)
        since the previous call."""
        import psutil

        return psutil.cpu_percent(None), self._process.cpu_percent(None)

    def others_busy_cpus(self) -> float:
        """How many CPUs' worth other programs used since the last look
        (blocks until :data:`MIN_SAMPLE_S` have passed: for benchmarks and
        tests that want a measurement now)."""
        wait = MIN_SAMPLE_S - (self._clock() - self._last)
        if wait > 0:
            time.sleep(wait)
        return self._others_busy()

    def _others_busy(self) -> float:
        system, own = self._look()
        self._last = self._clock()
        return max(0.0, system / 100 * self._logical - own / 100)

    def threads(self) -> int:
        """The thread count for what other programs used since the last look.
        A turn asked less than :data:`MIN_SAMPLE_S` after the last look keeps
        the last count: the counters would say too little, and waiting for
        them would delay the first word."""
        if self._clock() - self._last < MIN_SAMPLE_S:
            return self._count
        busy = self._others_busy()
        self._count = threads_for(self._physical, self._logical, busy)
        log.info("other programs keep %.1f CPUs busy: %d llama.cpp threads", busy, self._count)
        return self._count

    def restart(self) -> None:
        """Mid-answer, when the token pace jumped: count from now, so the next
        count says how the machine is, not how it was when the turn began
        (our own threads' time is taken out, as in every look)."""
        self._look()
        self._last = self._clock()

    def threads_when_ready(self) -> int | None:
        """After :meth:`restart`: the new count once :data:`MIN_SAMPLE_S` of
        the answer have passed (the engine asks between tokens and decodes on
        meanwhile), else None."""
        if self._clock() - self._last < MIN_SAMPLE_S:
            return None
        return self.threads()


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
