"""Time left from measured throughput, for the indexing progress line.

The first estimate divided the time so far by the bytes of *finished* files:
with one large file in progress and a few small ones done, a 63-second run
said "about 102954 min left". Here the work done includes the part of the
file in progress that has been embedded, the rate is measured over a sliding
window (so the model's start-up and a slow first file age out), and nothing
is said until enough has been measured: a number that may be off by a factor
of a thousand is worse than "estimating".
"""

from __future__ import annotations

from collections import deque

RATE_WINDOW_S = 30.0  # the rate is measured over the last this-many seconds
MIN_MEASURED_S = 5.0  # no estimate before this long has been measured ...
MIN_DONE_FRACTION = 0.01  # ... nor before this share of the work is done


class ThroughputEta:
    """Feed it ``(now, done, total)``; it answers seconds left, or None."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()  # (time, work done)

    def update(self, now: float, done: float, total: float) -> float | None:
        samples = self._samples
        samples.append((now, done))
        # Keep one sample at or before the window's start, so the window is full.
        while len(samples) > 2 and samples[1][0] <= now - RATE_WINDOW_S:
            samples.popleft()
        if done >= total:
            return 0.0 if total else None
        first_time, first_done = samples[0]
        measured_s = now - first_time
        if measured_s < MIN_MEASURED_S or done < MIN_DONE_FRACTION * total:
            return None
        rate = (done - first_done) / measured_s
        if rate <= 0:
            return None
        return (total - done) / rate
