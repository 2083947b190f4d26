"""
Servers and clients for the curatorish integration tests.

Every integration test runs twice: against Apache ZooKeeper 3.8 (the oracle) and
against zkreg started by curatorish's own L{curatorish.testing.TestingServer}.  Tests
that cut connections go through a L{TcpProxy} in front of the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from curatorish.blocking import BlockingCuratorFramework
from curatorish.retry import RetryNTimes
from curatorish.testing import TestingServer
from tests.support.proxy import TcpProxy
from tests.support.servers import ZooKeeperOracle, unavailable_reason

#: Bound on every blocking client call in these tests.
CALL_TIMEOUT_S = 30.0


@pytest.fixture(autouse=True, scope="module")
def _give_the_reactor_back() -> Iterator[None]:
    """
    After each module, stop running the global reactor in the blocking face's thread
    (without shutting it down), so that trial test cases elsewhere in the same pytest
    run can run it themselves.
    """
    yield
    from curatorish.reactor_thread import release_shared_reactor

    release_shared_reactor()


@pytest.fixture(scope="session")
def curatorish_zkreg() -> Iterator[TestingServer]:
    """zkreg via L{TestingServer}, one per test session."""
    server = TestingServer()
    yield server
    server.close()


@pytest.fixture(params=["zookeeper", "zkreg"])
def server(request: pytest.FixtureRequest) -> Any:
    """The server under test: C{.hosts}, C{.port}."""
    if request.param == "zookeeper":
        return request.getfixturevalue("zk_oracle")
    return request.getfixturevalue("curatorish_zkreg")


@pytest.fixture(params=["zookeeper", "zkreg"])
def private_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A server of the test's own, which it may restart (C{.restart()})."""
    if request.param == "zookeeper":
        reason = unavailable_reason("zookeeper")
        if reason is not None:
            pytest.skip(reason)
        oracle = ZooKeeperOracle()
        oracle.start()
        yield oracle
        oracle.cleanup()
    else:
        reason = unavailable_reason("zkreg")
        if reason is not None:
            pytest.skip(reason)
        testing = TestingServer()
        yield testing
        testing.close()


@pytest.fixture
def proxy(server: Any) -> Iterator[TcpProxy]:
    """A TCP proxy in front of L{server}: C{cut()}, C{block()}, C{unblock()}."""
    tcp_proxy = TcpProxy(server.port)
    tcp_proxy.start()
    yield tcp_proxy
    tcp_proxy.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., BlockingCuratorFramework]]:
    """
    Factory of started blocking clients (connected, or the test fails); all closed at
    teardown.  Defaults: RetryNTimes(3, 100), 10 s session, 5 s connection timeout.
    With C{states=[]}, every connection state (its value) is appended to that list,
    from before the client starts.
    """
    clients: list[BlockingCuratorFramework] = []

    def make(
        hosts: str, start: bool = True, states: list[str] | None = None, **options: Any
    ) -> BlockingCuratorFramework:
        options.setdefault("retry_policy", RetryNTimes(3, 100))
        options.setdefault("session_timeout_ms", 10_000)
        options.setdefault("connection_timeout_ms", 5_000)
        options.setdefault("reconnect_delay_ms", 100)
        options.setdefault("reconnect_jitter_ms", 100)
        options.setdefault("default_data", b"")
        client = BlockingCuratorFramework(hosts, call_timeout_s=CALL_TIMEOUT_S, **options)
        clients.append(client)
        if states is not None:
            client.add_connection_state_listener(lambda c, state: states.append(state.value))
        if start:
            client.start()
            assert client.block_until_connected(15), f"no connection to {hosts}"
        return client

    yield make
    for client in clients:
        try:
            client.close()
        except Exception:
            pass
