"""
A running summary of observations (count, sum, min, max and the most recent values),
cheap to feed on a hot path and read at scrape time.

ZooKeeper keeps its latency and batch-size figures in summaries with quantiles; zkreg
records each observation with one deque append and a few integer operations, and
computes quantiles only when someone asks (a Prometheus scrape, mntr), over a window
of the most recent observations.  Safe to feed from one thread (the WAL writer) and
read from another: readers see a consistent-enough snapshot, never a torn object.
"""

from __future__ import annotations

from collections import deque


class RecentSummary:
    """
    @ivar count: observations since the start (or the last L{reset}).
    @ivar total: their sum.
    @ivar minimum: the smallest, 0 before the first.
    @ivar maximum: the largest, 0 before the first.
    """

    def __init__(self, window: int = 1024) -> None:
        """
        @param window: how many recent observations quantiles are computed over.
        """
        self._recent: deque[float] = deque(maxlen=window)
        self.reset()

    def reset(self) -> None:
        """Forget every observation."""
        self._recent.clear()
        self.count = 0
        self.total: float = 0
        self.minimum: float = 0
        self.maximum: float = 0

    def observe(self, value: float) -> None:
        """Add one observation."""
        if self.count == 0 or value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        self.count += 1
        self.total += value
        self._recent.append(value)

    def quantiles(self, wanted: tuple[float, ...]) -> list[float]:
        """
        @param wanted: quantiles between 0 and 1.
        @return: the value at each quantile of the recent window (nearest rank), 0
            when nothing was observed.
        """
        recent = sorted(tuple(self._recent))
        if not recent:
            return [0.0 for _ in wanted]
        last = len(recent) - 1
        return [float(recent[min(last, int(q * len(recent)))]) for q in wanted]

    @property
    def average(self) -> float:
        """The mean of every observation, 0.0 before the first."""
        return self.total / self.count if self.count else 0.0
