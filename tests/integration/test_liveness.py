"""
Liveness under load (issue #8), with real zkreg processes and real clients: a client
that stops reading cannot grow the server without bound and is closed; a multiRead
whose reply would be huge is refused; one client's burst of heavy requests does not
starve another client's requests.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest
from kazoo.client import KazooClient

from tests.support.rawclient import RawClient
from tests.support.waiting import wait_until
from zkreg.proto import records as R
from zkreg.proto.consts import Err, OpCode

_MB = 1_000_000


def rss_bytes(pid: int) -> int:
    """The resident set size of process C{pid}."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def get_data_frame(xid: int, path: str) -> bytes:
    payload = R.RequestHeader(xid, int(OpCode.getData)).serialize()
    payload += R.GetDataRequest(path, False).serialize()
    return struct.pack(">i", len(payload)) + payload


def connections_from(server: Any, local_port: int) -> int:
    """How many connections cons lists from our loopback port."""
    return server.four_letter("cons").count(f":{local_port}[")


@pytest.fixture
def kazoo_for():
    clients: list[KazooClient] = []

    def connect(server: Any, timeout: float = 10.0) -> KazooClient:
        client = KazooClient(hosts=server.hosts, timeout=timeout)
        client.start(timeout=15)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.stop()
        client.close()


def test_slow_consumer_is_bounded_then_closed(server_factory, kazoo_for):
    """
    A client that sends 300 getData of a 1 MB node and reads nothing: the server
    stops reading it once a few MiB are unsent (its memory grows by far less than the
    300 MB the replies would take), other clients go on being answered, and the
    connection is closed once it has stayed full for output-stall-timeout.
    """
    server = server_factory("zkreg", extra_args=["--output-stall-timeout", "3000"])
    other = kazoo_for(server)
    other.create("/slow", b"x" * _MB)
    baseline = rss_bytes(server.pid)

    slow = RawClient(server.port)
    slow.connect()
    sock = slow._sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    local_port = sock.getsockname()[1]
    sock.sendall(b"".join(get_data_frame(xid, "/slow") for xid in range(1, 301)))
    try:
        # The server keeps answering others while the slow client's output is full.
        for _ in range(5):
            started = time.monotonic()
            assert other.get("/slow")[0][:1] == b"x"
            assert time.monotonic() - started < 5.0
        grown = rss_bytes(server.pid) - baseline
        assert grown < 60 * _MB, f"server grew by {grown} bytes for one slow client"
        wait_until(
            lambda: connections_from(server, local_port) == 0,
            timeout=30,
            message="the slow client's connection to be closed",
        )
        assert "read none of its" in server.log_tail(20000)
        assert other.exists("/slow") is not None
    finally:
        slow.drop()


def test_huge_multiread_is_refused(server_factory):
    """A multiRead of 50 getData of a 1 MB node (a 50 MB reply) gets MarshallingError
    and the session goes on; a small one is answered."""
    server = server_factory("zkreg")
    client = RawClient(server.port)
    client.connect()
    try:
        assert client.create("/big", b"y" * _MB).err == 0
        ops = [(OpCode.getData, R.GetDataRequest("/big", False)) for _ in range(50)]
        reply = client.call(OpCode.multiRead, ops)
        assert reply.err == Err.MARSHALLINGERROR
        reply = client.call(OpCode.multiRead, ops[:2])
        assert reply.err == 0 and len(reply.body) == 2
        assert client.call(OpCode.exists, R.ExistsRequest("/big", False)).err == 0
    finally:
        client.close()


def test_burst_of_heavy_reads_does_not_starve_other_clients(server_factory, kazoo_for):
    """
    One client pipelines 200 getData of a 512 KB node (100 MB of replies) and reads
    them slowly; another client's requests are answered promptly meanwhile.
    """
    server = server_factory("zkreg")
    other = kazoo_for(server)
    other.create("/heavy", b"h" * (_MB // 2))
    burst = RawClient(server.port)
    burst.connect()
    try:
        sock = burst._sock
        assert sock is not None
        sock.sendall(b"".join(get_data_frame(xid, "/heavy") for xid in range(1, 201)))
        worst = 0.0
        for _ in range(20):
            started = time.monotonic()
            other.exists("/heavy")
            worst = max(worst, time.monotonic() - started)
            # Read some of the burst's replies, slowly.
            burst.read_frame_bytes(timeout=10)
        assert worst < 2.0, f"a ping-sized request waited {worst:.2f} s behind the burst"
    finally:
        burst.drop()


def test_sigstop_for_twice_the_session_timeout_expires_no_connected_client(
    server_factory, kazoo_for
):
    """
    SIGSTOP the server for 2x the session timeout, SIGCONT: every connected client
    keeps its session and its ephemeral, because the pause does not count toward
    expiry; a session whose client is gone still expires afterwards.
    """
    import os
    import signal

    from kazoo.protocol.states import KazooState

    server = server_factory("zkreg")
    clients = [kazoo_for(server, timeout=4.0) for _ in range(4)]
    states: list[Any] = []
    for index, client in enumerate(clients):
        client.add_listener(states.append)
        client.create(f"/stop-{index}", b"", ephemeral=True)
    sessions = [client.client_id[0] for client in clients]
    gone = RawClient(server.port, timeout_ms=4000)
    gone.connect()
    gone.create("/stop-gone", b"", flags=1)
    gone.drop()  # no closeSession: it must expire by itself

    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(8.0)  # the pause under test: 2x the 4 s timeout
    finally:
        os.kill(pid, signal.SIGCONT)
    for client in clients:
        wait_until(lambda client=client: client.connected, timeout=20, message="reconnect")
    assert [client.client_id[0] for client in clients] == sessions
    assert KazooState.LOST not in states
    for index, client in enumerate(clients):
        assert client.exists(f"/stop-{index}") is not None
    wait_until(
        lambda: clients[0].exists("/stop-gone") is None,
        timeout=20,
        message="the abandoned session to expire after the pause",
    )
    assert "did not run for" in server.log_tail(20000)
