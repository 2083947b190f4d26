"""
The data tier on etcd with real processes: one etcd member, two data servers
(C{--role data --etcd}), a session server given both (C{--data-server a,b}) and
kazoo clients.

  - one data server is active, the other a standby whose tree follows the log;
  - kill -9 of the active one under writes: the standby takes over, every
    acknowledged write is there exactly once, no session is lost, no client error;
    failover time (kill to the first write answered by the new leader) is printed;
  - SIGSTOP of the active one past its lease: the standby takes over and both session
    servers move to it within a bounded time (the list-following one notices the
    silence); after SIGCONT the old one writes nothing, says standby, no session
    server talks to it, and nothing is doubled.

Rounds of the kill loop: C{ZKREG_ETCD_ROUNDS} (2 by default, for CI).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until
from tests.support.writers import Writer

pytestmark = pytest.mark.timeout(400)

ROUNDS = int(os.environ.get("ZKREG_ETCD_ROUNDS", "2"))


class Tier:
    """etcd, two data servers and a session server."""

    def __init__(self, prefix: str) -> None:
        self.etcd = EtcdCluster(1)
        self.prefix = prefix
        self.data: list[EtcdDataServer] = []
        self.session: ZkregServer | None = None
        self.listed: ZkregServer | None = None

    def start(self) -> Tier:
        self.etcd.start()
        # A small snap-count: snapshots, log deletion and compaction happen under the
        # tests' writes (a standby's watch revision gets compacted: it reloads).
        options = ["--snap-count", "50"]
        first = EtcdDataServer(self.etcd.endpoints_option, self.prefix, options)
        first.start()
        wait_until(first.is_active, timeout=30, message="the first data server active")
        second = EtcdDataServer(self.etcd.endpoints_option, self.prefix, options)
        second.start()
        self.data = [first, second]
        # One session server follows the leader through etcd, one tries the list.
        self.session = ZkregServer(
            extra_args=[
                "--role",
                "session",
                "--etcd",
                self.etcd.endpoints_option,
                "--etcd-prefix",
                self.prefix,
                "--data-tier-timeout",
                "30000",
            ]
        )
        self.session.start()
        links = ",".join(server.link for server in self.data)
        self.listed = ZkregServer(
            extra_args=["--role", "session", "--data-server", links, "--data-tier-timeout", "30000"]
        )
        self.listed.start()
        return self

    def active(self) -> EtcdDataServer:
        return wait_until(
            lambda: next((server for server in self.data if server.is_active()), None),
            timeout=30,
            message="an active data server",
        )

    def standby_of(self, active: EtcdDataServer) -> EtcdDataServer:
        return next(server for server in self.data if server is not active)

    def stop(self) -> None:
        for session in (self.session, self.listed):
            if session is not None:
                session.cleanup()
        for server in self.data:
            server.resume()
            server.cleanup()
        self.etcd.stop()


@pytest.fixture(scope="module")
def tier():
    started = Tier("/zkreg-it")
    try:
        yield started.start()
    finally:
        started.stop()


def connect(server: ZkregServer):
    from kazoo.client import KazooClient

    kazoo = KazooClient(hosts=server.hosts, timeout=10.0)
    kazoo.start(timeout=30)
    return kazoo


@pytest.fixture
def client(tier):
    """A kazoo client of the session server following the leader through etcd."""
    kazoo = connect(tier.session)
    yield kazoo
    kazoo.stop()
    kazoo.close()


@pytest.fixture
def listed_client(tier):
    """A kazoo client of the session server given the list of data servers."""
    kazoo = connect(tier.listed)
    yield kazoo
    kazoo.stop()
    kazoo.close()


def check_exactly_once(kazoo, parent: str, acked: list[str]) -> None:
    """Every acknowledged value is under C{parent} exactly once."""
    kazoo.sync(parent)
    values = [kazoo.get(f"{parent}/{child}")[0].decode() for child in kazoo.get_children(parent)]
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    doubled = sorted(value for value, count in counts.items() if count > 1)
    missing = sorted(set(acked) - set(counts))
    assert not doubled, f"written twice: {doubled[:10]}"
    assert not missing, f"acknowledged but lost: {missing[:10]}"


def start_writers(clients: list[tuple[str, Any]], prefix: str) -> list[Writer]:
    """
    @return: a started L{Writer} per C{(name, client)}, each under a new node
        C{prefix + name}, once each has 20 writes acknowledged.
    """
    writers = []
    for name, kazoo in clients:
        parent = f"{prefix}{name}"
        kazoo.create(parent)
        writers.append(Writer(kazoo, parent))
    for writer in writers:
        writer.start()
    wait_until(
        lambda: all(len(writer.acked) >= 20 for writer in writers),
        timeout=30,
        message="writes acknowledged",
    )
    return writers


def wait_past(writers: list[Writer], counts: list[int], more: int, message: str) -> None:
    """Wait until each writer has C{more} acknowledged writes past its count (or failed)."""
    wait_until(
        lambda: all(
            len(writer.acked) > count + more or writer.errors
            for writer, count in zip(writers, counts, strict=True)
        ),
        timeout=60,
        message=message,
    )


def test_one_active_and_a_warm_standby(tier, client):
    """One data server is active; the standby's tree follows the log."""
    active = tier.active()
    standby = tier.standby_of(active)
    client.create("/etcd-warm", b"v")
    zxid = client.exists("/etcd-warm").mzxid
    wait_until(
        lambda: (standby.state() or {}).get("applied_zxid", 0) >= zxid,
        timeout=15,
        message="the standby's tree at the write's zxid",
    )
    described = standby.state()
    assert described is not None and described["state"] == "standby"
    assert described["is_leader"] is False


def test_kill_active_under_writes(tier, client, listed_client):
    """kill -9 of the active data server under writes through both session servers:
    nothing lost, nothing doubled, no session lost, no client error."""
    client.ensure_path("/etcd-kill")
    sessions = [client.client_id[0], listed_client.client_id[0]]
    for round_number in range(ROUNDS):
        writers = start_writers(
            [("etcd", client), ("list", listed_client)], f"/etcd-kill/r{round_number}-"
        )
        active = tier.active()
        standby = tier.standby_of(active)
        before = [len(writer.acked) for writer in writers]
        killed_at = time.monotonic()
        active.kill()
        wait_past(writers, before, 5, "writes answered by the new leader")
        for writer in writers:
            writer.stop()
            assert not writer.errors, writer.errors
        # Kill to the first write answered by the new leader (a later epoch).
        failover = [
            first_write_of_a_later_epoch(writer, count, killed_at)
            for writer, count in zip(writers, before, strict=True)
        ]
        assert standby.is_active()
        print(
            f"failover round {round_number}: etcd-following {failover[0]:.2f} s, "
            f"list {failover[1]:.2f} s"
        )
        for writer in writers:
            check_exactly_once(writer.client, writer.parent, writer.acked)
        assert [client.client_id[0], listed_client.client_id[0]] == sessions
        active.start()  # back as a standby
        assert not active.is_active()


#: Seconds from SIGSTOP of the leader to the first write answered by the next one
#: that the SIGSTOP test accepts (the target is under 3 s with the 2 s lease; this
#: bound leaves room for a loaded machine, and a session server stuck on the paused
#: leader never gets there).
STOP_FAILOVER_BOUND_S = 10.0


def first_write_of_a_later_epoch(writer: Writer, count: int, since: float) -> float:
    """@return: seconds from C{since} to the first write after the first C{count}
    answered in a later epoch than theirs (by the next leader)."""
    return (
        next(
            at
            for at, epoch in zip(writer.acked_at, writer.epochs, strict=True)
            if epoch > writer.epochs[count - 1]
        )
        - since
    )


def test_sigstop_past_lease(tier, client, listed_client):
    """
    SIGSTOP of the leader past its lease, under writes through both session servers:
    the standby takes over and each session server moves to it within a bounded time
    (the list-following one by noticing the silence; the leader's kernel still
    accepts connections); after SIGCONT the old leader writes nothing and stands by,
    no session server talks to it, nothing is doubled, no client saw an error.
    """
    sessions = [client.client_id[0], listed_client.client_id[0]]
    writers = start_writers([("etcd", client), ("list", listed_client)], "/etcd-stop-")
    active = tier.active()
    standby = tier.standby_of(active)
    before = [len(writer.acked) for writer in writers]
    stopped_at = time.monotonic()
    active.pause()
    try:
        wait_until(standby.is_active, timeout=30, message="the standby taking over")
        wait_past(
            writers, before, 10, "writes answered by the new leader through both session servers"
        )
    finally:
        active.resume()
    for writer in writers:
        assert not writer.errors, writer.errors
    failover = [
        first_write_of_a_later_epoch(writer, count, stopped_at)
        for writer, count in zip(writers, before, strict=True)
    ]
    print(f"SIGSTOP failover: etcd-following {failover[0]:.2f} s, list {failover[1]:.2f} s")
    assert max(failover) < STOP_FAILOVER_BOUND_S, failover
    wait_until(
        lambda: (active.state() or {}).get("state") == "standby",
        timeout=30,
        message="the woken leader standing by",
    )
    counts = [len(writer.acked) for writer in writers]
    wait_past(writers, counts, 10, "writes going on after the old leader woke")
    for writer in writers:
        writer.stop()
        assert not writer.errors, writer.errors
    assert standby.is_active()
    for session in (tier.session, tier.listed):
        assert session is not None
        assert f"zk_data_server\t{standby.link}" in session.four_letter("mntr")
    for writer, count in zip(writers, before, strict=True):
        check_exactly_once(writer.client, writer.parent, writer.acked)
        # The last writes were answered by the new leader, not by the woken one.
        assert writer.epochs[-1] > writer.epochs[count - 1]
    assert [client.client_id[0], listed_client.client_id[0]] == sessions


def metric(text: str, name: str) -> float:
    """@return: the value of the one sample C{name} in a scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for entry in family.samples:
            if entry.name == name:
                return entry.value
    raise AssertionError(f"no sample {name}")


def test_metrics_follow_takeovers(tier, client):
    """
    A data server's Prometheus metrics describe its state now, through
    active -> standby -> active: the role gauge, the takeovers counter, and the tree
    and applied zxid of the data server it runs now (the warm tree while standing by);
    promtool finds the exposition well formed.
    """
    import shutil
    import subprocess

    parent = "/etcd-metrics"
    client.ensure_path(parent)
    watched = tier.active()
    other = tier.standby_of(watched)
    text = watched.scrape()
    assert metric(text, "zkreg_data_role_active") == 1
    takeovers = metric(text, "zkreg_data_takeovers_total")
    # active -> standby: paused past its lease, it wakes to a new leader.
    watched.pause()
    try:
        wait_until(other.is_active, timeout=30, message="the other data server taking over")
    finally:
        watched.resume()
    wait_until(
        lambda: (watched.state() or {}).get("state") == "standby",
        timeout=30,
        message="the woken data server standing by",
    )
    zxid = client.create(f"{parent}/while-standby", include_data=True)[1].czxid
    wait_until(
        lambda: metric(watched.scrape(), "zkreg_last_zxid") >= zxid,
        timeout=15,
        message="the standby's metrics following the log",
    )
    text = watched.scrape()
    assert metric(text, "zkreg_data_role_active") == 0
    assert metric(text, "zkreg_data_takeovers_total") == takeovers
    # standby -> active again.
    other.kill()
    wait_until(watched.is_active, timeout=30, message="the watched data server leading again")
    zxid = client.create(f"{parent}/while-active", include_data=True)[1].czxid
    assert zxid >> 32 == (watched.state() or {}).get("epoch")
    assert tier.session is not None

    def agrees() -> bool:
        text = watched.scrape()
        replica = dict(
            line.split("\t", 1) for line in tier.session.four_letter("mntr").splitlines()
        )
        return (
            metric(text, "zkreg_last_zxid") >= zxid
            and metric(text, "znode_count") == float(replica["zk_znode_count"])
            and metric(text, "zkreg_session_servers") == 2
        )

    wait_until(agrees, timeout=15, message="the metrics of the data server leading now")
    text = watched.scrape()
    assert metric(text, "zkreg_data_role_active") == 1
    assert metric(text, "zkreg_data_takeovers_total") == takeovers + 1
    other.start()  # back as a standby
    assert metric(other.scrape(), "zkreg_data_role_active") == 0
    if shutil.which("promtool") is not None:
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        # 0: clean; 3: lint only (ZooKeeper's "_count" gauges), 1: malformed.
        assert checked.returncode in (0, 3), checked.stderr.decode()
        for problem in checked.stderr.decode().splitlines():
            assert '"_count" suffix' in problem, problem


def test_status_command(tier, client):
    """zkreg status --etcd: the active data server, the standby, applied zxids, etcd health."""
    import io
    import json

    from tests.support.ports import free_port
    from zkreg.cli import main

    client.create("/etcd-status", b"")
    active = tier.active()
    standby = tier.standby_of(active)
    argv = ["status", "--etcd", tier.etcd.endpoints_option, "--etcd-prefix", tier.prefix]

    def reported() -> dict | None:
        out = io.StringIO()
        if main([*argv, "--json"], out) != 0:
            return None
        report = json.loads(out.getvalue())
        states = {server["data_link"]: server["state"] for server in report["data_servers"]}
        wanted = {active.link: "active", standby.link: "standby"}
        return report if states == wanted else None

    report = wait_until(reported, timeout=15, message="both data servers in the status")
    assert report["leader"] == active.link
    assert all(member["healthy"] for member in report["etcd"])
    out = io.StringIO()
    assert main(argv, out) == 0
    text = out.getvalue()
    assert f"{active.link}  active" in text and f"{standby.link}  standby" in text
    assert "healthy" in text and "applied zxid 0x" in text
    # No etcd: exit 1 and say so.
    out = io.StringIO()
    assert main(["status", "--etcd", f"http://127.0.0.1:{free_port()}"], out) == 1
    assert "unreachable" in out.getvalue()
