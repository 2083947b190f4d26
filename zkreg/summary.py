"""
A running summary of observations (count, sum and the most recent values), cheap to
feed on a hot path and read at scrape time.

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
    @ivar count: observations since the start.
    @ivar total: their sum.
    @ivar recent: the most recent observations, for quantiles; hot paths may update
        C{count}, C{total} and C{recent} inline instead of calling L{observe}.
    """

    __slots__ = ("count", "total", "recent")

    def __init__(self, window: int = 1024) -> None:
        """
        @param window: how many recent observations quantiles are computed over.
        """
        self.count = 0
        self.total: float = 0
        self.recent: deque[float] = deque(maxlen=window)

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.count += 1
        self.total += value
        self.recent.append(value)

    def quantiles(self, wanted: tuple[float, ...]) -> list[float]:
        """
        @param wanted: quantiles between 0 and 1.
        @return: the value at each quantile of the recent window (nearest rank), 0
            when nothing was observed.
        """
        recent = sorted(tuple(self.recent))
        if not recent:
            return [0.0 for _ in wanted]
        last = len(recent) - 1
        return [float(recent[min(last, int(q * len(recent)))]) for q in wanted]
