"""
ZooKeeper's four-letter words, answered in ZooKeeper 3.8's formats.

srvr, stat and mntr are read by monitoring tools line by line, so their text matches
ZooKeeper's exactly (checked against a running 3.8); the others follow it as closely
as zkreg's facts allow.  mntr lists ZooKeeper's key set in ZooKeeper's order; the keys
zkreg cannot compute (JVM, quorum and request-processor internals) carry the value an
idle standalone ZooKeeper reports (0, 0.0 or -1), see L{MNTR_COMPUTED}.
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
from zkreg.session.stats import java_double, rounded_average

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory
    from zkreg.session.protocol import ClientConnection

#: Every four-letter word zkreg answers.
FOUR_LETTER_WORDS = frozenset(
    {
        "ruok",
        "srvr",
        "stat",
        "conf",
        "cons",
        "crst",
        "dump",
        "envi",
        "mntr",
        "wchs",
        "wchc",
        "wchp",
        "dirs",
        "isro",
        "srst",
    }
)

_WORDS_BY_PREFIX = {word.encode("ascii"): word for word in FOUR_LETTER_WORDS}

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


def four_letter_word_of(buf: bytes) -> str | None:
    """
    @return: the four-letter word that C{buf} starts with, or L{None} (a length).
    """
    return _WORDS_BY_PREFIX.get(bytes(buf[:4]))


def _hex(value: int) -> str:
    """Java's C{Long.toHexString}: two's complement for negatives."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:x}"


def _java_date(seconds: float) -> str:
    """Java's C{Date.toString} in UTC."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(seconds))


def answer_four_letter_word(
    factory: SessionServerFactory, word: str, connection: ClientConnection
) -> str:
    """
    @return: the full text answering C{word}, or the refusal when not whitelisted.
    """
    allowed = factory.config.four_letter_words
    if "*" not in allowed and word not in allowed:
        return f"{word} is not executed because it is not in the whitelist.\n"
    return _ANSWERS[word](factory)


# -- facts from the data tier ----------------------------------------------------------


def _data_fact(factory: SessionServerFactory, name: str, default: Any) -> Any:
    info = factory.data_info
    if info is None:
        return default
    value = getattr(info, name, None)
    if value is None:
        return default
    return value() if callable(value) else value


def _node_count(factory: SessionServerFactory) -> int:
    return int(_data_fact(factory, "node_count", 0))


def _ephemerals_by_session(factory: SessionServerFactory) -> dict[int, list[str]]:
    return dict(_data_fact(factory, "ephemerals_by_session", {}))


def _sessions(factory: SessionServerFactory) -> dict[int, tuple[int, float]]:
    """session id -> (timeout ms, expiry time in seconds since the epoch)."""
    return dict(_data_fact(factory, "session_expiries", {}))


def _directory_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


# -- the answers -------------------------------------------------------------------------


def _latency_line(factory: SessionServerFactory) -> str:
    stats = factory.stats
    return (
        f"Latency min/avg/max: {stats.min_latency_ms}/"
        f"{java_double(stats.avg_latency)}/{stats.max_latency_ms}\n"
    )


def _server_stats(factory: SessionServerFactory) -> str:
    stats = factory.stats
    return (
        _latency_line(factory)
        + f"Received: {stats.packets_received}\n"
        + f"Sent: {stats.packets_sent}\n"
        + f"Connections: {len(factory.connections)}\n"
        + f"Outstanding: {_outstanding(factory)}\n"
        + f"Zxid: 0x{_hex(factory.last_zxid())}\n"
        + "Mode: standalone\n"
        + f"Node count: {_node_count(factory)}\n"
    )


def _outstanding(factory: SessionServerFactory) -> int:
    return sum(connection.outstanding for connection in factory.connections)


def _srvr(factory: SessionServerFactory) -> str:
    return f"Zookeeper version: {version_string()}\n" + _server_stats(factory)


def _connection_line(connection: ClientConnection, brief: bool) -> str:
    interest = "0" if connection.four_letter is not None else "1"
    text = (
        f" {connection.peer}[{interest}](queued={connection.outstanding},"
        f"recved={connection.packets_received},sent={connection.packets_sent}"
    )
    if not brief and connection.session_id:
        average = (
            connection.total_latency_ms // connection.latency_count
            if connection.latency_count
            else 0
        )
        text += (
            f",sid=0x{_hex(connection.session_id)},lop={connection.last_op},"
            f"est={connection.established_ms},to={connection.timeout_ms}"
        )
        if connection.last_cxid >= 0:
            text += f",lcxid=0x{_hex(connection.last_cxid)}"
        text += (
            f",lzxid=0x{_hex(connection.last_zxid)},lresp={connection.last_response_ms},"
            f"llat={connection.last_latency_ms},minlat={connection.min_latency_ms},"
            f"avglat={average},maxlat={connection.max_latency_ms}"
        )
    return text + ")"


def _stat(factory: SessionServerFactory) -> str:
    clients = "".join(
        _connection_line(connection, True) + "\n" for connection in factory.connections
    )
    return f"Zookeeper version: {version_string()}\nClients:\n{clients}\n" + _server_stats(factory)


def _cons(factory: SessionServerFactory) -> str:
    lines = "".join(
        _connection_line(connection, False) + "\n" for connection in factory.connections
    )
    return lines + "\n"


def _conf(factory: SessionServerFactory) -> str:
    config = factory.config
    listen = config.listen
    port = "-1"
    for part in listen.split(":")[1:]:
        if part.isdigit():
            port = part
            break
    data_dir = os.path.abspath(config.data_dir)
    size = _directory_size(data_dir)
    return (
        f"clientPort={port}\n"
        "secureClientPort=-1\n"
        f"dataDir={data_dir}\n"
        f"dataDirSize={size}\n"
        f"dataLogDir={data_dir}\n"
        f"dataLogSize={size}\n"
        f"tickTime={config.tick_time_ms}\n"
        f"maxClientCnxns={config.max_client_cnxns}\n"
        f"minSessionTimeout={config.min_timeout_ms}\n"
        f"maxSessionTimeout={config.max_timeout_ms}\n"
        "clientPortListenBacklog=-1\n"
        f"serverId={config.server_id}\n"
    )


def _crst(factory: SessionServerFactory) -> str:
    factory.reset_connection_stats()
    return "Connection stats reset.\n"


def _srst(factory: SessionServerFactory) -> str:
    factory.stats.reset()
    return "Server stats reset.\n"


def _dump(factory: SessionServerFactory) -> str:
    sessions = _sessions(factory)
    by_expiry: dict[float, list[int]] = {}
    for session_id, (_timeout, expires_at) in sessions.items():
        by_expiry.setdefault(expires_at, []).append(session_id)
    out = ["SessionTracker dump:\n", f"Session Sets ({len(by_expiry)})/({len(sessions)}):\n"]
    for expires_at in sorted(by_expiry):
        members = by_expiry[expires_at]
        out.append(f"{len(members)} expire at {_java_date(expires_at)}:\n")
        for session_id in members:
            out.append(f"\t0x{_hex(session_id)}\n")
    ephemerals = {sid: paths for sid, paths in _ephemerals_by_session(factory).items() if paths}
    out.append("ephemeral nodes dump:\n")
    out.append(f"Sessions with Ephemerals ({len(ephemerals)}):\n")
    for session_id in sorted(ephemerals):
        out.append(f"0x{_hex(session_id)}:\n")
        for path in sorted(ephemerals[session_id]):
            out.append(f"\t{path}\n")
    connections = list(factory.connections)
    out.append("Connections dump:\n")
    out.append(f"Connections Sets (1)/({len(connections)}):\n")
    out.append(f"{len(connections)} expire at {_java_date(factory.clock.seconds())}:\n")
    for connection in connections:
        out.append(f"\tip: {connection.peer} sessionId: 0x{_hex(connection.session_id)}\n")
    return "".join(out)


def _envi(factory: SessionServerFactory) -> str:
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    entries = [
        ("zookeeper.version", version_string()),
        ("host.name", socket.gethostname()),
        ("java.version", platform.python_version()),
        ("java.vendor", platform.python_implementation()),
        ("java.home", sys.prefix),
        ("java.class.path", os.pathsep.join(sys.path)),
        ("java.library.path", os.environ.get("LD_LIBRARY_PATH", "")),
        ("java.io.tmpdir", os.environ.get("TMPDIR", "/tmp")),
        ("java.compiler", "<NA>"),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", getpass.getuser()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", "0MB"),
        ("os.memory.max", f"{maxrss_mb}MB"),
        ("os.memory.total", f"{maxrss_mb}MB"),
    ]
    return "Environment:\n" + "".join(f"{key}={value}\n" for key, value in entries)


def _wchs(factory: SessionServerFactory) -> str:
    by_watcher, by_path = factory.watches.data_watch_report()
    total = sum(len(paths) for paths in by_watcher.values())
    return f"{len(by_watcher)} connections watching {len(by_path)} paths\nTotal watches:{total}\n"


def _wchc(factory: SessionServerFactory) -> str:
    by_watcher, _ = factory.watches.data_watch_report()
    out = []
    for watcher, paths in by_watcher.items():
        out.append(f"0x{_hex(watcher.session_id)}\n")
        out.extend(f"\t{path}\n" for path in paths)
    return "".join(out) + "\n"


def _wchp(factory: SessionServerFactory) -> str:
    _, by_path = factory.watches.data_watch_report()
    out = []
    for path, watchers in by_path.items():
        out.append(f"{path}\n")
        out.extend(f"\t0x{_hex(watcher.session_id)}\n" for watcher in watchers)
    return "".join(out) + "\n"


def _dirs(factory: SessionServerFactory) -> str:
    size = _directory_size(factory.config.data_dir)
    return f"datadir_size: {size}\nlogdir_size: {size}\n"


def _open_fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


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
)


def _mntr(factory: SessionServerFactory) -> str:
    stats = factory.stats
    ephemerals = _ephemerals_by_session(factory)
    computed: dict[str, Any] = {
        "zk_version": version_string(),
        "zk_server_state": "standalone",
        "zk_ephemerals_count": sum(len(paths) for paths in ephemerals.values()),
        "zk_num_alive_connections": len(factory.connections),
        "zk_avg_latency": java_double(stats.avg_latency),
        "zk_min_latency": stats.min_latency_ms,
        "zk_max_latency": stats.max_latency_ms,
        "zk_outstanding_requests": _outstanding(factory),
        "zk_znode_count": _node_count(factory),
        "zk_global_sessions": len(_sessions(factory)),
        "zk_packets_sent": stats.packets_sent,
        "zk_packets_received": stats.packets_received,
        "zk_watch_count": factory.watches.watch_count(),
        "zk_auth_failed_count": stats.auth_failed,
        "zk_max_file_descriptor_count": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "zk_open_file_descriptor_count": _open_fd_count(),
        "zk_approximate_data_size": int(_data_fact(factory, "approximate_data_size", 0)),
        "zk_uptime": int((factory.clock.seconds() - factory.started_at) * 1000),
        "zk_connection_rejected": stats.connections_rejected,
        "zk_connection_request_count": stats.connection_requests,
        "zk_connection_revalidate_count": stats.connection_revalidates,
        "zk_sessionless_connections_expired": stats.sessionless_expired,
    }
    lines = []
    for key in MNTR_PLAIN_KEYS:
        value = computed.get(key, MNTR_PLAIN_DEFAULTS.get(key, "0"))
        lines.append(f"{key}\t{value}\n")
    zero_average = java_double(rounded_average(0, 0))
    for name, with_percentiles in MNTR_SUMMARIES:
        lines.append(f"zk_avg_{name}\t{zero_average}\n")
        for prefix in ("min", "max", "cnt", "sum"):
            lines.append(f"zk_{prefix}_{name}\t0\n")
        if with_percentiles:
            for prefix in ("p50", "p95", "p99", "p999"):
                lines.append(f"zk_{prefix}_{name}\t0\n")
    lines.extend(factory.namespace_stats.mntr_lines())
    return "".join(lines)


_ANSWERS = {
    "ruok": lambda factory: "imok",
    "srvr": _srvr,
    "stat": _stat,
    "conf": _conf,
    "cons": _cons,
    "crst": _crst,
    "dump": _dump,
    "envi": _envi,
    "mntr": _mntr,
    "wchs": _wchs,
    "wchc": _wchc,
    "wchp": _wchp,
    "dirs": _dirs,
    "isro": lambda factory: "rw",
    "srst": _srst,
}
