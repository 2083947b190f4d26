"""
ZooKeeper's four-letter words, answered in ZooKeeper 3.8's formats.

srvr, stat and mntr are read by monitoring tools line by line, so their text matches
ZooKeeper's exactly (checked against a running 3.8); the others follow it as closely
as zkreg's facts allow.  The figures come from L{zkreg.session.monitor}, which the
admin HTTP server renders as JSON: this module only formats them.  mntr lists
ZooKeeper's key set in ZooKeeper's order; the keys zkreg cannot compute (JVM, quorum
and request-processor internals) carry the value an idle standalone ZooKeeper reports
(0, 0.0 or -1), see L{zkreg.session.monitor.MNTR_COMPUTED}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkreg.session import monitor
from zkreg.session.monitor import COMPATIBLE_VERSION, MNTR_COMPUTED, version_string
from zkreg.session.stats import java_double

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory
    from zkreg.session.protocol import ClientConnection

__all__ = [
    "COMPATIBLE_VERSION",
    "FOUR_LETTER_WORDS",
    "MNTR_COMPUTED",
    "answer_four_letter_word",
    "four_letter_word_of",
    "version_string",
]

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


def four_letter_word_of(buf: bytes) -> str | None:
    """
    @return: the four-letter word that C{buf} starts with, or L{None} (a length).
    """
    return _WORDS_BY_PREFIX.get(bytes(buf[:4]))


def _hex(value: int) -> str:
    """Java's C{Long.toHexString}: two's complement for negatives."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:x}"


def format_value(value: Any) -> str:
    """A figure as ZooKeeper prints it in text: Java's rendering of doubles."""
    if isinstance(value, float):
        return java_double(value)
    return str(value)


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


# -- the answers -------------------------------------------------------------------------


def _server_stats_text(figures: dict[str, Any]) -> str:
    stats = figures["server_stats"]
    return (
        f"Latency min/avg/max: {stats['min_latency']}/"
        f"{java_double(stats['avg_latency'])}/{stats['max_latency']}\n"
        + f"Received: {stats['packets_received']}\n"
        + f"Sent: {stats['packets_sent']}\n"
        + f"Connections: {stats['num_alive_client_connections']}\n"
        + f"Outstanding: {stats['outstanding_requests']}\n"
        + f"Zxid: 0x{_hex(stats['last_processed_zxid'])}\n"
        + f"Mode: {stats['server_state']}\n"
        + f"Node count: {figures['node_count']}\n"
        + _data_tier_text(figures.get("data_tier"))
    )


def _data_tier_text(facts: dict[str, Any] | None) -> str:
    """A session server's lines about its data tier (none in one process)."""
    if facts is None:
        return ""
    return (
        f"Data server: {facts['data_server'] or 'none'}\n"
        + f"Data link: {facts['link_state']}\n"
        + f"Replica zxid lag: {facts['zxid_lag']}\n"
    )


def _srvr(factory: SessionServerFactory) -> str:
    figures = monitor.server_stats(factory)
    text = f"Zookeeper version: {figures['version']}\n" + _server_stats_text(figures)
    refused = _write_failure(factory)
    if refused:
        text += f"Writes refused: {refused}\n"
    return text


def _write_failure(factory: SessionServerFactory) -> str | None:
    """Why the data tier refuses writes (a full disk...), or L{None} when healthy."""
    return monitor.data_fact(factory, "write_failure", None)


def _ruok(factory: SessionServerFactory) -> str:
    """
    C{imok} only while writes are taken: a server refusing them (its log failed and
    has not recovered yet) says why instead, so a health check never passes on it.
    """
    refused = _write_failure(factory)
    return "imok" if not refused else f"not ok: writes refused: {refused}\n"


def _connection_line(info: dict[str, Any]) -> str:
    text = (
        f" /{info['remote_socket_address']}[{info['interest_ops']}]"
        f"(queued={info['outstanding_requests']},"
        f"recved={info['packets_received']},sent={info['packets_sent']}"
    )
    if "session_id" in info:
        text += (
            f",sid=0x{_hex(info['session_id'])},lop={info['last_operation']},"
            f"est={info['established']},to={info['session_timeout']}"
        )
        if info["last_cxid"] >= 0:
            text += f",lcxid=0x{_hex(info['last_cxid'])}"
        text += (
            f",lzxid=0x{_hex(info['last_zxid'])},lresp={info['last_response_time']},"
            f"llat={info['last_latency']},minlat={info['min_latency']},"
            f"avglat={info['avg_latency']},maxlat={info['max_latency']}"
        )
    return text + ")"


def _stat(factory: SessionServerFactory) -> str:
    figures = monitor.stat(factory)
    clients = "".join(_connection_line(info) + "\n" for info in figures["connections"])
    return f"Zookeeper version: {figures['version']}\nClients:\n{clients}\n" + _server_stats_text(
        figures
    )


def _cons(factory: SessionServerFactory) -> str:
    figures = monitor.connections(factory)
    return "".join(_connection_line(info) + "\n" for info in figures["connections"]) + "\n"


def _conf(factory: SessionServerFactory) -> str:
    figures = monitor.configuration(factory)
    size = monitor.directory_size(figures["data_dir"])
    return (
        f"clientPort={figures['client_port']}\n"
        "secureClientPort=-1\n"
        f"dataDir={figures['data_dir']}\n"
        f"dataDirSize={size}\n"
        f"dataLogDir={figures['data_log_dir']}\n"
        f"dataLogSize={size}\n"
        f"tickTime={figures['tick_time']}\n"
        f"maxClientCnxns={figures['max_client_cnxns']}\n"
        f"minSessionTimeout={figures['min_session_timeout']}\n"
        f"maxSessionTimeout={figures['max_session_timeout']}\n"
        f"clientPortListenBacklog={figures['client_port_listen_backlog']}\n"
        f"serverId={figures['server_id']}\n"
    )


def _crst(factory: SessionServerFactory) -> str:
    factory.reset_connection_stats()
    return "Connection stats reset.\n"


def _srst(factory: SessionServerFactory) -> str:
    factory.stats.reset()
    return "Server stats reset.\n"


def _dump(factory: SessionServerFactory) -> str:
    figures = monitor.dump(factory)
    by_expiry = figures["expiry_time_to_session_ids"]
    session_total = sum(len(members) for members in by_expiry.values())
    out = ["SessionTracker dump:\n", f"Session Sets ({len(by_expiry)})/({session_total}):\n"]
    for expiry_ms, members in by_expiry.items():
        out.append(f"{len(members)} expire at {monitor.java_date(expiry_ms / 1000.0)}:\n")
        for session_id in members:
            out.append(f"\t0x{_hex(session_id)}\n")
    ephemerals = figures["session_id_to_ephemeral_paths"]
    out.append("ephemeral nodes dump:\n")
    out.append(f"Sessions with Ephemerals ({len(ephemerals)}):\n")
    for session_id, paths in ephemerals.items():
        out.append(f"0x{_hex(session_id)}:\n")
        for path in paths:
            out.append(f"\t{path}\n")
    connections = list(factory.connections)
    out.append("Connections dump:\n")
    out.append(f"Connections Sets (1)/({len(connections)}):\n")
    out.append(f"{len(connections)} expire at {monitor.java_date(factory.clock.seconds())}:\n")
    for connection in connections:
        out.append(f"\tip: {connection.peer} sessionId: 0x{_hex(connection.session_id)}\n")
    return "".join(out)


def _envi(factory: SessionServerFactory) -> str:
    figures = monitor.environment(factory)
    return "Environment:\n" + "".join(f"{key}={value}\n" for key, value in figures.items())


def _wchs(factory: SessionServerFactory) -> str:
    figures = monitor.watch_summary(factory)
    return (
        f"{figures['num_connections']} connections watching {figures['num_paths']} paths\n"
        f"Total watches:{figures['num_total_watches']}\n"
    )


def _wchc(factory: SessionServerFactory) -> str:
    out = []
    for session_id, paths in monitor.watches(factory)["session_id_to_watched_paths"].items():
        out.append(f"0x{_hex(session_id)}\n")
        out.extend(f"\t{path}\n" for path in paths)
    return "".join(out) + "\n"


def _wchp(factory: SessionServerFactory) -> str:
    out = []
    for path, session_ids in monitor.watches_by_path(factory)["path_to_session_ids"].items():
        out.append(f"{path}\n")
        out.extend(f"\t0x{_hex(session_id)}\n" for session_id in session_ids)
    return "".join(out) + "\n"


def _dirs(factory: SessionServerFactory) -> str:
    figures = monitor.dirs(factory)
    return f"datadir_size: {figures['datadir_size']}\nlogdir_size: {figures['logdir_size']}\n"


def _mntr(factory: SessionServerFactory) -> str:
    return "".join(f"zk_{key}\t{format_value(value)}\n" for key, value in monitor.monitor(factory))


_ANSWERS = {
    "ruok": _ruok,
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
