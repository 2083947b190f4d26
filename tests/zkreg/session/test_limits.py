"""
Server-wide limits: the request throttler and the connection-rate limit per IP, as
units (with a fake clock) and in a real zkreg with real kazoo clients.
"""

from __future__ import annotations

import socket
import time

from twisted.internet import task

from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until
from zkreg.session.limits import ConnectionRateLimiter, RequestThrottler


class FakeConnection:
    def __init__(self) -> None:
        self.is_closing = False
        self.submitted: list[object] = []
        self.stalls: list[float] = []

    def submit_admitted(self, entry: object) -> None:
        self.submitted.append(entry)

    def stall_reading(self, seconds: float) -> None:
        self.stalls.append(seconds)


def test_throttler_admits_up_to_max_then_queues_in_order():
    clock = task.Clock()
    throttler = RequestThrottler(2, 100, clock)
    first, second = FakeConnection(), FakeConnection()
    assert throttler.admit(first, "a1")
    assert throttler.admit(second, "b1")
    assert not throttler.admit(first, "a2")
    assert not throttler.admit(second, "b2")
    assert throttler.waiting == 2 and throttler.wait_count == 2
    # The queue reached max_requests: the connection adding to it is stalled.
    assert second.stalls == [0.1]
    clock.advance(0.05)
    throttler.done()
    assert first.submitted == ["a2"] and throttler.in_flight == 2
    clock.advance(0.2)
    throttler.done()
    assert second.submitted == ["b2"]
    assert throttler.queue_time_ms.count == 2
    assert throttler.throttled_ops == 1  # b2 waited 250 ms > the 100 ms stall time


def test_throttler_keeps_order_behind_a_queue():
    """A write never overtakes waiting ones, even when room frees up."""
    throttler = RequestThrottler(1, 100, task.Clock())
    connection = FakeConnection()
    assert throttler.admit(connection, 1)
    assert not throttler.admit(connection, 2)
    throttler.in_flight = 0  # room, but 2 still waits: 3 must queue behind it
    assert not throttler.admit(connection, 3)
    throttler.release()
    assert connection.submitted == [2]


def test_throttler_drops_writes_of_closed_connections():
    throttler = RequestThrottler(1, 100, task.Clock())
    gone, alive = FakeConnection(), FakeConnection()
    assert throttler.admit(alive, "x")
    assert not throttler.admit(gone, "stale")
    assert not throttler.admit(alive, "y")
    gone.is_closing = True
    throttler.done()
    assert gone.submitted == [] and alive.submitted == ["y"]
    assert throttler.stale_dropped == 1


def test_throttler_release_is_not_reentrant():
    """A write answered while being submitted frees room without recursing."""
    throttler = RequestThrottler(1, 100, task.Clock())

    class AnsweredAtOnce(FakeConnection):
        def submit_admitted(self, entry: object) -> None:
            super().submit_admitted(entry)
            throttler.done()

    connection = AnsweredAtOnce()
    assert throttler.admit(connection, 0)
    for index in range(1, 500):
        assert not throttler.admit(connection, index)
    throttler.done()
    assert connection.submitted == list(range(1, 500))
    assert throttler.in_flight == 0 and throttler.waiting == 0


def test_rate_limiter_burst_then_rate():
    clock = task.Clock()
    limiter = ConnectionRateLimiter(2, 3, clock)
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2"), "another address has its own bucket"
    clock.advance(0.5)
    assert limiter.allow("10.0.0.1")
    assert not limiter.allow("10.0.0.1")
    clock.advance(10)
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.refused == 3


def test_rate_limiter_forgets_idle_addresses():
    clock = task.Clock()
    limiter = ConnectionRateLimiter(1, 1, clock)
    limiter.MAX_TRACKED = 10
    for index in range(10):
        assert limiter.allow(f"10.0.1.{index}")
    clock.advance(5)
    assert limiter.allow("10.0.2.1")
    assert len(limiter._buckets) == 1


# -- real servers --------------------------------------------------------------------


def _mntr(server: ZkregServer) -> dict[str, str]:
    """mntr as a dict; empty when the connection was refused."""
    try:
        text = server.four_letter("mntr")
    except OSError:
        return {}
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def test_throttled_writes_all_succeed_in_order(server_factory, kazoo_client):
    """
    With two writes allowed in flight, three clients pipelining 150 creates each:
    every create succeeds, each client's sequential nodes keep its order, and the
    throttler did make writes wait.
    """
    server = server_factory(
        "zkreg",
        extra_args=["--request-throttle-max-requests", "2", "--request-throttle-stall-time", "20"],
    )
    clients = [kazoo_client(server) for _ in range(3)]
    clients[0].ensure_path("/limits/throttle")
    pending = []
    for round_index in range(150):
        for number, client in enumerate(clients):
            pending.append(
                (
                    number,
                    round_index,
                    client.create_async(f"/limits/throttle/c{number}-", b"v", sequence=True),
                )
            )
    created: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for number, _round, result in pending:
        created[number].append(result.get(timeout=60))
    for number, paths in created.items():
        sequence = [int(path.rsplit("-", 1)[1]) for path in paths]
        assert sequence == sorted(sequence), f"client {number} reordered"
    assert len(clients[0].get_children("/limits/throttle")) == 450
    figures = _mntr(server)
    assert int(figures["zk_request_throttle_wait_count"]) > 0
    assert int(figures["zk_outstanding_requests"]) == 0


def _ruok_answered(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(b"ruok")
            return sock.recv(16) == b"imok"
        except OSError:
            return False


def test_connection_rate_per_ip_refuses_a_flood_only(server_factory, kazoo_client):
    """
    A burst of 3 then 1 per second: a tight loop of connections is cut off, a client
    connected before keeps working, and the address is welcome again a moment later.
    """
    server = server_factory(
        "zkreg",
        extra_args=["--connection-rate-per-ip", "1", "--connection-burst-per-ip", "3"],
    )
    # The launcher's readiness probes took tokens: wait until one is back.
    wait_until(lambda: _ruok_answered(server.port), timeout=30)
    client = kazoo_client(server)
    client.ensure_path("/limits/rate")
    started = time.monotonic()
    answered = [_ruok_answered(server.port) for _ in range(20)]
    elapsed = time.monotonic() - started
    refused = answered.count(False)
    # At most the burst plus what refilled during the loop got through.
    assert refused >= 20 - 3 - int(elapsed * 1) - 1, (answered, elapsed)
    assert refused >= 1
    client.set("/limits/rate", b"still served")
    assert client.get("/limits/rate")[0] == b"still served"
    # The address is welcome again once the bucket refills (mntr is a connection too).
    figures = wait_until(lambda: _mntr(server), timeout=30, message="mntr answered")
    assert int(figures["zk_connection_rejected"]) >= refused
