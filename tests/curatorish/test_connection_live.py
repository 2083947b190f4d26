"""
The bare connection (no framework) against real servers: the operations the
framework does not wrap, run as an async scenario on the shared reactor.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.endpoints import HostnameEndpoint, connectProtocol

from curatorish import errors
from curatorish.connection import (
    CheckOp,
    CreateOp,
    ErrorResult,
    GetChildrenOp,
    GetChildrenResult,
    GetDataOp,
    GetDataResult,
    WatchedEvent,
    ZooKeeperConnection,
)
from curatorish.connection.protocol import ClientProtocol
from curatorish.reactor_thread import call_in_reactor, shared_reactor
from zkreg.proto.consts import AddWatchMode, CreateMode, EventType, WatcherType


async def scenario(hosts: str, root: str) -> dict[str, Any]:
    reactor = shared_reactor()
    zk = ZooKeeperConnection(hosts, reactor, session_timeout_ms=10_000)
    zk.start()
    seen: dict[str, Any] = {}
    try:
        assert await zk.wait_connected(15)
        await zk.create(root, b"r")
        await zk.multi([CreateOp(f"{root}/a", b"1"), CreateOp(f"{root}/b", b"2")])
        seen["multi_read"] = await zk.multi_read(
            [GetDataOp(f"{root}/a"), GetChildrenOp(root), GetDataOp(f"{root}/missing")]
        )
        try:
            await zk.multi([CheckOp(f"{root}/a", 5), CreateOp(f"{root}/c")])
        except errors.BadVersionError as error:
            seen["multi_error"] = (error.path, error.results)
        seen["count"] = await zk.get_all_children_number(root)
        events: list[WatchedEvent] = []
        await zk.add_watch(root, events.append, AddWatchMode.PERSISTENT)
        await zk.remove_all_watches(root, WatcherType.Any, local=True)
        seen["local_removal"] = list(events)
        await zk.get_data(f"{root}/a", events.append)
        try:
            await zk.remove_watcher(f"{root}/a", lambda e: None)
        except errors.NoWatcherError:
            seen["no_such_watcher"] = True
        await zk.remove_watcher(f"{root}/a", events.append, WatcherType.Data)
        seen["removed"] = list(events)
        seen["ttl"] = await zk.create(
            f"{root}/t-", mode=CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=60_000
        )
        try:
            await zk.create(f"{root}/e", mode=CreateMode.EPHEMERAL)
            await zk.create(f"{root}/e/child")
        except errors.NoChildrenForEphemeralsError:
            seen["ephemeral_parent"] = True
    finally:
        await zk.close()
    seen["closed_state"] = zk.state.value
    return seen


def test_connection_operations(server: Any, unique_path: str) -> None:
    seen = call_in_reactor(scenario, server.hosts, unique_path, timeout_s=60)
    data, children, missing = seen["multi_read"]
    assert isinstance(data, GetDataResult) and data.data == b"1"
    assert isinstance(children, GetChildrenResult) and sorted(children.children) == ["a", "b"]
    assert missing == ErrorResult(errors.NoNodeError.code)
    path, results = seen["multi_error"]
    assert path == f"{unique_path}/a"
    assert [r.err for r in results] == [errors.BadVersionError.code, -2]
    assert seen["count"] == 2
    assert [e.type for e in seen["local_removal"]] == [EventType.PersistentWatchRemoved]
    assert seen["no_such_watcher"] is True
    assert [e.type for e in seen["removed"][1:]] == [EventType.DataWatchRemoved]
    ttl_path, _ = seen["ttl"]
    assert ttl_path.startswith(f"{unique_path}/t-") and len(ttl_path.rsplit("-", 1)[1]) == 10
    assert seen["ephemeral_parent"] is True
    assert seen["closed_state"] == "CLOSED"


class _QuietOwner:
    """A connection owner that only records that the connection was made."""

    def __init__(self) -> None:
        self.connected = False

    def _protocol_connected(self, protocol: Any) -> None:
        self.connected = True

    def _frame_received(self, protocol: Any, frame: bytes) -> None:
        pass

    def _protocol_lost(self, protocol: Any, reason: Any) -> None:
        pass


def test_connections_are_made_with_tcp_nodelay(server: Any) -> None:
    """
    A request must not wait for Nagle until the previous one is acknowledged while
    calls are in flight: TCP_NODELAY, as Java's client and kazoo set it.
    """
    reactor = shared_reactor()
    host, port = server.hosts.rsplit(":", 1)
    owner = _QuietOwner()
    protocol = ClientProtocol(owner, (host, int(port)))
    call_in_reactor(
        lambda: connectProtocol(HostnameEndpoint(reactor, host, int(port)), protocol),
        timeout_s=30,
    )
    try:
        handle = call_in_reactor(lambda: protocol.transport.getHandle())  # type: ignore[union-attr]
        assert owner.connected
        assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        call_in_reactor(protocol.abort)
