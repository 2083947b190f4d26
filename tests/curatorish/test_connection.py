"""
The connection's protocol behaviour, byte for byte, with in-memory transports and a
L{task.Clock}: handshake, pings, read timeout and reconnect with the same session,
auth replay and watch re-registration, expiry, request timeouts, auth failure, close.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from curatorish import errors
from curatorish.connection import ClientState, WatchedEvent, ZooKeeperConnection
from curatorish.connection.protocol import MAX_FRAME_LENGTH
from tests.curatorish.fakes import PASSWORD, STAT, FakeNetwork
from zkreg.proto.consts import AddWatchMode, EventType, KeeperState, OpCode, Xid
from zkreg.proto.records import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateRequest,
    GetDataRequest,
    GetDataResponse,
    ReplyHeader,
    RequestHeader,
    SetWatches,
    SetWatches2,
    WatcherEvent,
)


def make_connection(connect_string: str = "h1:1,h2:2", **options: Any):
    clock = Clock()
    network = FakeNetwork()
    states: list[ClientState] = []
    connection = ZooKeeperConnection(
        connect_string,
        clock,
        session_timeout_ms=9000,
        endpoint_factory=network,
        reconnect_jitter_ms=0,
        **options,
    )
    connection.add_state_listener(states.append)
    connection.start()
    return connection, clock, network, states


def results_of(deferred: defer.Deferred[Any]) -> list[Any]:
    box: list[Any] = []
    deferred.addBoth(box.append)
    return box


def test_handshake_asks_for_read_only_and_takes_the_negotiated_timeout() -> None:
    connection, clock, network, states = make_connection(can_be_read_only=True)
    request = network.last.accept(timeout_ms=6000, read_only=True)
    assert request == ConnectRequest(0, 0, 9000, 0, b"\0" * 16, True)
    assert states == [ClientState.CONNECTED_READ_ONLY]
    assert connection.negotiated_timeout_ms == 6000
    assert connection.session_id == 0x55 and connection.session_password == PASSWORD


def test_pings_at_a_third_of_the_negotiated_timeout() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept(timeout_ms=6000)
    clock.advance(1.9)
    assert side.frames() == []
    clock.advance(0.2)
    assert side.frames() == [RequestHeader(Xid.PING, OpCode.ping).serialize()]
    side.reply(Xid.PING, 0)
    assert connection.is_connected


def test_a_request_puts_the_next_ping_off() -> None:
    """
    The ping goes out a third of the timeout after the last request, not after the
    handshake (the timer is not pushed back per request: it looks when it fires).
    """
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept(timeout_ms=6000)
    clock.advance(1.5)
    connection.get_data("/a")
    [request] = side.frames()
    assert RequestHeader.deserialize(request, 0)[0].type == OpCode.getData
    clock.advance(1.9)
    assert side.frames() == []
    clock.advance(0.2)
    assert side.frames() == [RequestHeader(Xid.PING, OpCode.ping).serialize()]


def test_a_reply_puts_the_read_timeout_off() -> None:
    """
    The connection is dropped two thirds of the timeout after the last frame heard,
    not after the handshake.
    """
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept(timeout_ms=6000)
    clock.advance(3.0)
    side.reply(Xid.PING, 0)
    clock.advance(3.9)
    assert side.connected
    clock.advance(0.2)
    assert not side.connected
    assert states == [ClientState.CONNECTED, ClientState.DISCONNECTED]


def test_silence_for_two_thirds_drops_the_server_and_keeps_the_session() -> None:
    connection, clock, network, states = make_connection()
    first = network.last
    first.accept(timeout_ms=6000)
    pending = results_of(connection.get_data("/a"))
    clock.advance(3.9)
    assert first.connected
    clock.advance(0.2)
    assert not first.connected
    assert states == [ClientState.CONNECTED, ClientState.DISCONNECTED]
    assert pending[0].check(errors.ConnectionLossError)
    clock.advance(0)
    second = network.last
    assert second is not first and second.peer != first.peer
    request = second.accept()
    assert (request.sessionId, request.passwd) == (0x55, PASSWORD)
    assert states[-1] is ClientState.CONNECTED


def test_replies_complete_requests_in_order_and_track_the_zxid() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    created = results_of(connection.create("/n", b"d"))
    read = results_of(connection.get_data("/n"))
    first, second = side.frames()
    header, offset = RequestHeader.deserialize(first, 0)
    assert header.type == OpCode.create2
    assert CreateRequest.deserialize(first, offset)[0].path == "/n"
    side.reply(header.xid, 7, body=Create2Response("/n", STAT).serialize())
    read_header, _ = RequestHeader.deserialize(second, 0)
    side.reply(read_header.xid, 7, err=errors.NoNodeError.code)
    assert created == [("/n", STAT)]
    assert read[0].check(errors.NoNodeError) and read[0].value.path == "/n"
    assert connection.last_zxid == 7


def test_requests_made_by_the_replies_of_one_read_leave_in_one_write() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    reads = [connection.get_data("/n") for _ in range(3)]
    xids = [RequestHeader.deserialize(frame, 0)[0].xid for frame in side.frames()]
    again = []
    for read in reads:
        read.addCallback(lambda _: again.append(connection.get_data("/m")))
    writes: list[bytes] = []
    write = side.transport.write
    side.transport.write = lambda data: (writes.append(data), write(data))  # type: ignore[method-assign]
    body = GetDataResponse(b"d", STAT).serialize()
    replies = [ReplyHeader(xid, 7, 0).serialize() + body for xid in xids]
    side.protocol.dataReceived(b"".join(struct.pack(">i", len(r)) + r for r in replies))
    assert len(again) == 3 and len(writes) == 1
    frames = side.frames()
    assert [GetDataRequest.deserialize(f, 8)[0].path for f in frames] == ["/m"] * 3


def test_replies_split_anywhere_and_joined_in_one_segment_complete_in_order() -> None:
    """
    The protocol's own framing: replies cut at every byte (the length prefix too) and
    several in one segment each complete their request once, in order; an empty
    reply body (a frame of just its header) is a frame too.
    """
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    reads = [results_of(connection.get_data(f"/n{i}")) for i in range(3)]
    checked = results_of(connection.exists("/n"))
    xids = [RequestHeader.deserialize(frame, 0)[0].xid for frame in side.frames()]
    bodies = [GetDataResponse(b"d%d" % i, STAT).serialize() for i in range(3)]
    frames = [ReplyHeader(x, 7, 0).serialize() + b for x, b in zip(xids, bodies, strict=False)]
    frames.append(ReplyHeader(xids[3], 8, errors.NoNodeError.code).serialize())
    stream = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    first = len(frames[0]) + 4
    for byte in stream[:first]:
        side.protocol.dataReceived(bytes([byte]))
    assert reads[0] == [(b"d0", STAT)] and reads[1] == []
    side.protocol.dataReceived(stream[first : first + 2])
    side.protocol.dataReceived(stream[first + 2 :])
    assert reads[1:] == [[(b"d1", STAT)], [(b"d2", STAT)]]
    assert checked == [None]
    assert connection.last_zxid == 8 and side.connected


def test_a_frame_longer_than_the_limit_drops_the_connection() -> None:
    """A length over MAX_FRAME_LENGTH (or with the top bit set) is a broken stream."""
    for length in (MAX_FRAME_LENGTH + 1, 0x80000000):
        connection, clock, network, states = make_connection()
        side = network.last
        side.accept()
        pending = results_of(connection.exists("/x"))
        side.protocol.dataReceived(struct.pack(">I", length) + b"\0" * 16)
        assert not side.connected
        assert pending[0].check(errors.ConnectionLossError)


def test_an_out_of_order_reply_drops_the_connection() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    pending = results_of(connection.exists("/x"))
    side.reply(999, 1)
    assert pending[0].check(errors.ConnectionLossError)
    assert not side.connected


def test_watch_events_reach_watchers_without_the_chroot() -> None:
    connection, clock, network, states = make_connection("h:1/app")
    side = network.last
    side.accept()
    events: list[WatchedEvent] = []
    read = results_of(connection.get_data("/node", events.append))
    frame = side.frames()[0]
    header, offset = RequestHeader.deserialize(frame, 0)
    assert GetDataRequest.deserialize(frame, offset)[0] == GetDataRequest("/app/node", True)
    side.reply(header.xid, 3, body=GetDataResponse(b"v", STAT).serialize())
    assert read == [(b"v", STAT)]
    event = WatcherEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/app/node")
    side.reply(Xid.NOTIFICATION, 4, body=event.serialize())
    side.reply(Xid.NOTIFICATION, 5, body=event.serialize())
    assert events == [WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/node")]


def test_reconnect_replays_auth_then_re_registers_watches_then_sends_queued_requests() -> None:
    connection, clock, network, states = make_connection("h:1/app")
    side = network.last
    side.accept()
    auth = results_of(connection.add_auth("digest", b"u:p"))
    frame = side.frames()[0]
    assert RequestHeader.deserialize(frame, 0)[0] == RequestHeader(Xid.AUTH, OpCode.auth)
    side.reply(Xid.AUTH, 0)
    assert auth == [None]
    results_of(connection.exists("/missing", lambda e: None))
    results_of(connection.add_watch("/tree", lambda e: None, AddWatchMode.PERSISTENT_RECURSIVE))
    exists_frame, watch_frame = side.frames()
    side.reply(RequestHeader.deserialize(exists_frame, 0)[0].xid, 10, err=errors.NoNodeError.code)
    side.reply(RequestHeader.deserialize(watch_frame, 0)[0].xid, 11, body=b"\0\0\0\0")
    side.transport.loseConnection()
    queued = results_of(connection.sync("/"))
    clock.advance(0)
    second = network.last
    request = second.accept()
    assert request.lastZxidSeen == 11
    auth_frame, watches_frame, queued_frame = second.frames()
    header, offset = RequestHeader.deserialize(auth_frame, 0)
    assert header == RequestHeader(Xid.AUTH, OpCode.auth)
    assert AuthPacket.deserialize(auth_frame, offset)[0] == AuthPacket(0, "digest", b"u:p")
    header, offset = RequestHeader.deserialize(watches_frame, 0)
    assert header == RequestHeader(Xid.SET_WATCHES, OpCode.setWatches2)
    assert SetWatches2.deserialize(watches_frame, offset)[0] == SetWatches2(
        11, [], ["/app/missing"], [], [], ["/app/tree"]
    )
    assert RequestHeader.deserialize(queued_frame, 0)[0].type == OpCode.sync
    assert queued == []


def test_one_shot_watches_alone_use_set_watches() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    results_of(connection.get_children("/p", lambda e: None))
    frame = side.frames()[0]
    side.reply(RequestHeader.deserialize(frame, 0)[0].xid, 4, body=b"\0\0\0\0")
    side.transport.loseConnection()
    clock.advance(0)
    network.last.accept()
    frame = network.last.frames()[0]
    header, offset = RequestHeader.deserialize(frame, 0)
    assert header == RequestHeader(Xid.SET_WATCHES, OpCode.setWatches)
    assert SetWatches.deserialize(frame, offset)[0] == SetWatches(4, [], [], ["/p"])


def test_expired_session_drops_watches_and_starts_a_new_session() -> None:
    connection, clock, network, states = make_connection()
    network.last.accept()
    events: list[WatchedEvent] = []
    connection.watches.add("data", "/w", events.append)
    network.last.transport.loseConnection()
    clock.advance(0)
    network.last.frames()
    network.last.send(ConnectResponse(0, 0, 0, b"\0" * 16, False).serialize())
    assert ClientState.EXPIRED in states
    assert events == [WatchedEvent(EventType.NONE, KeeperState.Expired, None)]
    assert connection.watches.is_empty()
    clock.advance(1.0)
    request = network.last.accept(session_id=0x66)
    assert request.sessionId == 0 and request.lastZxidSeen == 0
    assert states[-1] is ClientState.CONNECTED and connection.session_id == 0x66


def test_injected_expiration_without_renewal_stays_expired() -> None:
    connection, clock, network, states = make_connection(renew_expired_session=False)
    network.last.accept()
    connection.inject_session_expiration()
    assert states[-1] is ClientState.EXPIRED
    failed = results_of(connection.exists("/"))
    assert failed[0].check(errors.SessionExpiredError)


def test_request_timeout_fails_the_request_and_drops_the_connection() -> None:
    connection, clock, network, states = make_connection(request_timeout_ms=500)
    side = network.last
    side.accept(timeout_ms=6000)
    slow = results_of(connection.get_data("/slow"))
    other = results_of(connection.get_data("/other"))
    clock.advance(0.5)
    assert slow[0].check(errors.RequestTimeoutError)
    assert other[0].check(errors.ConnectionLossError)
    assert not side.connected


def test_auth_failure_ends_the_client() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    auth = results_of(connection.add_auth("bogus", b"x"))
    pending = results_of(connection.exists("/"))
    side.reply(Xid.AUTH, 0, err=errors.AuthFailedError.code)
    assert auth[0].check(errors.AuthFailedError)
    assert pending[0].check(errors.AuthFailedError)
    assert states[-1] is ClientState.AUTH_FAILED
    clock.advance(60)
    assert len(network.connections) == 1


def test_all_servers_refusing_pauses_between_rounds() -> None:
    clock = Clock()
    network = FakeNetwork()
    network.refuse = True
    connection = ZooKeeperConnection(
        "a:1,b:2,c:3",
        clock,
        endpoint_factory=network,
        reconnect_delay_ms=1000,
        reconnect_jitter_ms=0,
    )
    attempts: list[float] = []
    original = network.__call__

    def counting(reactor: Any, host: str, port: int, timeout_s: float) -> Any:
        attempts.append(clock.seconds())
        return original(reactor, host, port, timeout_s)

    connection._endpoint_factory = counting
    connection.start()
    clock.advance(0)
    clock.advance(0)
    assert len(attempts) == 3  # one round, at once
    clock.advance(0.49)
    assert len(attempts) == 3
    clock.advance(0.52)
    assert len(attempts) == 4


def test_close_sends_close_session_and_fails_what_is_left() -> None:
    connection, clock, network, states = make_connection()
    side = network.last
    side.accept()
    closed = results_of(connection.close())
    (frame,) = side.frames()
    header, _ = RequestHeader.deserialize(frame, 0)
    assert header.type == OpCode.closeSession
    side.reply(header.xid, 9)
    assert closed == [None]
    assert states[-1] is ClientState.CLOSED
    assert results_of(connection.exists("/"))[0].check(errors.ConnectionClosedError)


def test_read_only_session_looks_for_a_read_write_server() -> None:
    connection, clock, network, states = make_connection("h1:1,h2:2", can_be_read_only=True)
    read_only_side = network.last
    read_only_side.accept(session_id=0x77, read_only=True)
    assert states == [ClientState.CONNECTED_READ_ONLY]
    clock.advance(0.1)
    probe = network.last
    assert probe is not read_only_side and probe.peer != read_only_side.peer
    assert probe.transport.value() == b"isro"
    probe.protocol.dataReceived(b"ro")
    probe.transport.loseConnection()
    assert read_only_side.connected
    clock.advance(0.2)  # the backoff doubled
    second_probe = network.last
    assert second_probe is not probe and second_probe.transport.value() == b"isro"
    second_probe.protocol.dataReceived(b"rw")
    second_probe.transport.loseConnection()
    assert not read_only_side.connected
    clock.advance(0)
    read_write_side = network.last
    assert read_write_side.peer == second_probe.peer
    # A read-only server's session is not resumed before a read-write server took it.
    assert read_write_side.accept(session_id=0x88).sessionId == 0
    assert states[-1] is ClientState.CONNECTED
    read_write_side.transport.loseConnection()
    clock.advance(0)
    assert network.last.accept(session_id=0x88).sessionId == 0x88


def test_add_auth_while_disconnected_is_answered_by_the_replay() -> None:
    connection, clock, network, states = make_connection()
    accepted = results_of(connection.add_auth("digest", b"a:b"))
    refused = results_of(connection.add_auth("bogus", b"c"))
    side = network.last
    side.accept()
    auth_frames = side.frames()
    assert [RequestHeader.deserialize(f, 0)[0].xid for f in auth_frames] == [Xid.AUTH, Xid.AUTH]
    assert accepted == [] and refused == []
    side.reply(Xid.AUTH, 0)
    assert accepted == [None]
    side.reply(Xid.AUTH, 0, err=errors.AuthFailedError.code)
    assert refused[0].check(errors.AuthFailedError)


def test_add_auth_waiting_for_a_connection_fails_when_closed() -> None:
    connection, clock, network, states = make_connection()
    waiting = results_of(connection.add_auth("digest", b"a:b"))
    connection.close()
    assert waiting[0].check(errors.ConnectionClosedError)
