"""
Server-wide counters of the session server, as ZooKeeper's C{ServerStats} keeps them
for srvr, stat and mntr.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def java_double(value: float) -> str:
    """
    Format a float as Java's C{Double.toString} does for the values 4lw prints.

    Python's shortest repr agrees with Java for ordinary magnitudes (C{0.0},
    C{1.75}); Java switches to scientific notation below 10^-3.
    """
    if value != 0 and abs(value) < 1e-3:
        mantissa, exponent = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0")
        if mantissa.endswith("."):
            mantissa += "0"
        return f"{mantissa}E{int(exponent)}"
    text = repr(float(value))
    return text


def rounded_average(total: int, count: int) -> float:
    """
    ZooKeeper's C{AvgMinMaxCounter.getAvg}: the mean rounded half-up to 4 places.
    """
    if count <= 0:
        return 0.0
    return float(Decimal(total / count).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


class ServerStats:
    """
    @ivar packets_received: frames received from clients (4lw included).
    @ivar packets_sent: frames sent to clients (notifications included).
    @ivar auth_failed: auth packets refused.
    @ivar connection_requests: handshakes for new sessions.
    @ivar connection_revalidates: handshakes reattaching a session.
    @ivar connections_rejected: connections refused by max_client_cnxns.
    """

    def __init__(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
        self.connection_requests = 0
        self.connection_revalidates = 0
        self.connections_rejected = 0
        self.reset_latency()

    def reset_latency(self) -> None:
        """Forget the latency summary."""
        self.min_latency_ms = 0
        self.max_latency_ms = 0
        self.total_latency_ms = 0
        self.latency_count = 0

    def reset(self) -> None:
        """srst: ZooKeeper resets latency and packet counters."""
        self.reset_latency()
        self.packets_received = 0
        self.packets_sent = 0

    def record_latency(self, latency_ms: int) -> None:
        """Add one request's latency (ms from receipt to reply)."""
        if self.latency_count == 0 or latency_ms < self.min_latency_ms:
            self.min_latency_ms = latency_ms
        if latency_ms > self.max_latency_ms:
            self.max_latency_ms = latency_ms
        self.total_latency_ms += latency_ms
        self.latency_count += 1

    @property
    def avg_latency(self) -> float:
        """The mean latency as ZooKeeper reports it."""
        return rounded_average(self.total_latency_ms, self.latency_count)
