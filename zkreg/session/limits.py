"""
Server-wide limits of a session server: the request throttler (ZooKeeper's
C{RequestThrottler}) and a connection-rate limit per client IP address.

Per connection, a client with too many requests in flight is no longer read from
(L{zkreg.session.pipeline.MAX_OUTSTANDING}); that bounds one client, not a thousand
clients together.  L{RequestThrottler} bounds the writes of all connections in the
data tier's pipeline at once: past C{max_requests}, writes wait in one FIFO queue
(so each session's order is kept), and when that queue is as long again, the
connections adding to it are not read from for the stall time, pushing back on the
clients through TCP instead of buffering without bound.

L{ConnectionRateLimiter} is a token bucket per client IP: a client reconnecting in a
tight loop (a crash loop, a misconfigured pool) is refused at accept time before it
costs a handshake and a session, while other clients are unaffected.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.logger import Logger

from zkreg.summary import RecentSummary

_log = Logger()


class RequestThrottler:
    """
    @ivar max_requests: writes in flight at once, over every connection.
    @ivar in_flight: writes submitted to the data tier and not yet answered.
    @ivar wait_count: writes that had to wait (mntr's C{request_throttle_wait_count}).
    @ivar stale_dropped: waiting writes dropped because their connection closed
        (ZooKeeper's C{stale_requests_dropped}).
    @ivar throttled_ops: writes that waited longer than the stall time
        (C{throttled_ops}; zkreg still submits them, it never answers THROTTLEDOP).
    @ivar queue_time_ms: how long each waiting write waited, in ms
        (C{request_throttle_queue_time_ms}).
    """

    def __init__(self, max_requests: int, stall_time_ms: int, clock: Any) -> None:
        self.max_requests = max_requests
        self.stall_time_s = stall_time_ms / 1000.0
        self.clock = clock
        self.in_flight = 0
        self.wait_count = 0
        self.stale_dropped = 0
        self.throttled_ops = 0
        self.queue_time_ms = RecentSummary()
        self._waiting: deque[tuple[Any, Any, float]] = deque()
        self._releasing = False

    @property
    def waiting(self) -> int:
        """Writes waiting for room in the pipeline."""
        return len(self._waiting)

    def admit(self, connection: Any, entry: Any) -> bool:
        """
        A connection wants to submit a write.

        @return: True when it may submit now (counted in flight); False when the
            write waits: L{release} will call C{connection.submit_admitted(entry)}.
        """
        if self.in_flight < self.max_requests and not self._waiting:
            self.in_flight += 1
            return True
        self._waiting.append((connection, entry, self.clock.seconds()))
        self.wait_count += 1
        if len(self._waiting) >= self.max_requests:
            connection.stall_reading(self.stall_time_s)
        return False

    def done(self) -> None:
        """A write admitted earlier was answered (or failed)."""
        self.in_flight -= 1
        if self._waiting and not self._releasing:
            self.release()

    def release(self) -> None:
        """Submit waiting writes, oldest first, while there is room."""
        self._releasing = True
        try:
            waiting = self._waiting
            while waiting and self.in_flight < self.max_requests:
                connection, entry, queued_at = waiting.popleft()
                if connection.is_closing:
                    self.stale_dropped += 1
                    continue
                waited_s = self.clock.seconds() - queued_at
                self.queue_time_ms.observe(int(waited_s * 1000))
                if waited_s > self.stall_time_s:
                    self.throttled_ops += 1
                self.in_flight += 1
                connection.submit_admitted(entry)
        finally:
            self._releasing = False


class ConnectionRateLimiter:
    """
    A token bucket per client IP: C{burst} connections at once, then C{rate} per
    second.

    @ivar refused: connections refused since the start.
    """

    #: Buckets kept before the full (idle) ones are forgotten.
    MAX_TRACKED = 4096
    #: Seconds between two warnings about the same address.
    WARN_INTERVAL_S = 10.0

    def __init__(self, rate: float, burst: int, clock: Any) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.refused = 0
        self._buckets: dict[str, list[float]] = {}
        self._warned: dict[str, float] = {}

    def allow(self, host: str) -> bool:
        """
        @return: whether a new connection from C{host} may be accepted now (taking
            a token if so).
        """
        now = self.clock.seconds()
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= self.MAX_TRACKED:
                self._forget_idle(now)
            bucket = self._buckets[host] = [float(self.burst), now]
        else:
            tokens = bucket[0] + (now - bucket[1]) * self.rate
            bucket[0] = tokens if tokens < self.burst else float(self.burst)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        self.refused += 1
        last = self._warned.get(host)
        if last is None or now - last >= self.WARN_INTERVAL_S:
            self._warned[host] = now
            _log.warn(
                "Too many new connections from /{host}: more than {burst} at once or "
                "{rate} per second (connection_rate_per_ip); refusing them",
                host=host,
                burst=self.burst,
                rate=self.rate,
            )
        return False

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold nothing to remember."""
        for host, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[host]
                self._warned.pop(host, None)
