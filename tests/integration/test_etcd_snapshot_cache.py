"""
C{--data-dir} with C{--etcd}: a local snapshot cache, with real etcd, data servers,
a session server and kazoo clients.

  - the active data server's snapshots are forked (the reactor pauses only for the
    fork) and kept in its data directory; restarted, it loads its own snapshot
    instead of downloading etcd's, and has every write; with the directory deleted
    it recovers everything from etcd; on another etcd prefix the cached snapshot is
    passed over (its slot is not in that log);
  - a standby keeps local snapshots of the log it follows; restarted, it loads the
    newest one the etcd log still continues and reads only the slots after it, then
    takes over with every write.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.servers import ServerStartError, ZkregServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(300)

SNAP_COUNT = 50


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(1)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


class Processes:
    """What one test started, cleaned up at its end."""

    def __init__(self, etcd: EtcdCluster, prefix: str) -> None:
        self.etcd = etcd
        self.prefix = prefix
        self.started: list[ZkregServer] = []

    def data_server(self, *options: str, cache: bool = True) -> EtcdDataServer:
        server = EtcdDataServer(self.etcd.endpoints_option, self.prefix, list(options))
        if cache:
            server.extra_args += ["--data-dir", str(server.data_dir)]
        self.started.append(server)
        server.start()
        return server

    def session_server(self) -> ZkregServer:
        server = ZkregServer(
            extra_args=["--role", "session", "--etcd", self.etcd.endpoints_option]
            + ["--etcd-prefix", self.prefix, "--data-tier-timeout", "60000"]
        )
        self.started.append(server)
        server.start()
        return server

    def cleanup(self) -> None:
        for server in reversed(self.started):
            server.cleanup()


@pytest.fixture
def processes(etcd, request) -> Iterator[Processes]:
    started = Processes(etcd, f"/cache-{request.node.name}")
    try:
        yield started
    finally:
        started.cleanup()


def connect(server: ZkregServer):
    from kazoo.client import KazooClient

    kazoo = KazooClient(hosts=server.hosts, timeout=10.0)
    kazoo.start(timeout=30)
    return kazoo


def state(server: EtcdDataServer) -> dict:
    described = server.state()
    assert described is not None, server.log_tail()
    return described


def cached(server: EtcdDataServer) -> list[str]:
    """@return: the snapshot files (with an etcd side file) in its data directory."""
    names = os.listdir(server.data_dir) if server.data_dir.exists() else []
    return sorted(
        name for name in names if name.startswith("snapshot.") and name + ".etcd" in names
    )


def write(kazoo, start: int, stop: int) -> None:
    for index in range(start, stop):
        kazoo.create(f"/c/n{index:04d}", f"v{index}".encode())


def assert_all(kazoo, count: int) -> None:
    """Every node written, once, with its data (after a sync: the replica is current)."""
    kazoo.sync("/c")
    children = sorted(kazoo.get_children("/c"))
    assert children == [f"n{index:04d}" for index in range(count)]
    for index in (0, count // 2, count - 1):
        assert kazoo.get(f"/c/n{index:04d}")[0] == f"v{index}".encode()


def test_restart_loads_own_snapshot_and_recovers_without_it(processes) -> None:
    """A restarted active data server loads its cached snapshot (no download); with
    the cache deleted it recovers every write from etcd; a cache from another log is
    passed over."""
    data = processes.data_server("--snap-count", str(SNAP_COUNT))
    wait_until(data.is_active, timeout=30, message="the data server active")
    session = processes.session_server()
    kazoo = connect(session)
    try:
        kazoo.ensure_path("/c")
        write(kazoo, 0, 3 * SNAP_COUNT)
        wait_until(
            lambda: state(data)["snapshots_uploaded"] >= 1 and cached(data),
            timeout=30,
            message="a snapshot in etcd and in the cache",
        )
        described = state(data)
        # Forked: the reactor's pause was the fork, not the serialization.
        assert 0 < described["longest_snapshot_pause_ms"] < 1000
        write(kazoo, 3 * SNAP_COUNT, 3 * SNAP_COUNT + 7)  # after the snapshot: in the log

        data.kill()
        newest = cached(data)[-1]
        data.start()
        wait_until(data.is_active, timeout=30, message="the data server active again")
        described = state(data)
        assert described["loaded_from"] == "local", described
        assert described["loaded_zxid"] == int(newest.split(".")[1], 16)
        assert_all(kazoo, 3 * SNAP_COUNT + 7)
        write(kazoo, 3 * SNAP_COUNT + 7, 3 * SNAP_COUNT + 10)
        data.kill()

        # The same cache given to a data server of another (empty) tier: not used.
        foreign = EtcdDataServer(
            processes.etcd.endpoints_option,
            processes.prefix + "-other",
            ["--data-dir", str(data.data_dir)],
        )
        processes.started.append(foreign)
        foreign.start()
        wait_until(foreign.is_active, timeout=30, message="the other tier's data server")
        described = state(foreign)
        assert described["loaded_from"] == "none" and described["applied_zxid"] == 0
        foreign.kill()

        # Nothing on that disk is needed: without it, everything comes from etcd.
        shutil.rmtree(data.data_dir)
        data.start()
        wait_until(data.is_active, timeout=30, message="the data server active, no cache")
        assert state(data)["loaded_from"] == "etcd"
        assert_all(kazoo, 3 * SNAP_COUNT + 10)
    finally:
        kazoo.stop()
        kazoo.close()


def test_standby_restarts_from_its_local_snapshot(processes) -> None:
    """A standby caches the log it follows; restarted, it loads its newest snapshot
    the etcd log continues, catches up from there, and takes over with every write."""
    # The active one never snapshots: etcd has only the log, no snapshot.
    active = processes.data_server("--snap-count", "1000000", cache=False)
    wait_until(active.is_active, timeout=30, message="the first data server active")
    standby = processes.data_server("--snap-count", str(SNAP_COUNT))
    session = processes.session_server()
    kazoo = connect(session)
    try:
        kazoo.ensure_path("/c")
        write(kazoo, 0, 3 * SNAP_COUNT)
        wait_until(
            lambda: state(standby)["local_snapshots"] >= 1,
            timeout=30,
            message="the standby's local snapshots",
        )
        assert state(active)["snapshots_uploaded"] == 0
        standby.kill()
        newest = cached(standby)[-1]
        write(kazoo, 3 * SNAP_COUNT, 3 * SNAP_COUNT + 20)
        standby.start()
        described = state(standby)
        assert described["state"] == "standby"
        assert described["loaded_from"] == "local", described
        assert described["loaded_zxid"] == int(newest.split(".")[1], 16)
        wait_until(
            lambda: state(standby)["applied_zxid"] == state(active)["applied_zxid"],
            timeout=30,
            message="the standby caught up",
        )
        active.kill()
        wait_until(standby.is_active, timeout=30, message="the standby took over")
        write(kazoo, 3 * SNAP_COUNT + 20, 3 * SNAP_COUNT + 25)
        assert_all(kazoo, 3 * SNAP_COUNT + 25)
    finally:
        kazoo.stop()
        kazoo.close()


def test_cache_directory_is_one_servers(processes) -> None:
    """Two data servers on one cache directory: the second stops with one line
    naming the directory and the first's pid."""
    first = processes.data_server()
    second = EtcdDataServer(
        processes.etcd.endpoints_option, processes.prefix, ["--data-dir", str(first.data_dir)]
    )
    processes.started.append(second)
    with pytest.raises(ServerStartError):
        second.start()
    assert f"data directory {first.data_dir} is in use by another zkreg (pid {first.pid})" in (
        second.log_tail()
    )
    assert "Traceback" not in second.log_tail()
