"""
The figures of ZooKeeper's monitoring commands, computed once for two renderings: the
four-letter words (L{zkreg.session.fourletter}, text) and the admin HTTP server
(L{zkreg.admin}, JSON), and read by the Prometheus collector (L{zkreg.metrics}).

Each function returns the figures of one command keyed as ZooKeeper 3.8's AdminServer
names them (C{Commands.java}), so the JSON rendering is the dict itself and the text
rendering only picks and formats.  Every figure has one source here.
"""

from __future__ import annotations

import getpass
import os
import platform
import resource
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from zkreg.session.mntr_keys import MNTR_PLAIN_DEFAULTS, MNTR_PLAIN_KEYS, MNTR_SUMMARIES
from zkreg.session.stats import rounded_average

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory
    from zkreg.session.protocol import ClientConnection

#: The ZooKeeper version zkreg speaks for; tools parse C{major.minor.patch-}.
COMPATIBLE_VERSION = "3.8.0"


def version_string() -> str:
    """What srvr/stat/mntr/envi report as the version."""
    return f"{COMPATIBLE_VERSION}-zkreg-{_zkreg_version()}, built on 2026-11-24 00:00 UTC"


def _zkreg_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "0.1.0.dev0"
    try:
        return version("zkreg")
    except PackageNotFoundError:
        return "0.1.0.dev0"


# -- facts from the data tier ----------------------------------------------------------


def data_fact(factory: SessionServerFactory, name: str, default: Any) -> Any:
    """
    One fact of the data tier (L{zkreg.session.assembly.DataTierFacts} or
    L{zkreg.session.assembly.ReplicaFacts}), or C{default} when it has none.
    """
    info = factory.data_info
    if info is None:
        return default
    value = getattr(info, name, None)
    if value is None:
        return default
    return value() if callable(value) else value


def node_count(factory: SessionServerFactory) -> int:
    """ZooKeeper's node count (its root counted twice)."""
    return int(data_fact(factory, "node_count", 0))


def ephemerals_by_session(factory: SessionServerFactory) -> dict[int, list[str]]:
    """Session id -> its ephemeral paths."""
    return dict(data_fact(factory, "ephemerals_by_session", {}))


def ephemerals_count(factory: SessionServerFactory) -> int:
    """How many ephemeral nodes exist."""
    counted = data_fact(factory, "ephemerals_count", None)
    if counted is not None:
        return int(counted)
    return sum(len(paths) for paths in ephemerals_by_session(factory).values())


def session_expiries(factory: SessionServerFactory) -> dict[int, tuple[int, float]]:
    """Session id -> (timeout ms, expiry time in seconds since the epoch)."""
    return dict(data_fact(factory, "session_expiries", {}))


def session_count(factory: SessionServerFactory) -> int:
    """How many sessions the data tier tracks (ZooKeeper's global sessions)."""
    counted = data_fact(factory, "session_count", None)
    if counted is not None:
        return int(counted)
    return len(session_expiries(factory))


def approximate_data_size(factory: SessionServerFactory) -> int:
    """ZooKeeper's approximate data size: path and data bytes of every node."""
    return int(data_fact(factory, "approximate_data_size", 0))


def directory_size(path: str) -> int:
    """Bytes of the files under C{path} (ZooKeeper's dataDirSize)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def outstanding_requests(factory: SessionServerFactory) -> int:
    """Requests received and not yet answered, over every connection."""
    return sum(connection.outstanding for connection in factory.connections)


def open_file_descriptor_count() -> int:
    """File descriptors this process has open."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def max_file_descriptor_count() -> int:
    """The soft limit on open file descriptors."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_port(factory: SessionServerFactory) -> int:
    """The port of the C{--listen} endpoint, -1 when it has none (a UNIX socket)."""
    for part in factory.config.listen.split(":")[1:]:
        if part.isdigit():
            return int(part)
    return -1


def uptime_ms(factory: SessionServerFactory) -> int:
    """Milliseconds since the session server started."""
    return int((factory.clock.seconds() - factory.started_at) * 1000)


# -- the commands ------------------------------------------------------------------------


def server_stats(factory: SessionServerFactory) -> dict[str, Any]:
    """srvr / server_stats."""
    stats = factory.stats
    data_dir_size = directory_size(factory.config.data_dir)
    figures: dict[str, Any] = {
        "version": version_string(),
        "read_only": False,
        "server_stats": {
            "packets_sent": stats.packets_sent,
            "packets_received": stats.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": _client_response(),
            "data_dir_size": data_dir_size,
            "log_dir_size": data_dir_size,
            "provider_null": False,
            "server_state": data_fact(factory, "server_state", "standalone"),
            "last_processed_zxid": factory.last_zxid(),
            "outstanding_requests": outstanding_requests(factory),
            "avg_latency": stats.avg_latency,
            "max_latency": stats.max_latency_ms,
            "min_latency": stats.min_latency_ms,
            "num_alive_client_connections": len(factory.connections),
            "uptime": uptime_ms(factory),
            "auth_failed_count": stats.auth_failed,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
        },
        "client_response": _client_response(),
        "node_count": node_count(factory),
    }
    facts = data_tier(factory)
    if facts is not None:  # split mode only: ZooKeeper has no such key
        figures["data_tier"] = facts
    return figures


def _client_response() -> dict[str, int]:
    # zkreg does not track response sizes; ZooKeeper's values before any response.
    return {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1}


def stat(factory: SessionServerFactory) -> dict[str, Any]:
    """stat / stats: server_stats plus the connections, briefly."""
    figures = server_stats(factory)
    figures["connections"] = [connection_info(c, brief=True) for c in factory.connections]
    figures["secure_connections"] = []
    return figures


def connection_info(connection: ClientConnection, brief: bool) -> dict[str, Any]:
    """One connection as cons (C{brief=False}) or stat (C{brief=True}) lists it."""
    info: dict[str, Any] = {
        "remote_socket_address": connection.peer.lstrip("/"),
        "interest_ops": 0 if connection.four_letter is not None else 1,
        "outstanding_requests": connection.outstanding,
        "packets_received": connection.packets_received,
        "packets_sent": connection.packets_sent,
    }
    if not brief and connection.session_id:
        average = (
            connection.total_latency_ms // connection.latency_count
            if connection.latency_count
            else 0
        )
        info.update(
            {
                "session_id": connection.session_id,
                "last_operation": connection.last_op,
                "established": connection.established_ms,
                "session_timeout": connection.timeout_ms,
                "last_cxid": connection.last_cxid,
                "last_zxid": connection.last_zxid,
                "last_response_time": connection.last_response_ms,
                "last_latency": connection.last_latency_ms,
                "min_latency": connection.min_latency_ms,
                "avg_latency": average,
                "max_latency": connection.max_latency_ms,
            }
        )
    return info


def connections(factory: SessionServerFactory) -> dict[str, Any]:
    """cons / connections."""
    return {
        "connections": [connection_info(c, brief=False) for c in factory.connections],
        "secure_connections": [],
    }


def configuration(factory: SessionServerFactory) -> dict[str, Any]:
    """conf / configuration."""
    config = factory.config
    data_dir = os.path.abspath(config.data_dir)
    return {
        "client_port": client_port(factory),
        "data_dir": data_dir,
        "data_log_dir": data_dir,
        "tick_time": config.tick_time_ms,
        "max_client_cnxns": config.max_client_cnxns,
        "min_session_timeout": config.min_timeout_ms,
        "max_session_timeout": config.max_timeout_ms,
        "server_id": config.server_id,
        "client_port_listen_backlog": -1,
    }


def dump(factory: SessionServerFactory) -> dict[str, Any]:
    """
    dump: sessions by expiry time (ms since the epoch) and ephemerals by session.
    """
    by_expiry: dict[int, list[int]] = {}
    for session_id, (_timeout, expires_at) in session_expiries(factory).items():
        by_expiry.setdefault(int(expires_at * 1000), []).append(session_id)
    ephemerals = {sid: paths for sid, paths in ephemerals_by_session(factory).items() if paths}
    return {
        "expiry_time_to_session_ids": {expiry: by_expiry[expiry] for expiry in sorted(by_expiry)},
        "session_id_to_ephemeral_paths": {
            session_id: sorted(ephemerals[session_id]) for session_id in sorted(ephemerals)
        },
    }


def environment(factory: SessionServerFactory) -> dict[str, Any]:
    """envi / environment: Python facts under ZooKeeper's Java key names."""
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return {
        "zookeeper.version": version_string(),
        "host.name": socket.gethostname(),
        "java.version": platform.python_version(),
        "java.vendor": platform.python_implementation(),
        "java.home": sys.prefix,
        "java.class.path": os.pathsep.join(sys.path),
        "java.library.path": os.environ.get("LD_LIBRARY_PATH", ""),
        "java.io.tmpdir": os.environ.get("TMPDIR", "/tmp"),
        "java.compiler": "<NA>",
        "os.name": platform.system(),
        "os.arch": platform.machine(),
        "os.version": platform.release(),
        "user.name": getpass.getuser(),
        "user.home": os.path.expanduser("~"),
        "user.dir": os.getcwd(),
        "os.memory.free": "0MB",
        "os.memory.max": f"{maxrss_mb}MB",
        "os.memory.total": f"{maxrss_mb}MB",
    }


def watch_summary(factory: SessionServerFactory) -> dict[str, Any]:
    """wchs / watch_summary."""
    connections, paths, total = factory.watches.data_watch_summary()
    return {
        "num_connections": connections,
        "num_paths": paths,
        "num_total_watches": total,
    }


def watches(factory: SessionServerFactory) -> dict[str, Any]:
    """wchc / watches: the watched paths of each session."""
    by_watcher, _ = factory.watches.data_watch_report()
    return {
        "session_id_to_watched_paths": {
            watcher.session_id: list(paths) for watcher, paths in by_watcher.items()
        }
    }


def watches_by_path(factory: SessionServerFactory) -> dict[str, Any]:
    """wchp / watches_by_path: the watching sessions of each path."""
    _, by_path = factory.watches.data_watch_report()
    return {
        "path_to_session_ids": {
            path: [watcher.session_id for watcher in watchers] for path, watchers in by_path.items()
        }
    }


def dirs(factory: SessionServerFactory) -> dict[str, Any]:
    """dirs: the sizes of the data and log directories (one directory in zkreg)."""
    size = directory_size(factory.config.data_dir)
    return {"datadir_size": size, "logdir_size": size}


#: The mntr keys zkreg computes; every other key has ZooKeeper's idle value.
MNTR_COMPUTED = (
    "zk_version",
    "zk_server_state",
    "zk_ephemerals_count",
    "zk_num_alive_connections",
    "zk_avg_latency",
    "zk_min_latency",
    "zk_max_latency",
    "zk_outstanding_requests",
    "zk_znode_count",
    "zk_global_sessions",
    "zk_packets_sent",
    "zk_packets_received",
    "zk_watch_count",
    "zk_auth_failed_count",
    "zk_max_file_descriptor_count",
    "zk_open_file_descriptor_count",
    "zk_approximate_data_size",
    "zk_uptime",
    "zk_connection_rejected",
    "zk_connection_request_count",
    "zk_connection_revalidate_count",
    "zk_sessionless_connections_expired",
    "zk_throttled_ops",
    "zk_stale_requests_dropped",
    "zk_request_throttle_wait_count",
)


def _idle_value(key: str) -> Any:
    text = MNTR_PLAIN_DEFAULTS.get(key, "0")
    return float(text) if "." in text else int(text)


def monitor(factory: SessionServerFactory) -> list[tuple[str, Any]]:
    """
    mntr / monitor: every key of ZooKeeper 3.8's mntr (without C{zk_}), in its order,
    with typed values (int, float or str).
    """
    stats = factory.stats
    throttler = factory.throttler
    computed: dict[str, Any] = {
        "zk_version": version_string(),
        "zk_server_state": data_fact(factory, "server_state", "standalone"),
        "zk_ephemerals_count": ephemerals_count(factory),
        "zk_num_alive_connections": len(factory.connections),
        "zk_avg_latency": stats.avg_latency,
        "zk_min_latency": stats.min_latency_ms,
        "zk_max_latency": stats.max_latency_ms,
        "zk_outstanding_requests": outstanding_requests(factory),
        "zk_znode_count": node_count(factory),
        "zk_global_sessions": session_count(factory),
        "zk_packets_sent": stats.packets_sent,
        "zk_packets_received": stats.packets_received,
        "zk_watch_count": factory.watches.watch_count(),
        "zk_auth_failed_count": stats.auth_failed,
        "zk_max_file_descriptor_count": max_file_descriptor_count(),
        "zk_open_file_descriptor_count": open_file_descriptor_count(),
        "zk_approximate_data_size": approximate_data_size(factory),
        "zk_uptime": uptime_ms(factory),
        "zk_connection_rejected": stats.connections_rejected,
        "zk_connection_request_count": stats.connection_requests,
        "zk_connection_revalidate_count": stats.connection_revalidates,
        "zk_sessionless_connections_expired": stats.sessionless_expired,
    }
    if throttler is not None:
        computed["zk_throttled_ops"] = throttler.throttled_ops
        computed["zk_stale_requests_dropped"] = throttler.stale_dropped
        computed["zk_request_throttle_wait_count"] = throttler.wait_count
    figures: list[tuple[str, Any]] = []
    for key in MNTR_PLAIN_KEYS:
        value = computed[key] if key in computed else _idle_value(key)
        figures.append((key[3:], value))
    zero_average = rounded_average(0, 0)
    for name, with_percentiles in MNTR_SUMMARIES:
        figures.append((f"avg_{name}", zero_average))
        for prefix in ("min", "max", "cnt", "sum"):
            figures.append((f"{prefix}_{name}", 0))
        if with_percentiles:
            for prefix in ("p50", "p95", "p99", "p999"):
                figures.append((f"{prefix}_{name}", 0))
    figures.extend(factory.namespace_stats.monitor_figures())
    figures.extend(data_tier_figures(factory))
    return figures


def data_tier(factory: SessionServerFactory) -> dict[str, Any] | None:
    """
    A session server's view of its data tier (split mode): the data server it follows
    (L{None} when none is linked), the link state, its replica's zxid lag and the
    requests held; L{None} in one process.
    """
    facts = data_fact(factory, "data_tier", None)
    return dict(facts) if facts is not None else None


def data_tier_figures(factory: SessionServerFactory) -> list[tuple[str, Any]]:
    """The mntr lines of L{data_tier} (none in one process)."""
    facts = data_tier(factory)
    if facts is None:
        return []
    return [
        ("zk_data_server", facts["data_server"] or "none"),
        ("zk_data_link_state", facts["link_state"]),
        ("zk_replica_zxid_lag", facts["zxid_lag"]),
        ("zk_data_link_held_requests", facts["held"]),
        ("zk_data_link_outages", facts["outages"]),
    ]


def is_read_only(factory: SessionServerFactory) -> dict[str, Any]:
    """isro / is_read_only: zkreg never serves in read-only mode."""
    return {"read_only": False}


def java_date(seconds: float) -> str:
    """Java's C{Date.toString} in UTC."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(seconds))
