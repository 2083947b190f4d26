"""
Server-wide counters of the session server, as ZooKeeper's C{ServerStats} keeps them
for srvr, stat and mntr.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from zkreg.session.watches import NODE_CHILDREN_CHANGED, NODE_DELETED
from zkreg.summary import RecentSummary


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


def fold_latencies(figures: Any, latencies_ms: list[int]) -> None:
    """
    Add a batch of latencies (ms, at least one) to the min/max/total/count that
    ZooKeeper keeps per connection and per server (C{min_latency_ms},
    C{max_latency_ms}, C{total_latency_ms}, C{latency_count} of C{figures}).
    """
    lowest = min(latencies_ms)
    if figures.latency_count == 0 or lowest < figures.min_latency_ms:
        figures.min_latency_ms = lowest
    highest = max(latencies_ms)
    if highest > figures.max_latency_ms:
        figures.max_latency_ms = highest
    figures.total_latency_ms += sum(latencies_ms)
    figures.latency_count += len(latencies_ms)


class ServerStats:
    """
    @ivar packets_received: frames received from clients (4lw included).
    @ivar packets_sent: frames sent to clients (notifications included).
    @ivar auth_failed: auth packets refused.
    @ivar connection_requests: handshakes for new sessions.
    @ivar connection_revalidates: handshakes reattaching a session.
    @ivar connections_rejected: connections refused by max_client_cnxns.
    @ivar slow_consumers_closed: connections closed because they left more than
        C{max_output_buffer} bytes unread for C{output_stall_timeout}.
    @ivar replies_refused: reads refused because their reply would exceed
        C{max_reply_size}.
    """

    def __init__(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
        self.connection_requests = 0
        self.connection_revalidates = 0
        self.connections_rejected = 0
        self.sessionless_expired = 0
        #: ZooKeeper's readlatency and updatelatency summaries (ms), which srst does
        #: not reset (they are metrics, not ServerStats, in ZooKeeper)
        self.read_latency = RecentSummary()
        self.update_latency = RecentSummary()
        self.slow_consumers_closed = 0
        self.replies_refused = 0
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

    def record_write_latencies(self, latencies_ms: list[int]) -> None:
        """Add the latencies of writes (ms from receipt to reply), at least one."""
        summary = self.update_latency
        summary.count += len(latencies_ms)
        summary.total += sum(latencies_ms)
        summary.recent.extend(latencies_ms)
        fold_latencies(self, latencies_ms)

    def record_latency(self, latency_ms: int, write: bool = False) -> None:
        """Add one request's latency (ms from receipt to reply)."""
        # Inline rather than RecentSummary.observe: this runs for every request.
        summary = self.update_latency if write else self.read_latency
        summary.count += 1
        summary.total += latency_ms
        summary.recent.append(latency_ms)
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


def java_string_hash(text: str) -> int:
    """Java's C{String.hashCode} (over UTF-16 code units), as a signed 32-bit int."""
    value = 0
    encoded = text.encode("utf-16-be")
    for index in range(0, len(encoded), 2):
        value = (31 * value + (encoded[index] << 8 | encoded[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def java_concurrent_hash_map_order(keys: list[Any], hash_of: Any = java_string_hash) -> list[Any]:
    """
    The iteration order of a C{ConcurrentHashMap} holding C{keys} (inserted in the
    given order): by bin of the spread hash in a table of 16 doubled at 3/4 load,
    then by insertion within a bin.  ZooKeeper prints its per-namespace metrics in
    this order, and keeps a connection's auth ids in such a map.

    @param hash_of: the keys' Java C{hashCode}, as a 32-bit int.
    """
    table_size = 16
    while len(keys) >= table_size * 3 // 4:
        table_size *= 2

    def bin_of(key: Any) -> int:
        hashed = hash_of(key) & 0xFFFFFFFF
        return ((hashed ^ (hashed >> 16)) & 0x7FFFFFFF) & (table_size - 1)

    return [keys[i] for _, i in sorted((bin_of(k), i) for i, k in enumerate(keys))]


def java_id_hash(auth_id: Any) -> int:
    """The jute-generated C{Id.hashCode}: C{37 * (37 * 17 + scheme) + id}."""
    result = (37 * 17 + java_string_hash(auth_id.scheme or "")) & 0xFFFFFFFF
    return (37 * result + java_string_hash(auth_id.id or "")) & 0xFFFFFFFF


def java_auth_order(auth_ids: list[Any]) -> tuple:
    """
    A connection's auth ids in ZooKeeper's order (C{ServerCnxn.authInfo} is a set
    backed by a C{ConcurrentHashMap}): the order whoAmI lists them and the C{auth} ACL
    scheme expands them in.
    """
    return tuple(java_concurrent_hash_map_order(auth_ids, java_id_hash))


def top_namespace(path: str) -> str | None:
    """ZooKeeper's C{PathUtils.getTopNamespace}: C{"a"} for C{/a/b}; None for C{/}."""
    parts = path.split("/", 2)
    if len(parts) < 2 or not parts[1]:
        return None
    return parts[1]


#: DataTree.STAT_OVERHEAD_BYTES, added to each read's byte count.
STAT_OVERHEAD_BYTES = 6 * 8 + 5 * 4


class NamespaceStats:
    """
    ZooKeeper's read_per_namespace and write_per_namespace summaries: bytes read and
    written per top-level znode, which mntr lists after its fixed keys.

    @ivar reads: namespace -> [count, total, min, max]
    @ivar writes: the same for writes.
    """

    def __init__(self) -> None:
        self.reads: dict[str, list[int]] = {}
        self.writes: dict[str, list[int]] = {}

    @staticmethod
    def _add(table: dict[str, list[int]], path: str, size: int) -> None:
        namespace = top_namespace(path)
        if namespace is None:
            return
        entry = table.get(namespace)
        if entry is None:
            table[namespace] = [1, size, size, size]
            return
        entry[0] += 1
        entry[1] += size
        if size < entry[2]:
            entry[2] = size
        if size > entry[3]:
            entry[3] = size

    def read(self, path: str, data_bytes: int) -> None:
        """A successful getData, exists or getChildren of C{path}."""
        self._add(self.reads, path, len(path) + data_bytes + STAT_OVERHEAD_BYTES)

    def write(self, path: str, data_bytes: int) -> None:
        """An applied create, setData or delete of C{path}."""
        self._add(self.writes, path, len(path) + data_bytes)

    def count_writes(self, events: Any, view: Any) -> None:
        """
        Count the writes of one commit from its events: a created or changed node
        with its data as C{view} holds it now, a deleted one with none (ZooKeeper's
        C{updateWriteStat} in createNode, setData and deleteNode).
        """
        table = self.writes
        add = self._add
        for event_type, path in events:
            if event_type == NODE_CHILDREN_CHANGED:
                continue
            size = len(path)
            if event_type != NODE_DELETED:
                node = view.get(path)
                if node is not None:
                    data = node.data
                    if data:
                        size += len(data)
            add(table, path, size)

    def monitor_figures(self) -> list[tuple[str, Any]]:
        """The per-namespace mntr figures (without C{zk_}), in ZooKeeper's order."""
        figures: list[tuple[str, Any]] = []
        for suffix, table in (
            ("read_per_namespace", self.reads),
            ("write_per_namespace", self.writes),
        ):
            for namespace in java_concurrent_hash_map_order(list(table)):
                count, total, minimum, maximum = table[namespace]
                name = f"{namespace}_{suffix}"
                figures.append((f"avg_{name}", rounded_average(total, count)))
                figures.append((f"min_{name}", minimum))
                figures.append((f"max_{name}", maximum))
                figures.append((f"cnt_{name}", count))
                figures.append((f"sum_{name}", total))
        return figures
