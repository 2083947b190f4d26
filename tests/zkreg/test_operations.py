"""
The operations endpoints of a real zkreg process, with real kazoo clients: Prometheus
metrics (checked by C{promtool}, named as ZooKeeper's Prometheus provider, following
the server's state) and the admin HTTP server (compared, command by command, with the
JSON keys of Apache ZooKeeper 3.8's AdminServer).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.failing_sync import FailingSync
from tests.support.ports import free_port
from tests.support.servers import (
    SERVLET_API_JAR,
    ZkregServer,
    ZooKeeperOracle,
    four_letter,
    unavailable_reason,
)
from tests.support.waiting import wait_until

#: ZooKeeper's Prometheus names whose "_count" suffix promtool's linter dislikes (it
#: reserves the suffix for summaries); kept so that ZooKeeper dashboards work.
ZOOKEEPER_COUNT_GAUGES = {
    "znode_count",
    "watch_count",
    "ephemerals_count",
    "auth_failed_count",
    "open_file_descriptor_count",
    "max_file_descriptor_count",
}

#: Names and types a ZooKeeper 3.8 dashboard reads (ZooKeeperServer.registerMetrics's
#: gauges, ServerMetrics' summaries and counters).
ZOOKEEPER_METRICS = {
    "znode_count": "gauge",
    "watch_count": "gauge",
    "ephemerals_count": "gauge",
    "num_alive_connections": "gauge",
    "outstanding_requests": "gauge",
    "approximate_data_size": "gauge",
    "packets_received": "gauge",
    "packets_sent": "gauge",
    "avg_latency": "gauge",
    "min_latency": "gauge",
    "max_latency": "gauge",
    "global_sessions": "gauge",
    "uptime": "gauge",
    "open_file_descriptor_count": "gauge",
    "max_file_descriptor_count": "gauge",
    "readlatency": "summary",
    "updatelatency": "summary",
    "fsynctime": "summary",
    "connection_rejected": "counter",
}

ZKREG_METRICS = {
    "zkreg_data_link_lag_seconds": "summary",
    "zkreg_wal_group_commit_records": "summary",
    "zkreg_wal_fsync_seconds": "summary",
    "zkreg_session_servers": "gauge",
    "zkreg_watch_fanout_seconds": "summary",
    "zkreg_snapshots_taken": "counter",
    "zkreg_snapshots_skipped": "counter",
    "zkreg_snapshot_fork_pause_seconds": "gauge",
    "zkreg_snapshot_fork_pause_max_seconds": "gauge",
    "zkreg_snapshot_duration_seconds": "gauge",
}


def http_get(url: str) -> tuple[int, bytes]:
    """@return: the status and body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class OperatedZkreg(ZkregServer):
    """A zkreg with --metrics-listen and --admin-listen on free loopback ports."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.metrics_port = free_port()
        self.admin_port = free_port()
        super().__init__(
            extra_args=[
                "--metrics-listen",
                f"tcp:{self.metrics_port}:interface=127.0.0.1",
                "--admin-listen",
                f"tcp:{self.admin_port}:interface=127.0.0.1",
                *(extra_args or []),
            ]
        )

    def scrape(self) -> str:
        status, body = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200
        return body.decode("utf-8")

    def admin(self, path: str) -> tuple[int, Any]:
        status, body = http_get(f"http://127.0.0.1:{self.admin_port}/{path}")
        return status, json.loads(body)


@pytest.fixture(scope="module")
def operated() -> Iterator[OperatedZkreg]:
    server = OperatedZkreg()
    server.start()
    yield server
    server.cleanup()


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    for family in text_string_to_metric_families(text):
        for entry in family.samples:
            if entry.name == name and (labels is None or entry.labels == labels):
                return entry.value
    raise AssertionError(f"no sample {name} {labels or ''}")


def mntr(server: ZkregServer) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in server.four_letter("mntr").splitlines())


# -- metrics ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) absent")
def test_metrics_pass_promtool(operated, kazoo_client):
    """promtool finds no format error and no lint problem but ZooKeeper's own names."""
    client = kazoo_client(operated)
    client.ensure_path("/operations/promtool")
    text = operated.scrape()
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    problems = checked.stderr.decode().splitlines()
    # 0: clean; 3: lint problems only (1 would be a malformed exposition).
    assert checked.returncode in (0, 3), problems
    for problem in problems:
        name, _, what = problem.partition(" ")
        assert name in ZOOKEEPER_COUNT_GAUGES and '"_count" suffix' in what, problem


def test_every_metric_has_help_and_type(operated):
    text = operated.scrape()
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    types = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert helps == types
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        assert family.type in ("gauge", "counter", "summary"), family.name


def test_zookeeper_and_zkreg_names_and_types(operated):
    found = families(operated.scrape())
    for name, kind in {**ZOOKEEPER_METRICS, **ZKREG_METRICS}.items():
        assert name in found, name
        assert found[name].type == kind, name
    assert sample(operated.scrape(), "zkreg_session_servers") == 1  # standalone: itself


def test_metrics_follow_the_server(operated, kazoo_client):
    """Real kazoo traffic moves the figures, which agree with mntr (one source)."""
    before = operated.scrape()
    client = kazoo_client(operated)
    client.ensure_path("/operations/follow")
    for index in range(5):
        client.create(f"/operations/follow/n{index}", b"x" * 10)
    client.create("/operations/follow/eph", b"", ephemeral=True)
    client.get("/operations/follow/n0", watch=lambda event: None)
    client.set("/operations/follow/n1", b"y")
    other = kazoo_client(operated)
    other.exists("/operations/follow/n1", watch=lambda event: None)
    client.set("/operations/follow/n1", b"z")  # fires the other client's watch
    after = operated.scrape()
    figures = mntr(operated)
    assert sample(after, "znode_count") == int(figures["zk_znode_count"])
    assert sample(after, "ephemerals_count") == int(figures["zk_ephemerals_count"]) >= 1
    assert sample(after, "approximate_data_size") == int(figures["zk_approximate_data_size"])
    assert sample(after, "watch_count") == int(figures["zk_watch_count"]) >= 1
    assert sample(after, "num_alive_connections") >= 2
    assert sample(after, "updatelatency_count") >= sample(before, "updatelatency_count") + 8
    assert sample(after, "readlatency_count") > sample(before, "readlatency_count")
    assert sample(after, "packets_received") > sample(before, "packets_received")
    assert sample(after, "zkreg_wal_group_commit_records_count") > sample(
        before, "zkreg_wal_group_commit_records_count"
    )
    assert sample(after, "fsynctime_count") > sample(before, "fsynctime_count")
    assert sample(after, "zkreg_watch_notifications_total") > sample(
        before, "zkreg_watch_notifications_total"
    )
    assert sample(after, "zkreg_watch_fanout_seconds_count") > sample(
        before, "zkreg_watch_fanout_seconds_count"
    )
    assert (
        sample(after, "zkreg_data_link_lag_seconds_count")
        >= sample(before, "zkreg_data_link_lag_seconds_count") + 8
    )
    assert sample(after, "zkreg_last_zxid") == sample(after, "zkreg_read_view_zxid") > 0


def test_snapshot_metrics_follow_the_snapshots(kazoo_client):
    """
    With a snapshot due every few writes, the snapshots taken are counted and the
    last fork's pause and the snapshot's duration are reported, agreeing with the
    snapshot files in the data directory.
    """
    server = OperatedZkreg(["--snap-count", "10"])
    try:
        server.start()
        before = server.scrape()
        assert sample(before, "zkreg_snapshots_taken_total") == 0
        assert sample(before, "zkreg_snapshot_fork_pause_seconds") == 0
        client = kazoo_client(server)
        for index in range(40):
            client.create(f"/snapshot-metrics-{index}", b"x")
        after = wait_until(
            lambda: (
                (text := server.scrape())
                and sample(text, "zkreg_snapshots_taken_total") >= 2
                and text
            ),
            timeout=30,
            message="two snapshots taken",
        )
        assert 0 < sample(after, "zkreg_snapshot_fork_pause_seconds") < 5
        assert sample(after, "zkreg_snapshot_fork_pause_max_seconds") >= sample(
            after, "zkreg_snapshot_fork_pause_seconds"
        )
        assert sample(after, "zkreg_snapshot_duration_seconds") > 0
        written = list(server.data_dir.glob("snapshot.*"))
        assert written, "no snapshot file in the data directory"
    finally:
        server.cleanup()


def test_split_processes_expose_their_own_parts(kazoo_client):
    """
    A data server (with its own session server) and a session server of it: the
    session server reports connections, latencies and its commit-stream lag but not
    the tree; the data server counts both session servers.
    """
    link_port = free_port()
    data = OperatedZkreg(["--data-link-listen", f"tcp:{link_port}:interface=127.0.0.1"])
    session = None
    try:
        data.start()
        session = OperatedZkreg(
            ["--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}"]
        )
        session.start()
        client = kazoo_client(session)
        client.ensure_path("/operations/split")
        for index in range(3):
            client.create(f"/operations/split/n{index}", b"v")
        session_metrics = session.scrape()
        session_families = families(session_metrics)
        assert "znode_count" not in session_families
        assert "zkreg_wal_fsync_seconds" not in session_families
        assert sample(session_metrics, "num_alive_connections") >= 1
        assert sample(session_metrics, "updatelatency_count") >= 4
        assert sample(session_metrics, "zkreg_data_link_lag_seconds_count") >= 4
        data_metrics = data.scrape()
        assert sample(data_metrics, "zkreg_session_servers") == 2
        assert sample(data_metrics, "znode_count") >= 9
        assert sample(data_metrics, "zkreg_last_zxid") >= sample(
            session_metrics, "zkreg_read_view_zxid"
        )
        assert session.admin("readyz") == (200, {"status": "ok"})
        status, srvr = session.admin("commands/srvr")
        assert status == 200 and srvr["node_count"] == sample(data.scrape(), "znode_count")
    finally:
        if session is not None:
            session.cleanup()
        data.cleanup()


def test_data_role_admin_refers_to_session_servers(tmp_path):
    """A data-only server answers its probes and metrics, and says where cons are."""
    link_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    launcher = ZkregServer(workdir=str(tmp_path))  # for its environment and cwd
    argv = [
        *launcher.command()[:3],
        "-n",
        "--pidfile=",
        "zkreg",
        "--role",
        "data",
        "--data-dir",
        str(tmp_path / "data"),
        "--data-link-listen",
        f"tcp:{link_port}:interface=127.0.0.1",
        "--metrics-listen",
        f"tcp:{metrics_port}:interface=127.0.0.1",
        "--admin-listen",
        f"tcp:{admin_port}:interface=127.0.0.1",
    ]
    with open(tmp_path / "data.log", "wb") as log:
        process = subprocess.Popen(
            argv, cwd=launcher.cwd(), env=launcher.environment(), stdout=log, stderr=log
        )
    try:
        wait_until(lambda: _answers(admin_port), timeout=30, message="data server's admin")
        status, body = http_get(f"http://127.0.0.1:{admin_port}/commands/cons")
        assert status == 503
        assert "ask a session server" in json.loads(body)["error"]
        assert http_get(f"http://127.0.0.1:{admin_port}/readyz")[0] == 200
        status, text = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        found = families(text.decode())
        assert "znode_count" in found and "num_alive_connections" not in found
        assert sample(text.decode(), "zkreg_session_servers") == 0
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_unknown_metrics_path_is_404(operated):
    status, _ = http_get(f"http://127.0.0.1:{operated.metrics_port}/nothing")
    assert status == 404


# -- admin HTTP ------------------------------------------------------------------------


def test_probes(operated):
    assert operated.admin("healthz") == (200, {"status": "ok"})
    assert operated.admin("readyz") == (200, {"status": "ok"})


def test_unknown_command(operated):
    assert operated.admin("commands/bogus") == (
        404,
        {"command": "bogus", "error": "Unknown command: bogus"},
    )


def test_commands_answer_the_four_letter_words_figures(operated, kazoo_client):
    """The JSON and the 4lw text render the same figures."""
    client = kazoo_client(operated)
    client.ensure_path("/operations/same")
    client.get("/operations/same", watch=lambda event: None)
    status, mntr_json = operated.admin("commands/mntr")
    assert status == 200
    assert mntr_json["command"] == "monitor" and mntr_json["error"] is None
    text = mntr(operated)
    for key in ("znode_count", "watch_count", "ephemerals_count", "version", "server_state"):
        assert str(mntr_json[key]) == text[f"zk_{key}"], key
    _, wchc = operated.admin("commands/wchc")
    assert wchc["command"] == "watches"
    assert ["/operations/same"] in list(wchc["session_id_to_watched_paths"].values())
    assert four_letter(operated.port, "ruok") == "imok"
    assert operated.admin("commands/ruok") == (200, {"command": "ruok", "error": None})


#: The admin commands compared with ZooKeeper, by the name requested.
COMPARED_COMMANDS = [
    "ruok",
    "srvr",
    "server_stats",
    "stat",
    "conf",
    "configuration",
    "cons",
    "connections",
    "dump",
    "envi",
    "environment",
    "mntr",
    "monitor",
    "wchs",
    "watch_summary",
    "wchc",
    "watches",
    "wchp",
    "watches_by_path",
    "dirs",
    "isro",
    "last_snapshot",
    "leader",
]


@pytest.fixture(scope="module")
def admin_oracle() -> Iterator[ZooKeeperOracle]:
    reason = unavailable_reason("zookeeper")
    if reason is None and not SERVLET_API_JAR.exists():
        reason = f"{SERVLET_API_JAR} absent (Debian libservlet-api-java)"
    if reason is not None:
        pytest.skip(f"ZooKeeper's AdminServer unavailable: {reason}")
    server = ZooKeeperOracle(admin_port=free_port())
    server.start()
    wait_until(
        lambda: _answers(server.admin_port),
        timeout=30,
        message="ZooKeeper's AdminServer answering",
    )
    yield server
    server.cleanup()


def _answers(port: int | None) -> bool:
    try:
        return http_get(f"http://127.0.0.1:{port}/commands/ruok")[0] == 200
    except OSError:
        return False


def _key_shape(value: Any, top: bool = True) -> Any:
    """The keys of a JSON answer, recursively; map keys that are data become '*'."""
    if isinstance(value, dict):
        keys = {}
        for key, inner in value.items():
            if top and key.endswith("_per_namespace"):
                continue
            is_data = key.isdigit() or key.startswith("/")
            keys["*" if is_data else key] = _key_shape(inner, top=False)
        return keys
    if isinstance(value, list):
        shapes = [_key_shape(item, top=False) for item in value if isinstance(item, dict)]
        return shapes[:1]
    return type(value).__name__ if value is None else "value"


def _without_namespaces(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if "_per_namespace" not in key}


@pytest.mark.parametrize("name", COMPARED_COMMANDS)
def test_command_keys_as_zookeeper(name, operated, admin_oracle, kazoo_client):
    """
    Each command answers with ZooKeeper's JSON keys (nested ones too), its primary
    command name, and its status; the same kazoo activity on both servers first.
    """
    for server in (admin_oracle, operated):
        client = kazoo_client(server)
        client.ensure_path("/operations/compare")
        client.create("/operations/compare/eph", b"e", ephemeral=True, sequence=True)
        client.get("/operations/compare", watch=lambda event: None)
    zk_status, zk_body = http_get(f"http://127.0.0.1:{admin_oracle.admin_port}/commands/{name}")
    status, ours = operated.admin(f"commands/{name}")
    theirs = json.loads(zk_body)
    assert status == zk_status
    assert ours.get("command") == theirs.get("command")
    assert _key_shape(_without_namespaces(ours)) == _key_shape(_without_namespaces(theirs))


class FailingDiskOperatedZkreg(FailingSync, OperatedZkreg):
    """An operated zkreg whose log syncs fail while C{marker} exists."""


def test_health_probes_follow_the_data_tier_refusing_writes(kazoo_client):
    from kazoo.exceptions import SystemZookeeperError

    server = FailingDiskOperatedZkreg()
    try:
        server.start()
        client = kazoo_client(server)
        client.ensure_path("/operations/disk")
        assert server.admin("healthz") == (200, {"status": "ok"})
        server.marker.touch()
        with pytest.raises(SystemZookeeperError):
            client.set("/operations/disk", b"lost")
        status, body = server.admin("healthz")
        assert status == 503 and body["status"] == "failing"
        assert "writes refused" in body["problems"][0]
        assert "No space left on device" in body["problems"][0]
        assert server.admin("readyz")[0] == 503
        status, ruok = server.admin("commands/ruok")
        assert status == 200 and "writes refused" in ruok["error"]
        assert client.get("/operations/disk")[0] == b""  # reads go on
        # The disk is back: the log recovers by itself, and so do the probes.
        server.marker.unlink()
        wait_until(lambda: server.admin("healthz")[0] == 200, timeout=30, message="healthy again")
        assert server.admin("readyz") == (200, {"status": "ok"})
        assert server.admin("commands/ruok") == (200, {"command": "ruok", "error": None})
    finally:
        server.cleanup()
