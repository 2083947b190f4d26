"""
The framework against real servers: each test runs against Apache ZooKeeper 3.8 and
against zkreg (started by curatorish.testing), through the blocking face unless it
says otherwise.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

import pytest
from twisted.internet import defer

from curatorish import errors
from curatorish.connection import WatchedEvent
from curatorish.framework import CuratorFramework
from curatorish.node_names import is_protected_name
from curatorish.retry import RetryNTimes
from curatorish.transactions import TransactionResult
from tests.support.waiting import wait_until
from zkreg.proto.consts import CreateMode, EventType, Perms, WatcherType
from zkreg.proto.records import ACL, Id


def digest_id(user: str, password: str) -> Id:
    """The digest id ZooKeeper derives from C{user:password}."""
    digest = base64.b64encode(hashlib.sha1(f"{user}:{password}".encode()).digest()).decode()
    return Id("digest", f"{user}:{digest}")


def test_create_get_set_delete(server: Any, make_client: Any, unique_path: str) -> None:
    unstarted = make_client(server.hosts, start=False)
    assert unstarted.framework_state == "LATENT"
    with pytest.raises(RuntimeError):
        unstarted.exists("/")
    client = make_client(server.hosts)
    assert client.framework_state == "STARTED"
    created = client.create(unique_path, b"one")
    assert created.path == unique_path and created.stat.version == 0
    data, stat = client.get_data(unique_path)
    assert data == b"one" and stat.dataLength == 3
    assert client.set_data(unique_path, b"two", version=0).version == 1
    with pytest.raises(errors.BadVersionError):
        client.set_data(unique_path, b"three", version=0)
    with pytest.raises(errors.NodeExistsError):
        client.create(unique_path)
    client.delete(unique_path, version=1)
    assert client.exists(unique_path) is None
    with pytest.raises(errors.NoNodeError) as caught:
        client.delete(unique_path)
    assert caught.value.path == unique_path
    client.delete(unique_path, quietly=True)
    client.close()
    assert client.framework_state == "STOPPED"
    with pytest.raises(errors.ConnectionClosedError):
        client.exists("/")


def test_create_parents_and_containers(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    with pytest.raises(errors.NoNodeError):
        client.create(f"{unique_path}/a/b")
    client.create(f"{unique_path}/a/b", b"x", parents=True)
    assert client.get_data(f"{unique_path}/a/b")[0] == b"x"
    assert client.exists(unique_path).ephemeralOwner == 0
    client.create(f"{unique_path}/c/d", parents_as_containers=True)
    # A container parent disappears once its last child is gone.
    client.delete(f"{unique_path}/c/d")
    wait_until(
        lambda: client.exists(f"{unique_path}/c") is None, timeout=15, message="container reaped"
    )
    client.delete(unique_path, children=True)
    assert client.exists(unique_path) is None


def test_create_modes_and_ttl(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    client.create(unique_path)
    first = client.create(f"{unique_path}/seq-", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    second = client.create(f"{unique_path}/seq-", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    assert first.path == f"{unique_path}/seq-0000000000"
    assert second.path == f"{unique_path}/seq-0000000001"
    ephemeral = client.create(f"{unique_path}/eph", mode=CreateMode.EPHEMERAL)
    assert ephemeral.stat.ephemeralOwner == client.session_id
    assert client.async_client.zookeeper.session_id == client.session_id
    client.create(f"{unique_path}/ttl", mode=CreateMode.PERSISTENT_WITH_TTL, ttl=500)
    wait_until(
        lambda: client.exists(f"{unique_path}/ttl") is None, timeout=15, message="TTL expiry"
    )
    with pytest.raises(ValueError):
        client.create(f"{unique_path}/bad", mode=CreateMode.PERSISTENT_WITH_TTL)
    assert client.get_ephemerals(unique_path) == [f"{unique_path}/eph"]
    assert client.get_all_children_number(unique_path) == 3


def test_or_set_data_idempotent_and_compression(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    client.create(unique_path, b"v0")
    assert client.create(unique_path, b"v1", or_set_data=True).stat.version == 1
    assert client.get_data(unique_path)[0] == b"v1"
    node = f"{unique_path}/idem"
    client.create(node, b"same")
    assert client.create(node, b"same", idempotent=True).path == node
    with pytest.raises(errors.NodeExistsError):
        client.create(node, b"different", idempotent=True)
    text = b"compress me " * 100
    client.create(f"{unique_path}/gz", text, compress=True)
    raw, stat = client.get_data(f"{unique_path}/gz")
    assert gzip.decompress(raw) == text and stat.dataLength < len(text)
    assert client.get_data(f"{unique_path}/gz", decompress=True)[0] == text


def test_default_data(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts, default_data=b"default!")
    client.create(unique_path)
    assert client.get_data(unique_path)[0] == b"default!"
    client.create(f"{unique_path}/empty", b"")
    assert client.get_data(f"{unique_path}/empty")[0] in (b"", None)


def test_transaction_results_and_failure(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    client.create(unique_path, b"0")
    ops = client.ops
    results = client.transaction(
        [
            ops.create(f"{unique_path}/a", b"a"),
            ops.set_data(unique_path, b"1", version=0),
            ops.check(unique_path, version=1),
            ops.delete(f"{unique_path}/a"),
        ]
    )
    assert [r.op_type for r in results] == ["CREATE", "SET_DATA", "CHECK", "DELETE"]
    assert results[0] == TransactionResult(
        "CREATE", f"{unique_path}/a", f"{unique_path}/a", results[0].result_stat
    )
    assert results[1].result_stat.version == 1
    with pytest.raises(errors.BadVersionError) as caught:
        client.transaction([ops.create(f"{unique_path}/b"), ops.check(unique_path, version=7)])
    assert caught.value.path == unique_path
    assert [r.err for r in caught.value.results] == [0, errors.BadVersionError.code]
    assert client.exists(f"{unique_path}/b") is None


def test_namespace_isolation(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    namespace = unique_path.lstrip("/")
    view = client.using_namespace(namespace)
    assert view.create("/x", b"1").path == "/x"
    assert view.get_children("/") == ["x"]
    assert client.get_data(f"{unique_path}/x")[0] == b"1"
    nested = view.using_namespace(f"{namespace}/inner")
    nested.create("/y", b"2", parents=True)
    assert client.exists(f"{unique_path}/inner/y") is not None
    events: list[WatchedEvent] = []
    view.get_data("/x", watcher=events.append)
    client.set_data(f"{unique_path}/x", b"3")
    wait_until(lambda: events, message="namespaced watch")
    assert events[0].path == "/x" and events[0].type == EventType.NodeDataChanged
    assert view.transaction([view.ops.create("/z")])[0].result_path == "/z"
    assert view.sync("/x") == "/x"


def test_chroot_isolation(server: Any, make_client: Any, unique_path: str) -> None:
    root = make_client(server.hosts)
    root.create(unique_path)
    chrooted = make_client(server.hosts + unique_path)
    assert chrooted.create("/a", b"x").path == "/a"
    seq = chrooted.create("/s-", mode=CreateMode.EPHEMERAL_SEQUENTIAL)
    assert seq.path == "/s-0000000001"
    assert root.get_data(f"{unique_path}/a")[0] == b"x"
    assert sorted(chrooted.get_children("/")) == ["a", "s-0000000001"]
    assert chrooted.get_ephemerals("/") == ["/s-0000000001"]
    events: list[WatchedEvent] = []
    chrooted.add_watch("/", events.append, recursive=True)
    root.set_data(f"{unique_path}/a", b"y")
    wait_until(lambda: events, message="recursive watch under chroot")
    assert events[0].path == "/a"


def test_auth_and_acls(server: Any, make_client: Any, unique_path: str) -> None:
    owner = make_client(server.hosts, auth_info=[("digest", b"alice:secret")])
    owner.create(unique_path)
    acl = [ACL(int(Perms.ALL), digest_id("alice", "secret"))]
    node = f"{unique_path}/private"
    owner.create(node, b"mine", acl=acl)
    assert owner.get_acl(node)[0] == acl
    assert ("digest", "alice") in owner.who_am_i()
    stranger = make_client(server.hosts)
    with pytest.raises(errors.NoAuthError):
        stranger.get_data(node)
    stranger.add_auth("digest", b"alice:secret")
    assert stranger.get_data(node)[0] == b"mine"
    stat = owner.set_acl(node, [ACL(int(Perms.READ), Id("world", "anyone"))], version=0)
    assert stat.aversion == 1
    with pytest.raises(errors.NoAuthError):
        make_client(server.hosts).set_data(node, b"x")
    with pytest.raises(errors.InvalidACLError):
        owner.create(f"{unique_path}/noacl", acl=[ACL(int(Perms.ALL), Id("digest", "bad"))])


def test_acl_provider(server: Any, make_client: Any, unique_path: str) -> None:
    from curatorish.client_core import ACLProvider

    class ReadOnlyBelow(ACLProvider):
        def get_acl_for_path(self, path: str) -> Any:
            if path == unique_path + "/ro/x":
                return [ACL(int(Perms.READ | Perms.DELETE), Id("world", "anyone"))]
            return None

    client = make_client(server.hosts, acl_provider=ReadOnlyBelow())
    client.create(f"{unique_path}/ro/x", b"1", parents=True)
    assert client.get_acl(f"{unique_path}/ro/x")[0][0].perms == Perms.READ | Perms.DELETE
    with pytest.raises(errors.NoAuthError):
        client.set_data(f"{unique_path}/ro/x", b"2")
    assert client.get_acl(unique_path)[0][0].perms == Perms.ALL


def test_persistent_and_recursive_watches_and_removal(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    # ZooKeeper 3.8 keeps one watch mode per path and session (ZOOKEEPER-4466), so the
    # recursive watch is another session's.
    other = make_client(server.hosts)
    writer = make_client(server.hosts)
    client.create(unique_path)
    persistent: list[WatchedEvent] = []
    recursive: list[WatchedEvent] = []
    client.add_watch(unique_path, persistent.append)
    other.add_watch(unique_path, recursive.append, recursive=True)
    writer.set_data(unique_path, b"1")
    writer.create(f"{unique_path}/child")
    writer.set_data(f"{unique_path}/child", b"2")
    writer.set_data(unique_path, b"3")
    wait_until(lambda: len(persistent) >= 3 and len(recursive) >= 4, message="persistent events")
    assert [(e.type, e.path) for e in persistent] == [
        (EventType.NodeDataChanged, unique_path),
        (EventType.NodeChildrenChanged, unique_path),
        (EventType.NodeDataChanged, unique_path),
    ]
    assert [(e.type, e.path) for e in recursive] == [
        (EventType.NodeDataChanged, unique_path),
        (EventType.NodeCreated, f"{unique_path}/child"),
        (EventType.NodeDataChanged, f"{unique_path}/child"),
        (EventType.NodeDataChanged, unique_path),
    ]
    client.remove_watches(unique_path, persistent.append)
    wait_until(
        lambda: (
            persistent[-1].type in (EventType.DataWatchRemoved, EventType.PersistentWatchRemoved)
        ),
        message="watch-removed event",
    )
    count = len(persistent)
    other.remove_watches(unique_path, watcher_type=WatcherType.Any)
    with pytest.raises(errors.NoWatcherError):
        other.remove_watches(unique_path, recursive.append)
    other.remove_watches(unique_path, recursive.append, quietly=True)
    writer.set_data(unique_path, b"4")
    # A one-shot watch set afterwards proves the server's events still flow to us.
    marker: list[WatchedEvent] = []
    client.exists(unique_path, watcher=marker.append)
    other.exists(unique_path, watcher=marker.append)
    writer.set_data(unique_path, b"5")
    wait_until(lambda: len(marker) == 2, message="one-shot watches after removal")
    assert len(persistent) == count
    assert [e.type for e in recursive[4:]] == [EventType.PersistentWatchRemoved] or [
        e.type for e in recursive[4:]
    ] == [EventType.DataWatchRemoved]


def test_one_shot_watches_fire_once(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    events: list[WatchedEvent] = []
    assert client.exists(unique_path, watcher=events.append) is None
    client.create(unique_path)
    wait_until(lambda: events, message="exists watch on creation")
    client.get_children(unique_path, watcher=events.append)
    client.create(f"{unique_path}/c")
    client.create(f"{unique_path}/d")
    wait_until(lambda: len(events) >= 2, message="child watch")
    marker: list[WatchedEvent] = []
    client.get_data(unique_path, watcher=marker.append)
    client.set_data(unique_path, b"x")
    wait_until(lambda: marker, message="data watch")
    assert [e.type for e in events] == [EventType.NodeCreated, EventType.NodeChildrenChanged]


def test_misc_operations(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    client.create(unique_path)
    assert client.sync(unique_path) == unique_path
    assert ("ip", "127.0.0.1") in client.who_am_i()
    data, stat = client.get_config()
    assert stat is not None
    names, stat = client.get_children(unique_path, include_stat=True)
    assert names == [] and stat.numChildren == 0


def test_async_face_with_ensure_deferred(server: Any, make_client: Any, unique_path: str) -> None:
    """The Twisted face: an async def using Deferred-returning calls, on the reactor."""
    client = make_client(server.hosts)

    async def scenario(async_client: CuratorFramework, path: str) -> list[str]:
        await async_client.create(path + "/a", b"1", parents=True)
        both = await defer.gatherResults(
            [
                defer.ensureDeferred(async_client.create(path + "/b")),
                defer.ensureDeferred(async_client.create(path + "/c")),
            ]
        )
        assert [created.path for created in both] == [path + "/b", path + "/c"]
        return sorted(await async_client.get_children(path))

    assert client.run(scenario, unique_path) == ["a", "b", "c"]


# -- retries and recovery -------------------------------------------------------------


def test_retries_under_injected_connection_loss(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts, retry_policy=RetryNTimes(3, 10))
    core = client.async_client._core
    core.debug_fail_before_next_operation = 3
    client.create(unique_path, b"x")
    assert core.debug_fail_before_next_operation == 0
    core.debug_fail_before_next_operation = 4
    with pytest.raises(errors.ConnectionLossError):
        client.get_data(unique_path)


def test_retry_across_a_real_connection_loss(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(proxy.hosts, retry_policy=RetryNTimes(10, 100))
    client.create(unique_path)
    proxy.cut()
    # The connection is gone (or about to be): the retry loop waits and retries.
    client.set_data(unique_path, b"after")
    assert client.get_data(unique_path)[0] == b"after"


def test_protected_create_recovers_after_connection_loss(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    client.create(unique_path)
    core = client.async_client._core
    core.debug_fail_after_next_create = 1
    created = client.create(
        f"{unique_path}/job-", b"d", protected=True, mode=CreateMode.PERSISTENT_SEQUENTIAL
    )
    children = client.get_children(unique_path)
    assert children == [created.path.rsplit("/", 1)[1]]
    assert is_protected_name(children[0]) and children[0].endswith("job-0000000000")
    # Ephemeral protected nodes are found again in the same session too.
    core.debug_fail_after_next_create = 1
    eph = client.create(
        f"{unique_path}/lock-", protected=True, mode=CreateMode.EPHEMERAL_SEQUENTIAL
    )
    assert eph.stat.ephemeralOwner == client.session_id
    assert len(client.get_children(unique_path)) == 2


def test_protected_create_cleans_up_when_retries_run_out(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts, retry_policy=RetryNTimes(0, 0))
    client.create(unique_path)
    client.async_client._core.debug_fail_after_next_create = 1
    with pytest.raises(errors.ConnectionLossError):
        client.create(f"{unique_path}/n", protected=True, mode=CreateMode.EPHEMERAL)
    wait_until(lambda: client.get_children(unique_path) == [], message="protected cleanup")


def test_guaranteed_delete_after_a_failure(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    observer = make_client(server.hosts)
    client = make_client(proxy.hosts, retry_policy=RetryNTimes(1, 50), connection_timeout_ms=500)
    client.create(unique_path)
    proxy.block()
    proxy.cut()
    wait_until(lambda: not client.zookeeper.is_connected, message="client disconnected")
    with pytest.raises(errors.ConnectionLossError):
        client.delete(unique_path, guaranteed=True)
    assert observer.exists(unique_path) is not None
    proxy.unblock()
    wait_until(
        lambda: observer.exists(unique_path) is None, timeout=20, message="guaranteed delete"
    )


# -- connection states ------------------------------------------------------------------


def test_suspended_then_reconnected_with_watches_intact(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    states: list[Any] = []
    client = make_client(proxy.hosts, states=states)
    writer = make_client(server.hosts)
    client.create(unique_path, b"0")
    session = client.session_id
    data_events: list[WatchedEvent] = []
    child_events: list[WatchedEvent] = []
    persistent: list[WatchedEvent] = []
    client.get_data(unique_path, watcher=data_events.append)
    client.get_children(unique_path, watcher=child_events.append)
    client.create(f"{unique_path}-tree")
    client.add_watch(f"{unique_path}-tree", persistent.append, recursive=True)
    wait_until(lambda: states == ["CONNECTED"], message="CONNECTED")
    proxy.block()
    proxy.cut()
    wait_until(lambda: "SUSPENDED" in states, message="SUSPENDED")
    # Changes made while we are away fire our one-shot watches once we are back
    # (setWatches with our last zxid); persistent ones are re-registered, not replayed.
    writer.set_data(unique_path, b"1")
    writer.create(f"{unique_path}/kid")
    proxy.unblock()
    wait_until(lambda: states[-1] == "RECONNECTED", timeout=15, message="RECONNECTED")
    assert states == ["CONNECTED", "SUSPENDED", "RECONNECTED"]
    assert client.session_id == session
    wait_until(lambda: data_events and child_events, message="missed events")
    assert data_events[0].type == EventType.NodeDataChanged
    assert child_events[0].type == EventType.NodeChildrenChanged
    # The persistent watch is still registered after the reconnect.
    writer.create(f"{unique_path}-tree/kid", b"k")
    wait_until(lambda: persistent, message="persistent watch after reconnect")
    assert [(e.type, e.path) for e in persistent] == [
        (EventType.NodeCreated, f"{unique_path}-tree/kid")
    ]


def test_session_expiry_is_lost_then_a_new_session(
    server: Any, make_client: Any, unique_path: str
) -> None:
    from curatorish.kill_session import expire_session

    states: list[str] = []
    client = make_client(server.hosts, states=states)
    client.create(unique_path)
    client.create(f"{unique_path}/eph", mode=CreateMode.EPHEMERAL)
    expired_events: list[WatchedEvent] = []
    client.exists(f"{unique_path}/eph", watcher=expired_events.append)
    old_session = client.session_id
    zk = client.zookeeper
    assert expire_session(server.hosts, zk.session_id, zk.session_password)
    wait_until(
        lambda: "LOST" in states and states[-1] == "RECONNECTED",
        timeout=20,
        message="LOST then RECONNECTED",
    )
    assert states[0] == "CONNECTED" and "LOST" in states
    assert client.session_id not in (0, old_session)
    assert client.exists(f"{unique_path}/eph") is None
    # Watches belonged to the old session: its watchers heard it expire or the delete.
    assert expired_events


def test_simulated_expiration_posts_lost_while_suspended(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    states: list[str] = []
    client = make_client(
        proxy.hosts, session_timeout_ms=4000, session_expiration_percent=50, states=states
    )
    wait_until(lambda: states == ["CONNECTED"], message="CONNECTED")
    old_session = client.session_id
    proxy.block()
    proxy.cut()
    # LOST after half the negotiated timeout while SUSPENDED, though we never heard
    # from a server.
    wait_until(lambda: "LOST" in states, timeout=10, message="simulated LOST")
    assert states[:3] == ["CONNECTED", "SUSPENDED", "LOST"]
    proxy.unblock()
    wait_until(lambda: states[-1] == "RECONNECTED", timeout=15, message="new session")
    assert client.session_id != old_session
    assert client.create(unique_path).path == unique_path


def test_listener_that_raises_does_not_break_the_client(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    seen: list[str] = []

    def bad(client: Any, state: Any) -> None:
        raise RuntimeError("listener bug")

    client = make_client(proxy.hosts, start=False)
    client.add_connection_state_listener(bad)
    client.add_connection_state_listener(lambda c, s: seen.append(s.value))
    client.start()
    assert client.block_until_connected(15)
    proxy.cut()
    wait_until(lambda: seen[-1:] == ["RECONNECTED"], timeout=15, message="reconnected")
    client.create(unique_path)


def test_server_restart_keeps_session_and_watches(
    private_server: Any, make_client: Any, unique_path: str
) -> None:
    states: list[str] = []
    client = make_client(private_server.hosts, session_timeout_ms=20_000, states=states)
    client.create(unique_path, b"0")
    events: list[WatchedEvent] = []
    client.get_data(unique_path, watcher=events.append)
    session = client.session_id
    private_server.restart()
    wait_until(lambda: states[-1:] == ["RECONNECTED"], timeout=30, message="RECONNECTED")
    assert "LOST" not in states, f"session lost across a restart: {states}"
    assert client.session_id == session
    client.set_data(unique_path, b"1")
    wait_until(lambda: events, message="watch after restart")


def test_failover_to_another_host_keeps_the_session(
    server: Any, make_client: Any, unique_path: str, free_port: Any
) -> None:
    from tests.support.proxy import TcpProxy

    proxies = [TcpProxy(server.port), TcpProxy(server.port)]
    for each in proxies:
        each.start()
    try:
        dead = f"127.0.0.1:{free_port()}"
        hosts = ",".join([dead, proxies[0].hosts, proxies[1].hosts])
        states: list[str] = []
        client = make_client(hosts, states=states)
        client.create(unique_path, mode=CreateMode.EPHEMERAL)
        session = client.session_id
        peer = client.zookeeper.connected_peer
        current = next(p for p in proxies if p.port == peer[1])
        current.block()
        current.cut()
        wait_until(lambda: states[-1:] == ["RECONNECTED"], timeout=20, message="failover")
        assert client.zookeeper.connected_peer not in (peer, ("127.0.0.1", int(dead.split(":")[1])))
        assert client.session_id == session
        assert client.exists(unique_path).ephemeralOwner == session
    finally:
        for each in proxies:
            each.stop()


def test_read_only_allowed_on_a_read_write_server(
    server: Any, make_client: Any, unique_path: str
) -> None:
    from curatorish.connection import ClientState

    states: list[str] = []
    client = make_client(server.hosts, can_be_read_only=True, states=states)
    assert client.zookeeper.state is ClientState.CONNECTED
    wait_until(lambda: states == ["CONNECTED"], message="CONNECTED, not READ_ONLY")
    assert client.create(unique_path).path == unique_path


def test_auth_is_replayed_after_a_reconnect(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    states: list[str] = []
    client = make_client(proxy.hosts, states=states)
    client.add_auth("digest", b"bob:pw")
    client.create(unique_path, b"secret", acl=[ACL(int(Perms.ALL), digest_id("bob", "pw"))])
    proxy.cut()
    wait_until(lambda: states[-1:] == ["RECONNECTED"], timeout=15, message="RECONNECTED")
    assert client.get_data(unique_path)[0] == b"secret"
    assert ("digest", "bob") in client.who_am_i()


def test_protected_ephemeral_is_recreated_in_the_new_session_after_expiry(
    server: Any, make_client: Any, unique_path: str
) -> None:
    """Curator's ProtectedMode.validateFoundNode: an ephemeral found after the session
    changed is the old session's; it is deleted and the node is created again.  The
    expiry is the client's own (simulated, as after a long SUSPENDED), so the old
    session and its node are still alive on the server when the retry finds it."""
    from curatorish.reactor_thread import call_in_reactor

    observer = make_client(server.hosts)
    client = make_client(server.hosts, retry_policy=RetryNTimes(3, 1500))
    client.create(unique_path)
    client.async_client._core.debug_fail_after_next_create = 1
    outcome: list[Any] = []

    def start() -> None:
        deferred = client.async_client.create(
            f"{unique_path}/lock-", protected=True, mode=CreateMode.EPHEMERAL_SEQUENTIAL
        )
        deferred.addBoth(outcome.append)

    old_session = client.session_id
    call_in_reactor(start)
    wait_until(lambda: observer.get_children(unique_path), message="first create")
    call_in_reactor(client.zookeeper.inject_session_expiration)
    wait_until(lambda: outcome, timeout=20, message="create finished")
    created = outcome[0]
    assert not isinstance(created, Exception) and hasattr(created, "path"), created
    assert created.stat.ephemeralOwner == client.session_id != old_session
    # The old session's node is deleted (in the background) though its session lives.
    wait_until(
        lambda: observer.get_children(unique_path) == [created.path.rsplit("/", 1)[1]],
        message="old session's node deleted",
    )


def test_chrooted_watches_survive_a_reconnect(
    server: Any, proxy: Any, make_client: Any, unique_path: str
) -> None:
    root = make_client(server.hosts)
    root.create(f"{unique_path}/node", b"0", parents=True)
    states: list[str] = []
    chrooted = make_client(proxy.hosts + unique_path, states=states)
    events: list[WatchedEvent] = []
    chrooted.get_data("/node", watcher=events.append)
    proxy.block()
    proxy.cut()
    wait_until(lambda: "SUSPENDED" in states, message="SUSPENDED")
    root.set_data(f"{unique_path}/node", b"1")
    proxy.unblock()
    wait_until(lambda: events, timeout=15, message="event missed while away")
    assert [(e.type, e.path) for e in events] == [(EventType.NodeDataChanged, "/node")]
