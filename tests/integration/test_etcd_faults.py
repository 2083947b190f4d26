"""
The data tier on a three-member etcd, under faults, with real processes and kazoo:

  - kill -9 one etcd member under writes, restart it, then kill another: writes go
    on (pausing at most briefly), every acknowledged write is there once;
  - kill -9 everything (etcd members, data servers, the session server) and start it
    all again: nothing acknowledged is lost.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_etcd_tier import Writer, check_exactly_once, connect
from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(400)

PREFIX = "/zkreg-faults"


class Cluster:
    """Three etcd members, two data servers, one session server following etcd."""

    def __init__(self) -> None:
        self.etcd = EtcdCluster(3)
        self.data: list[EtcdDataServer] = []
        self.session: ZkregServer | None = None

    def start(self) -> Cluster:
        self.etcd.start()
        for _ in range(2):
            server = EtcdDataServer(self.etcd.endpoints_option, PREFIX)
            server.start()
            self.data.append(server)
        wait_until(self.active, timeout=30, message="an active data server")
        self.session = ZkregServer(
            extra_args=[
                "--role", "session",
                "--etcd", self.etcd.endpoints_option,
                "--etcd-prefix", PREFIX,
                "--data-tier-timeout", "60000",
            ]
        )  # fmt: skip
        self.session.start()
        return self

    def active(self) -> EtcdDataServer | None:
        return next((server for server in self.data if server.is_active()), None)

    def stop(self) -> None:
        if self.session is not None:
            self.session.cleanup()
        for server in self.data:
            server.cleanup()
        self.etcd.stop()


@pytest.fixture(scope="module")
def cluster():
    started = Cluster()
    try:
        yield started.start()
    finally:
        started.stop()


def wait_for_progress(writer: Writer, count: int = 10, timeout: float = 60.0) -> float:
    """Wait for C{count} more acknowledged writes; @return: how long it took."""
    started = time.monotonic()
    before = len(writer.acked)
    wait_until(
        lambda: len(writer.acked) >= before + count or writer.errors,
        timeout=timeout,
        message=f"{count} more writes acknowledged",
    )
    assert not writer.errors, writer.errors
    return time.monotonic() - started


def test_etcd_member_loss_under_writes(cluster):
    """kill -9 one etcd member, restart it, kill another: writes go on, nothing lost."""
    assert cluster.session is not None
    kazoo = connect(cluster.session)
    try:
        kazoo.create("/member-loss")
        writer = Writer(kazoo, "/member-loss")
        writer.start()
        wait_for_progress(writer, 20)
        first, second = cluster.etcd.members[0], cluster.etcd.members[1]
        first.kill()
        paused = wait_for_progress(writer)
        cluster.etcd.restart(first)
        wait_for_progress(writer)
        second.kill()
        paused = max(paused, wait_for_progress(writer))
        cluster.etcd.restart(second)
        wait_for_progress(writer)
        writer.stop()
        assert not writer.errors, writer.errors
        print(f"longest wait for 10 writes after an etcd member was killed: {paused:.2f} s")
        check_exactly_once(kazoo, "/member-loss", writer.acked)
    finally:
        kazoo.stop()
        kazoo.close()


def test_kill_everything_and_restart(cluster):
    """kill -9 of every process: after a restart every acknowledged write is there."""
    assert cluster.session is not None
    kazoo = connect(cluster.session)
    try:
        kazoo.create("/everything")
        writer = Writer(kazoo, "/everything")
        writer.start()
        wait_for_progress(writer, 50)
        cluster.session.kill()
        for server in cluster.data:
            server.kill()
        for member in cluster.etcd.members:
            member.kill()
        writer.join(60)
        acked = list(writer.acked)
    finally:
        kazoo.stop()
        kazoo.close()
    for member in cluster.etcd.members:
        member.spawn()
    for member in cluster.etcd.members:
        cluster.etcd.wait_healthy(member)
    for server in cluster.data:
        server.start()
    wait_until(cluster.active, timeout=30, message="an active data server after the restart")
    cluster.session.start()
    kazoo = connect(cluster.session)
    try:
        check_exactly_once(kazoo, "/everything", acked)
    finally:
        kazoo.stop()
        kazoo.close()
