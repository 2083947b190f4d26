"""
Fixtures shared by every test directory: real servers and kazoo clients.

Servers are session-scoped (one Apache ZooKeeper oracle and one zkreg per test
session, or per xdist worker); tests isolate themselves by path prefix
(L{unique_path}), not by restarting servers.  A test that must stop, kill or
reconfigure a server makes its own with L{server_factory}.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.ports import free_port as _free_port
from tests.support.servers import (
    SERVER_KINDS,
    ServerProcess,
    ServerStartError,
    ZkregServer,
    ZooKeeperOracle,
    unavailable_reason,
)
from tests.support.waiting import wait_until as _wait_until

#: Bound on connecting a kazoo client, in seconds.
KAZOO_CONNECT_TIMEOUT_S = 15.0


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the integration suites use."""
    config.addinivalue_line("markers", "slow: waits seconds (session expiry, TTL); -m 'not slow'")


def _start_or_skip(kind: str, **options: object) -> ServerProcess:
    reason = unavailable_reason(kind)
    if reason is not None:
        pytest.skip(f"{kind} unavailable: {reason}")
    server = SERVER_KINDS[kind](**options)  # type: ignore[arg-type]
    try:
        server.start()
    except ServerStartError:
        server.cleanup()
        raise
    return server


@pytest.fixture(scope="session")
def zk_oracle() -> Iterator[ZooKeeperOracle]:
    """Apache ZooKeeper 3.8 on a free port; skipped when java or the jar is absent."""
    server = _start_or_skip("zookeeper")
    yield server  # type: ignore[misc]
    server.cleanup()


@pytest.fixture(scope="session")
def zkreg_server() -> Iterator[ZkregServer]:
    """zkreg (C{twistd zkreg}) on a free port; skipped only while zkreg/tap.py is absent."""
    server = _start_or_skip("zkreg")
    yield server  # type: ignore[misc]
    server.cleanup()


@pytest.fixture(params=["zookeeper", "zkreg"])
def any_server(request: pytest.FixtureRequest) -> ServerProcess:
    """Each test using this runs twice: against ZooKeeper and against zkreg."""
    fixture_name = "zk_oracle" if request.param == "zookeeper" else "zkreg_server"
    return request.getfixturevalue(fixture_name)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """
    Start private servers a test may stop, kill, restart or configure
    (C{server_factory("zkreg", super_digest=..., extra_args=[...])});
    all are killed and removed at teardown.
    """
    started: list[ServerProcess] = []

    def make(kind: str, **options: object) -> ServerProcess:
        server = _start_or_skip(kind, **options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.cleanup()


@pytest.fixture
def kazoo_client() -> Iterator[Callable[..., object]]:
    """
    Factory of started kazoo clients: C{kazoo_client(server_or_hosts, **KazooClient
    options)}. Connection is bounded by L{KAZOO_CONNECT_TIMEOUT_S}; every client is
    stopped and closed at teardown.
    """
    from kazoo.client import KazooClient

    clients: list[KazooClient] = []

    def connect(target: ServerProcess | str, **options: object) -> KazooClient:
        hosts = target if isinstance(target, str) else target.hosts
        options.setdefault("timeout", 10.0)
        client = KazooClient(hosts=hosts, **options)  # type: ignore[arg-type]
        clients.append(client)
        client.start(timeout=KAZOO_CONNECT_TIMEOUT_S)
        return client

    yield connect
    for client in clients:
        try:
            client.stop()
        finally:
            client.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a currently free loopback port."""
    return _free_port


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """L{tests.support.waiting.wait_until}: poll a predicate against a deadline."""
    return _wait_until


@pytest.fixture
def unique_path(request: pytest.FixtureRequest) -> str:
    """A znode path no other test uses, to isolate tests sharing a server."""
    stem = "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    return f"/t_{stem}_{uuid.uuid4().hex[:8]}"
