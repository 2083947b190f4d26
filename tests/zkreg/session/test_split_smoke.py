"""
Split mode: session servers in their own processes, linked over TCP to a data
server, with kazoo clients on different servers seeing one tree, watches across
servers, and ephemerals removed when their session closes.
"""

from __future__ import annotations

import threading

import pytest

from tests.support.split import running_split

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def servers():
    with running_split(sessions=2) as split:
        yield [split.data, *split.sessions]


@pytest.fixture
def connect():
    from kazoo.client import KazooClient

    clients = []

    def make(server):
        client = KazooClient(hosts=server.hosts, timeout=10.0)
        clients.append(client)
        client.start(timeout=15)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


def test_one_tree_across_session_servers(servers, connect):
    data, first, second = servers
    a, b, c = connect(first), connect(second), connect(data)
    a.create("/split", b"v")
    b.sync("/split")
    assert b.get("/split")[0] == b"v"
    c.sync("/split")
    assert c.get("/split")[0] == b"v"


def test_watch_across_session_servers(servers, connect):
    _, first, second = servers
    a, b = connect(first), connect(second)
    a.create("/watched-split", b"")
    b.sync("/watched-split")
    fired = threading.Event()
    b.get("/watched-split", watch=lambda event: fired.set())
    a.set("/watched-split", b"x")
    assert fired.wait(10)


def test_ephemeral_of_a_remote_session(servers, connect):
    _, first, second = servers
    owner, observer = connect(first), connect(second)
    owner.create("/eph-split", b"", ephemeral=True)
    observer.sync("/eph-split")
    gone = threading.Event()
    assert observer.exists("/eph-split", watch=lambda event: gone.set()) is not None
    owner.stop()
    assert gone.wait(10)
