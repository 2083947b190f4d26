"""
The framework's retry loop and state wiring on a L{task.Clock} with an in-memory
server: pauses come from the policy and pass on the reactor's clock, operations wait
for a connection up to the connection timeout, and a simulated expiration goes
SUSPENDED -> LOST -> a new session (RECONNECTED).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from curatorish import errors
from curatorish.connection import ZooKeeperConnection
from curatorish.framework import CuratorFramework
from curatorish.retry import RetryNTimes
from curatorish.state import ConnectionState
from tests.curatorish.fakes import STAT, FakeNetwork
from zkreg.proto.consts import OpCode
from zkreg.proto.records import ExistsResponse, RequestHeader


def make_client(**options: Any):
    clock = Clock()
    network = FakeNetwork()
    connection = ZooKeeperConnection(
        "h1:1",
        clock,
        session_timeout_ms=9000,
        endpoint_factory=network,
        reconnect_delay_ms=100,
        reconnect_jitter_ms=0,
    )
    states: list[ConnectionState] = []
    options.setdefault("retry_policy", RetryNTimes(2, 1000))
    client = CuratorFramework(
        "h1:1", reactor=clock, connection=connection, default_data=b"", **options
    )
    client.add_connection_state_listener(lambda c, state: states.append(state))
    client.start()
    return client, clock, network, states


def results_of(deferred: defer.Deferred[Any]) -> list[Any]:
    box: list[Any] = []
    deferred.addBoth(box.append)
    return box


def answer_exists(side: Any) -> int:
    """Answer every exists request written so far (pings aside); return how many."""
    count = 0
    for frame in side.frames():
        header, _ = RequestHeader.deserialize(frame, 0)
        if header.type == OpCode.ping:
            continue
        assert header.type == OpCode.exists
        side.reply(header.xid, 1, body=ExistsResponse(STAT).serialize())
        count += 1
    return count


def test_retry_pauses_are_the_policys_on_the_reactor_clock() -> None:
    client, clock, network, states = make_client()
    side = network.last
    side.accept(timeout_ms=6000)
    client._core.debug_fail_before_next_operation = 2
    result = results_of(client.exists("/x"))
    assert answer_exists(side) == 0
    clock.advance(0.999)
    assert answer_exists(side) == 0
    clock.advance(0.002)
    clock.advance(0.998)
    assert answer_exists(side) == 0
    clock.advance(0.002)
    assert answer_exists(side) == 1
    assert result == [STAT]


def test_retries_run_out() -> None:
    client, clock, network, states = make_client(retry_policy=RetryNTimes(1, 10))
    network.last.accept()
    client._core.debug_fail_before_next_operation = 2
    result = results_of(client.exists("/x"))
    clock.advance(0.01)
    assert result[0].check(errors.ConnectionLossError)


def test_operations_wait_for_a_connection_up_to_the_connection_timeout() -> None:
    client, clock, network, states = make_client(
        connection_timeout_ms=2000, retry_policy=RetryNTimes(0, 0)
    )
    result = results_of(client.exists("/x"))
    clock.advance(1.9)
    assert result == []
    clock.advance(0.2)
    assert result[0].check(errors.ConnectionLossError)
    late = results_of(client.exists("/y"))
    clock.advance(0.5)
    network.last.accept()
    assert answer_exists(network.last) == 1
    assert late == [STAT]


def test_simulated_expiration_lost_then_new_session() -> None:
    client, clock, network, states = make_client()
    first = network.last
    first.accept(session_id=0x11, timeout_ms=6000)
    clock.advance(0)
    network.refuse = True
    first.transport.loseConnection()
    clock.advance(0)
    assert states == [ConnectionState.CONNECTED, ConnectionState.SUSPENDED]
    clock.advance(5.9)
    assert ConnectionState.LOST not in states
    clock.pump([0.1] * 3)
    assert states[-1] is ConnectionState.LOST
    network.refuse = False
    clock.pump([0.5] * 4)
    request = network.last.accept(session_id=0x22)
    assert request.sessionId == 0
    clock.advance(0)
    assert states[-1] is ConnectionState.RECONNECTED
    assert client.session_id == 0x22


def test_closed_client_fails_operations_and_stops_retrying() -> None:
    client, clock, network, states = make_client()
    network.last.accept()
    client._core.debug_fail_before_next_operation = 1
    pending = results_of(client.exists("/x"))
    closing = results_of(client.close())
    clock.advance(2)
    assert pending and pending[0].check(errors.ConnectionClosedError, defer.CancelledError)
    assert results_of(client.exists("/x"))[0].check(errors.ConnectionClosedError)
    assert closing == [] or closing == [None]
