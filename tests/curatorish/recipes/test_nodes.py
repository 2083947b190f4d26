"""
PersistentNode, PersistentTtlNode and GroupMember against ZooKeeper and zkreg: the node
comes back after it is deleted, after its session expires, and after a server restart
longer than the session timeout (where a hand-made ephemeral is lost).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from curatorish.kill_session import expire_session, session_of
from curatorish.recipes import GroupMember, PersistentNode, PersistentTtlNode
from tests.support.waiting import wait_until
from zkreg.proto.consts import CreateMode


def _path(name: str) -> str:
    return f"/nodes/{name}-{uuid.uuid4().hex[:8]}"


def _owner(client: Any, path: str) -> int | None:
    stat = client.exists(path)
    return None if stat is None else stat.ephemeralOwner


def test_ephemeral_node_recreated_when_deleted(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    other = make_client(server.hosts)
    path = _path("deleted")
    created: list[str] = []
    node = PersistentNode(client, CreateMode.EPHEMERAL, False, path, b"v1")
    node.add_listener(created.append)
    node.start()
    assert node.wait_for_initial_create(30)
    assert node.get_actual_path() == path
    assert other.get_data(path)[0] == b"v1"
    assert _owner(other, path) == session_of(client)[0]

    node.set_data(b"v2")
    other.delete(path)
    wait_until(lambda: other.exists(path) is not None, timeout=30, message="recreated")
    assert other.get_data(path)[0] == b"v2"
    wait_until(lambda: len(created) == 2, timeout=10)

    node.close()
    assert other.exists(path) is None


def test_protected_sequential_node_keeps_its_name_across_expiry(
    server: Any, make_client: Any
) -> None:
    client = make_client(server.hosts)
    other = make_client(server.hosts)
    parent = _path("seq")
    node = PersistentNode(client, CreateMode.EPHEMERAL_SEQUENTIAL, True, parent + "/w-", b"x")
    node.start()
    assert node.wait_for_initial_create(30)
    actual = node.get_actual_path()
    assert actual is not None
    name = actual.rsplit("/", 1)[1]
    assert name.startswith("_c_") and name[-10:].isdigit(), name
    old_session = session_of(client)[0]

    assert expire_session(server.hosts, *session_of(client))
    wait_until(
        lambda: _owner(other, actual) not in (None, old_session),
        timeout=60,
        message="recreated in a new session",
    )
    assert other.get_children(parent) == [name]  # no duplicate
    node.close()
    assert other.get_children(parent) == []


def test_async_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("async")
    node = PersistentNode(client.async_client, CreateMode.PERSISTENT, False, path, b"a")
    client.call(node.start)
    assert client.call(node.wait_for_initial_create, 30) is True
    assert client.get_data(path)[0] == b"a"
    client.call(node.close)
    assert client.exists(path) is None


def test_takes_over_an_existing_node(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("existing")
    client.create(path, b"old", parents=True)
    node = PersistentNode(client, CreateMode.PERSISTENT, False, path, b"new")
    node.start()
    assert node.wait_for_initial_create(30)
    assert client.get_data(path)[0] == b"new"
    node.close()


@pytest.mark.slow
def test_worker_stays_registered_across_a_long_server_restart(
    private_server: Any, make_client: Any
) -> None:
    """
    The server is down longer than the session timeout: the client's session is lost,
    and its hand-made ephemeral goes when the restarted server expires the old session;
    the PersistentNode's is back, owned by the new session.
    """
    states: list[str] = []
    client = make_client(
        private_server.hosts if hasattr(private_server, "hosts") else private_server.connect_string,
        states=states,
        session_timeout_ms=4_000,
        connection_timeout_ms=2_000,
    )
    hosts = (
        private_server.hosts if hasattr(private_server, "hosts") else private_server.connect_string
    )
    registered = "/workers/persistent"
    hand_made = "/workers/hand-made"
    client.create(hand_made, b"", mode=CreateMode.EPHEMERAL, parents=True)
    node = PersistentNode(client, CreateMode.EPHEMERAL, False, registered, b"worker-1")
    node.start()
    assert node.wait_for_initial_create(30)
    old_session = session_of(client)[0]

    private_server.stop()
    wait_until(lambda: "LOST" in states, timeout=60, message="session LOST while down")
    private_server.start()

    observer = make_client(hosts)
    wait_until(
        lambda: _owner(observer, registered) not in (None, old_session),
        timeout=90,
        message="worker re-registered in its new session",
    )
    wait_until(lambda: observer.exists(hand_made) is None, timeout=90, message="hand-made gone")
    assert observer.get_data(registered)[0] == b"worker-1"
    assert _owner(observer, registered) == session_of(client)[0]
    node.close()


def test_ttl_node_container_and_touch(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("ttl")
    node = PersistentTtlNode(client, path, 400, b"data")
    node.start()
    assert node.wait_for_initial_create(30)
    assert client.get_data(path)[0] == b"data"
    wait_until(lambda: client.exists(path + "/touch") is not None, timeout=30, message="touch")
    node.close()


def test_group_members(server: Any, make_client: Any) -> None:
    path = _path("group")
    first = GroupMember(make_client(server.hosts), path, "one", b"1")
    second = GroupMember(make_client(server.hosts), path, "two", b"2")
    assert first.get_current_members() == {"one": b"1"}  # itself, before start
    first.start()
    second.start()
    assert first.wait_for_initial_create(30) and second.wait_for_initial_create(30)
    wait_until(lambda: first.get_current_members() == {"one": b"1", "two": b"2"}, timeout=30)
    second.set_this_data(b"2b")
    wait_until(lambda: first.get_current_members().get("two") == b"2b", timeout=30)
    second.close()
    wait_until(lambda: first.get_current_members() == {"one": b"1"}, timeout=30)
    first.close()


def test_no_duplicate_across_reconnects(server: Any, proxy: Any, make_client: Any) -> None:
    """
    A protected sequential node recreated on every RECONNECTED: connections cut again
    and again (the session survives) leave exactly one node, the same one.
    """
    states: list[str] = []
    client = make_client(proxy.hosts, states=states)
    observer = make_client(server.hosts)
    parent = _path("reconnects")
    node = PersistentNode(client, CreateMode.EPHEMERAL_SEQUENTIAL, True, parent + "/w-", b"x")
    node.start()
    assert node.wait_for_initial_create(30)
    first = node.get_actual_path()
    for round_number in range(1, 4):
        proxy.cut()
        wait_until(
            lambda n=round_number: states.count("RECONNECTED") >= n,
            timeout=30,
            message="reconnect",
        )
        wait_until(lambda: observer.get_children(parent) != [], timeout=30)
        assert observer.get_children(parent) == [first.rsplit("/", 1)[1]]
    assert node.get_actual_path() == first
    node.close()
