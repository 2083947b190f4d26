"""
C{--session-processes N} with real processes: one C{twistd zkreg} whose parent keeps
the data server and whose N supervised children serve clients on the one port.

  - the children share the port: new connections land on every child;
  - kill -9 of a child under write load: it is started again, its clients move to a
    sibling, every acknowledged write is there, no session is lost;
  - kill -9 of the parent: no child is left serving;
  - SIGTERM of a daemonized parent (pid file): the children stop with it;
  - a port already in use: one line, exit 1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from curatorish.zkreg_launch import zkreg_command
from tests.support.ports import free_port
from tests.support.procfs import child_pids, established_on_port, is_alive
from tests.support.servers import REPO_ROOT, ZkregServer
from tests.support.waiting import wait_until
from tests.support.writers import Writer, acked_total, stop_all

pytestmark = pytest.mark.timeout(300)

CHILDREN = 2


def session_processes_server(*extra: str) -> ZkregServer:
    return ZkregServer(extra_args=["--session-processes", str(CHILDREN), *extra])


def children_of(server: ZkregServer) -> set[int]:
    assert server.pid is not None
    return child_pids(server.pid)


def all_children_serving(server: ZkregServer) -> set[int]:
    """Wait until C{CHILDREN} children run and each accepts a connection."""

    def ready() -> set[int] | None:
        pids = children_of(server)
        if len(pids) != CHILDREN:
            return None
        # Open connections until each child holds one (the kernel hashes them).
        probes = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        try:
            holding = wait_until(
                lambda: {pid for pid in pids if established_on_port(pid, server.port)} or None,
                timeout=5,
            )
            return pids if holding == pids else None
        finally:
            for probe in probes:
                probe.close()

    return wait_until(ready, timeout=60, interval=0.2, message="every child serving")


@pytest.fixture(scope="module")
def server():
    server = session_processes_server()
    try:
        server.start()
        all_children_serving(server)
        yield server
    finally:
        server.cleanup()


def test_connections_spread_over_the_children(server):
    """Forty connections to the one port: each child holds at least a fifth of them."""
    pids = all_children_serving(server)
    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    try:
        counts = wait_until(
            lambda: (lambda c: c if sum(c.values()) == 40 else None)(
                {pid: established_on_port(pid, server.port) for pid in pids}
            ),
            timeout=10,
            message="forty connections accepted",
        )
        assert min(counts.values()) >= 8, counts
    finally:
        for connection in connections:
            connection.close()


def test_kill_9_of_a_child_under_writes_loses_nothing(server):
    """
    A child killed under writes is started again; its clients reconnect to the
    other child with their sessions (ephemerals kept, no LOST); every acknowledged
    create is in the tree.
    """
    from kazoo.client import KazooClient

    pids = all_children_serving(server)
    clients = [KazooClient(hosts=server.hosts, timeout=20.0) for _ in range(6)]
    states: list[list[str]] = []
    try:
        for index, client in enumerate(clients):
            client.start(timeout=30)
            seen: list[str] = []
            client.add_listener(lambda state, seen=seen: seen.append(str(state)))
            states.append(seen)
            client.ensure_path("/procs")
            client.create(f"/procs-eph-{index}", b"", ephemeral=True)
        sessions = [client.client_id[0] for client in clients]
        victim = max(pids, key=lambda pid: established_on_port(pid, server.port))
        assert established_on_port(victim, server.port) > 0
        writers = [
            Writer(client, "/procs", f"w{index}", retry=True)
            for index, client in enumerate(clients)
        ]
        for writer in writers:
            writer.start()

        def acked() -> int:
            return acked_total(writers)

        wait_until(lambda: acked() >= 60, timeout=60, message="writes before the kill")
        os.kill(victim, signal.SIGKILL)
        replacement = wait_until(
            lambda: (children_of(server) - pids) or None,
            timeout=30,
            message="the killed child started again",
        )
        assert len(children_of(server)) == CHILDREN
        mark = acked()
        wait_until(lambda: acked() >= mark + 60, timeout=60, message="writes after the kill")
        stop_all(writers)

        clients[0].sync("/procs")
        present = set(clients[0].get_children("/procs"))
        missing = [name for w in writers for name in w.acked if name not in present]
        assert missing == []
        assert [client.client_id[0] for client in clients] == sessions
        assert all("LOST" not in state for seen in states for state in seen), states
        for index in range(len(clients)):
            assert clients[0].exists(f"/procs-eph-{index}") is not None
        # The replacement serves: every child holds a connection again.
        assert all_children_serving(server) >= replacement
    finally:
        for client in clients:
            client.stop()
            client.close()


def test_kill_9_of_the_parent_leaves_no_child():
    """The parent killed with SIGKILL: every child exits (none keeps the port)."""
    server = session_processes_server()
    try:
        server.start()
        pids = all_children_serving(server)
        link_directory = server.log_tail(200000).split("data link ")[1].split()[0]
        link_directory = os.path.dirname(link_directory)
        assert os.path.isdir(link_directory)
        server.kill()
        wait_until(
            lambda: not any(is_alive(pid) for pid in pids),
            timeout=15,
            message="the children of a killed parent exit",
        )
        # The children removed the parent's data-link directory (it could not).
        wait_until(lambda: not os.path.exists(link_directory), timeout=10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        server.cleanup()


@pytest.mark.parametrize("children", [0, CHILDREN])
def test_sigterm_of_a_daemon_stops_its_children(tmp_path, children):
    """
    Daemonized (twistd without -n) with a pid file: the pid file names the parent,
    clients are served and their writes made durable (the log's writer thread is
    started again after twistd's fork), and SIGTERM to it stops the children too.
    """
    from kazoo.client import KazooClient

    port = free_port()
    pidfile = tmp_path / "zkreg.pid"
    argv = zkreg_command(
        [
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--data-dir",
            str(tmp_path / "data"),
            "--session-processes",
            str(children),
        ],
        twistd_options=[f"--pidfile={pidfile}", f"--logfile={tmp_path / 'zkreg.log'}"],
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run(argv, cwd=tmp_path, env=env, check=True, timeout=60)
    parent = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30))
    try:
        wait_until(lambda: len(child_pids(parent)) == children, timeout=30, message="children")
        pids = child_pids(parent)
        client = KazooClient(hosts=f"127.0.0.1:{port}", timeout=20.0)
        client.start(timeout=30)
        client.create("/daemon", b"ok")
        assert client.get("/daemon")[0] == b"ok"
        client.stop()
        client.close()
        os.kill(parent, signal.SIGTERM)
        wait_until(
            lambda: not is_alive(parent) and not any(is_alive(pid) for pid in pids),
            timeout=30,
            message="parent and children stopped",
        )
        assert not pidfile.exists()
    finally:
        for pid in [parent, *child_pids(parent)]:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_port_in_use_is_one_line(tmp_path):
    """The client port held by another program: one line naming it, exit status 1."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        result = subprocess.run(
            zkreg_command(
                [
                    "--listen",
                    f"tcp:{port}:interface=127.0.0.1",
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--session-processes",
                    "2",
                ]
            ),
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert result.returncode == 1
    assert f"zkreg: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
