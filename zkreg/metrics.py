"""
Prometheus metrics of one zkreg process, served on C{--metrics-listen} at C{/metrics}.

Names follow ZooKeeper 3.8's Prometheus metrics provider (the mntr keys without
C{zk_}: C{znode_count}, C{num_alive_connections}, C{readlatency}...), so dashboards and
alert rules written for ZooKeeper work unchanged; zkreg's own figures carry a
C{zkreg_} prefix.  ZooKeeper's counters appear with the C{_total} suffix current
Prometheus clients give every counter.

Nothing is counted for Prometheus on the request path: the collectors here read the
counters and summaries the server keeps anyway (for mntr and srvr) when Prometheus
scrapes, on the reactor thread (the server's state is not thread-safe), in time that
does not grow with the tree (no walk over nodes, sessions or watches).

In split mode each process exposes its own part: a session server its connections,
watches, latencies and commit-stream lag (L{SessionServerCollector}); a data server
its tree, sessions and log (L{DataServerCollector}); a standalone process both.  A
data server on etcd is a standby or the active one by turns, with a new
L{zkreg.data.server.DataServer} at each takeover: L{EtcdDataRoleCollector} reads
whichever it has at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from twisted.application import service, strports
from twisted.web.resource import Resource
from twisted.web.server import Site

from zkreg.admin import QuietSite
from zkreg.session import monitor
from zkreg.summary import RecentSummary

#: The quantiles of ZooKeeper's detailed summaries (readlatency, updatelatency).
DETAILED_QUANTILES = (0.5, 0.9, 0.99)
#: The quantile of ZooKeeper's basic summaries (fsynctime).
BASIC_QUANTILES = (0.5,)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def summary_family(
    name: str,
    documentation: str,
    summary: RecentSummary,
    quantiles: tuple[float, ...] = DETAILED_QUANTILES,
    scale: float = 1.0,
) -> Metric:
    """
    A Prometheus summary from a L{RecentSummary}: C{name{quantile=...}},
    C{name_count} and C{name_sum}, as ZooKeeper's provider exposes its summaries.

    @param scale: multiplies every value (e.g. 1000 for seconds recorded, ms shown).
    """
    family = Metric(name, documentation, "summary")
    for quantile, value in zip(quantiles, summary.quantiles(quantiles), strict=True):
        family.add_sample(name, {"quantile": str(quantile)}, value * scale)
    family.add_sample(name + "_count", {}, summary.count)
    family.add_sample(name + "_sum", {}, summary.total * scale)
    return family


class SessionServerCollector:
    """
    The session server's metrics: connections, requests, latencies, watches, and the
    lag of the commit stream it receives.

    @ivar factory: the L{zkreg.session.factory.SessionServerFactory}.
    """

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not collect at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        factory = self.factory
        stats = factory.stats
        yield _gauge(
            "num_alive_connections",
            "Client connections open on this session server.",
            len(factory.connections),
        )
        yield _gauge(
            "outstanding_requests",
            "Requests received and not yet answered.",
            monitor.outstanding_requests(factory),
        )
        yield _gauge(
            "packets_received",
            "Packets received from clients (srst resets).",
            stats.packets_received,
        )
        yield _gauge("packets_sent", "Packets sent to clients (srst resets).", stats.packets_sent)
        yield _gauge("avg_latency", "Average request latency in ms.", stats.avg_latency)
        yield _gauge("min_latency", "Smallest request latency in ms.", stats.min_latency_ms)
        yield _gauge("max_latency", "Largest request latency in ms.", stats.max_latency_ms)
        yield _gauge("watch_count", "Data and child watches set.", factory.watches.watch_count())
        yield _gauge("uptime", "Milliseconds since the server started.", monitor.uptime_ms(factory))
        yield _gauge("auth_failed_count", "Authentication packets refused.", stats.auth_failed)
        yield _gauge(
            "open_file_descriptor_count",
            "File descriptors open in this process.",
            monitor.open_file_descriptor_count(),
        )
        yield _gauge(
            "max_file_descriptor_count",
            "The process's limit on open file descriptors.",
            monitor.max_file_descriptor_count(),
        )
        yield _counter(
            "connection_rejected",
            "Connections refused (max_client_cnxns, connection rate per IP).",
            stats.connections_rejected,
        )
        yield _counter(
            "connection_request_count",
            "Handshakes asking for a new session.",
            stats.connection_requests,
        )
        yield _counter(
            "connection_revalidate_count",
            "Handshakes reattaching an existing session.",
            stats.connection_revalidates,
        )
        yield _counter(
            "sessionless_connections_expired",
            "Connections closed for sending no handshake in time.",
            stats.sessionless_expired,
        )
        yield summary_family(
            "readlatency", "Latency of reads (and other local requests) in ms.", stats.read_latency
        )
        yield summary_family("updatelatency", "Latency of writes in ms.", stats.update_latency)
        yield summary_family(
            "zkreg_watch_fanout_seconds",
            "Seconds to send the watch notifications of one committed transaction.",
            factory.watch_fanout,
        )
        yield _counter(
            "zkreg_watch_notifications",
            "Watch notifications sent to clients.",
            factory.notifications_sent,
        )
        yield summary_family(
            "zkreg_data_link_lag_seconds",
            "Seconds from a transaction's time on the data server to its arrival on "
            "this session server's commit stream (includes clock skew between hosts).",
            factory.commit_lag,
        )
        throttler = factory.throttler
        yield _counter(
            "request_throttle_wait_count",
            "Writes that waited for room in the server-wide request throttler.",
            throttler.wait_count if throttler is not None else 0,
        )
        yield _counter(
            "throttled_ops",
            "Writes that waited in the request throttler longer than its stall time.",
            throttler.throttled_ops if throttler is not None else 0,
        )
        yield _counter(
            "stale_requests_dropped",
            "Writes dropped from the request throttler's queue: their connection closed.",
            throttler.stale_dropped if throttler is not None else 0,
        )
        if throttler is not None:
            yield summary_family(
                "request_throttle_queue_time_ms",
                "Milliseconds writes waited in the request throttler.",
                throttler.queue_time_ms,
            )
        yield _gauge(
            "zkreg_throttle_waiting_requests",
            "Writes waiting in the request throttler now.",
            throttler.waiting if throttler is not None else 0,
        )
        rate = factory.connection_rate
        yield _counter(
            "zkreg_connections_rate_limited",
            "Connections refused by the connection-rate limit per client IP.",
            rate.refused if rate is not None else 0,
        )
        yield _gauge(
            "zkreg_read_view_zxid",
            "The zxid of the last transaction in this session server's read view.",
            factory.last_zxid(),
        )


class DataServerCollector:
    """
    The data server's metrics: the tree, the sessions, the sequencer and the
    write-ahead log.

    @ivar data_server: the L{zkreg.data.server.DataServer}.
    @ivar link_factory: its TCP data-link factory (connected session servers), or None.
    @ivar local_session_servers: session servers in this process (1 standalone, else 0).
    @ivar snapshotter: the L{zkreg.persistence.durable.ForkSnapshotter} of its data
        directory, or None.
    """

    def __init__(
        self,
        data_server: Any,
        link_factory: Any = None,
        local_session_servers: int = 0,
        snapshotter: Any = None,
    ) -> None:
        self.data_server = data_server
        self.link_factory = link_factory
        self.local_session_servers = local_session_servers
        self.snapshotter = snapshotter

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not collect at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        server = self.data_server
        yield from tree_metrics(server.tree, len(server.sessions), server.last_zxid)
        links = len(self.link_factory.links) if self.link_factory is not None else 0
        yield from _writer_metrics(server.in_flight, self.local_session_servers + links)
        log = server.log
        fsync_seconds = getattr(log, "fsync_seconds", None)
        if fsync_seconds is not None:
            yield summary_family(
                "fsynctime",
                "Milliseconds of each fdatasync of the write-ahead log.",
                fsync_seconds,
                BASIC_QUANTILES,
                scale=1000.0,
            )
            yield summary_family(
                "zkreg_wal_fsync_seconds",
                "Seconds of each fdatasync of the write-ahead log.",
                fsync_seconds,
            )
        batch_records = getattr(log, "batch_records", None)
        if batch_records is not None:
            yield summary_family(
                "zkreg_wal_group_commit_records",
                "Transactions written and synced together in one group commit.",
                batch_records,
            )
        if self.snapshotter is not None:
            yield from snapshot_metrics(self.snapshotter)


def snapshot_metrics(snapshotter: Any) -> Iterator[Metric]:
    """
    How the forked snapshots go: each C{fork} stops request handling for a time that
    grows with the process (the page tables are copied), which shows in write
    latency under load; an operator weighs it against the log replayed at restart
    when choosing C{snap_count}.
    """
    yield _counter(
        "zkreg_snapshots_taken",
        "Snapshots written, each by a forked child.",
        snapshotter.snapshots_taken,
    )
    yield _counter(
        "zkreg_snapshots_skipped",
        "Snapshots skipped because the previous one was still being written.",
        snapshotter.snapshots_skipped,
    )
    yield _gauge(
        "zkreg_snapshot_fork_pause_seconds",
        "Seconds the last snapshot's fork stopped request handling.",
        snapshotter.last_pause,
    )
    yield _gauge(
        "zkreg_snapshot_fork_pause_max_seconds",
        "The longest such pause since the server started.",
        snapshotter.longest_pause,
    )
    yield _gauge(
        "zkreg_snapshot_duration_seconds",
        "Seconds the last snapshot took, from the fork to the child's exit.",
        snapshotter.last_duration,
    )


def tree_metrics(tree: Any, sessions: int, last_zxid: int) -> Iterator[Metric]:
    """The metrics of a data server's tree: what a standby has too."""
    yield _gauge(
        "znode_count",
        "Znodes in the tree (the root counted twice, as ZooKeeper does).",
        tree.node_count() + 1,
    )
    yield _gauge(
        "ephemerals_count",
        "Ephemeral znodes.",
        sum(len(paths) for paths in tree.ephemerals.values()),
    )
    yield _gauge(
        "approximate_data_size",
        "Bytes of znode paths and data.",
        tree.approximate_data_size(),
    )
    yield _gauge("global_sessions", "Sessions tracked.", sessions)
    yield _gauge("zkreg_last_zxid", "The zxid of the last transaction applied.", last_zxid)


def _writer_metrics(in_flight: int, session_servers: int) -> Iterator[Metric]:
    """The metrics of the data server that orders writes (0 for a standby)."""
    yield _gauge("zkreg_in_flight_writes", "Writes sequenced and not yet durable.", in_flight)
    yield _gauge(
        "zkreg_session_servers",
        "Session servers fed by this data server (in this process and over the data link).",
        session_servers,
    )


class EtcdDataRoleCollector:
    """
    The metrics of a data server on etcd (L{zkreg.etcd_role.EtcdDataRoleService}):
    whether it is the active one, and the tree, sessions and log of the data server
    it runs now; while standing by, its warm tree as followed from the log.

    @ivar role: the L{zkreg.etcd_role.EtcdDataRoleService}.
    """

    def __init__(self, role: Any) -> None:
        self.role = role

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not collect at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        role = self.role
        active = role.state == "active" and role.data_server is not None
        yield _gauge(
            "zkreg_data_role_active",
            "1 while this data server is the active one of its etcd data tier (it orders "
            "the writes), 0 while it stands by or loads.",
            1 if active else 0,
        )
        yield _counter(
            "zkreg_data_takeovers",
            "Times this data server became the active one.",
            role.takeovers,
        )
        if active:
            yield from DataServerCollector(role.data_server, role.link_factory).collect()
            return
        tree = role.standby_tree()
        if tree is not None:
            yield from tree_metrics(tree, len(tree.sessions), tree.last_zxid)
            yield from _writer_metrics(0, 0)


def new_registry() -> CollectorRegistry:
    """
    A registry of this process's metrics, with the process collector (CPU, memory,
    file descriptors, as ZooKeeper's JVM exports); add role collectors to it.
    """
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """C{GET /metrics}: the registry in the Prometheus text format, built at once."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Any) -> bytes:
        # Built on the reactor thread: the collectors read live server state, and a
        # scrape costs well under a millisecond (no walks over the tree).
        body = generate_latest(self.registry)
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return body


def metrics_site(registry: CollectorRegistry) -> Site:
    """The web site of C{--metrics-listen}: C{/metrics}."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    return QuietSite(root)


def metrics_service(endpoint: str, registry: CollectorRegistry) -> service.Service:
    """The listener of C{--metrics-listen}, serving L{metrics_site}."""
    return strports.service(endpoint, metrics_site(registry))
