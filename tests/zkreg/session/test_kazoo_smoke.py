"""
Smoke test of the whole path: kazoo against a real C{twistd zkreg} subprocess.

create, get, set, delete, children, watches, ephemerals, session expiry.
"""

from __future__ import annotations

import threading

import pytest

from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    process = ZkregServer()
    process.start()
    yield process
    process.cleanup()


@pytest.fixture
def client(server):
    from kazoo.client import KazooClient

    clients = []

    def connect(**options):
        options.setdefault("timeout", 10.0)
        zk = KazooClient(hosts=server.hosts, **options)
        clients.append(zk)
        zk.start(timeout=15)
        return zk

    yield connect
    for zk in clients:
        zk.stop()
        zk.close()


def test_crud_and_children(client):
    zk = client()
    zk.create("/smoke", b"v1")
    zk.create("/smoke/a", b"")
    zk.create("/smoke/b", b"")
    data, stat = zk.get("/smoke")
    assert (data, stat.version, stat.numChildren) == (b"v1", 0, 2)
    zk.set("/smoke", b"v2")
    assert zk.get("/smoke")[0] == b"v2"
    assert sorted(zk.get_children("/smoke")) == ["a", "b"]
    zk.delete("/smoke/a")
    assert zk.exists("/smoke/a") is None
    zk.delete("/smoke", recursive=True)
    assert zk.exists("/smoke") is None


def test_watches(client):
    zk, other = client(), client()
    zk.create("/watched", b"")
    events = []
    seen = threading.Event()

    def watcher(event):
        events.append((event.type, event.path))
        seen.set()

    zk.get("/watched", watch=watcher)
    other.set("/watched", b"x")
    assert seen.wait(10)
    assert events == [("CHANGED", "/watched")]
    children_changed = threading.Event()
    zk.get_children("/watched", watch=lambda event: children_changed.set())
    other.create("/watched/kid", b"")
    assert children_changed.wait(10)
    zk.delete("/watched", recursive=True)


def test_ephemeral_goes_with_closed_session(client):
    owner, observer = client(), client()
    owner.create("/eph", b"", ephemeral=True)
    assert observer.exists("/eph").ephemeralOwner == owner.client_id[0]
    gone = threading.Event()
    observer.exists("/eph", watch=lambda event: gone.set())
    owner.stop()
    assert gone.wait(10)
    assert observer.exists("/eph") is None


def test_session_expiry(client, server):
    """
    A session whose client goes silent expires after its timeout: its ephemeral goes,
    watchers hear it, and resuming it is refused as ZooKeeper refuses it.
    """
    from tests.support.rawclient import RawClient
    from zkreg.proto.consts import OPEN_ACL_UNSAFE, OpCode
    from zkreg.proto.records import CreateRequest

    observer = client()
    victim = RawClient(port=server.port, timeout_ms=4000)
    assert victim.connect().timeout_ms == 4000
    reply = victim.call(OpCode.create, CreateRequest("/expiring", b"", list(OPEN_ACL_UNSAFE), 1))
    assert reply.ok
    gone = threading.Event()
    assert observer.exists("/expiring", watch=lambda event: gone.set()) is not None
    victim.drop()
    assert gone.wait(20), "the ephemeral of the silent session was not deleted"
    assert observer.exists("/expiring") is None
    refused = victim.connect()
    assert (refused.timeout_ms, refused.session_id) == (0, 0)
    wait_until(lambda: victim.server_closed(timeout=1.0), timeout=10)


def test_four_letter_words(server):
    assert server.four_letter("ruok") == "imok"
    assert server.four_letter("srvr").startswith("Zookeeper version: 3.8.0-zkreg")
    assert server.four_letter("isro") == "rw"
