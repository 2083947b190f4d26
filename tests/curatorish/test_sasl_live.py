"""
curatorish's SASL DIGEST-MD5 (C{sasl=}) against Apache ZooKeeper 3.8 configured with
a JAAS DigestLoginModule file and against zkreg with the same file (the servers and
JAAS of tests/integration/test_sasl.py), on both faces: the right password gives a
connected client holding C{sasl:<user>}, whose C{sasl:<user>:cdrwa} node only it
reads; a wrong password ends that client clearly (AuthFailedError, LOST) and nobody
else; a dropped connection and a new session authenticate again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from curatorish import ACL, ConnectionState, CuratorFramework, Id, Perms, SASLConfig, errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.reactor_thread import call_in_reactor, shared_reactor
from curatorish.retry import RetryNTimes
from tests.support.proxy import TcpProxy
from tests.support.sasl import jaas_file, serving
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until

BOB = SASLConfig(username="bob", password="bob-secret")
ALICE = {"mechanism": "DIGEST-MD5", "username": "alice", "password": "alice-secret"}
BOB_ONLY = [ACL(Perms.ALL, Id("sasl", "bob"))]


#: The jaas_file fixture of tests.support.sasl.
jaas_fixture = jaas_file


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_server(request: pytest.FixtureRequest, jaas_file: Path) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file)


@pytest.fixture
def sasl_proxy(sasl_server: ServerProcess) -> Iterator[TcpProxy]:
    proxy = TcpProxy(sasl_server.port)
    proxy.start()
    yield proxy
    proxy.stop()


def _path(request: pytest.FixtureRequest, name: str) -> str:
    return f"/sasl-curatorish-{name}-{request.node.callspec.id}"


async def async_scenario(hosts: str, path: str) -> dict[str, Any]:
    """The async face: bob creates his node; bob, alice and anonymous read it."""
    reactor = shared_reactor()
    options: dict[str, Any] = {
        "reactor": reactor,
        "retry_policy": RetryNTimes(3, 100),
        "session_timeout_ms": 10_000,
        "default_data": b"",
    }
    bob = CuratorFramework(hosts, sasl=BOB, **options)
    alice = CuratorFramework(hosts, sasl=ALICE, **options)
    anonymous = CuratorFramework(hosts, **options)
    seen: dict[str, Any] = {}
    try:
        for client in (bob, alice, anonymous):
            client.start()
            assert await client.block_until_connected(15)
        seen["bob_identity"] = await bob.who_am_i()
        await bob.create(path, b"bob's", acl=BOB_ONLY)
        seen["bob_reads"] = (await bob.get_data(path))[0]
        seen["acl"] = (await bob.get_acl(path))[0]
        for name, other in (("alice", alice), ("anonymous", anonymous)):
            try:
                await other.get_data(path)
            except errors.NoAuthError:
                seen[name] = "NoAuth"
    finally:
        for client in (bob, alice, anonymous):
            await client.close()
    return seen


def test_async_face_authenticates(sasl_server: ServerProcess, request: pytest.FixtureRequest):
    seen = call_in_reactor(async_scenario, sasl_server.hosts, _path(request, "async"), timeout_s=60)
    assert ("sasl", "bob") in seen["bob_identity"]
    assert seen["bob_reads"] == b"bob's"
    assert seen["acl"] == BOB_ONLY
    assert seen["alice"] == "NoAuth"
    assert seen["anonymous"] == "NoAuth"


def test_blocking_face_authenticates(
    sasl_server: ServerProcess, make_client: Callable[..., Any], request: pytest.FixtureRequest
):
    path = _path(request, "blocking")
    bob = make_client(sasl_server.hosts, sasl=BOB)
    alice = make_client(sasl_server.hosts, sasl=ALICE)
    anonymous = make_client(sasl_server.hosts)
    assert ("sasl", "bob") in bob.who_am_i()
    assert ("sasl", "alice") in alice.who_am_i()
    bob.create(path, b"bob's", acl=BOB_ONLY)
    assert bob.get_data(path)[0] == b"bob's"
    for other in (alice, anonymous):
        with pytest.raises(errors.NoAuthError):
            other.get_data(path)
        with pytest.raises(errors.NoAuthError):
            other.set_data(path, b"x")


def test_wrong_password_ends_only_that_client(
    sasl_server: ServerProcess,
    make_client: Callable[..., Any],
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
):
    path = _path(request, "wrong")
    bob = make_client(sasl_server.hosts, sasl=BOB)
    states: list[str] = []
    caplog.set_level(logging.WARNING, logger="curatorish")
    intruder = make_client(
        sasl_server.hosts,
        start=False,
        states=states,
        sasl=SASLConfig(username="bob", password="guess"),
    )
    intruder.start()
    started = time.monotonic()
    assert intruder.block_until_connected(15) is False
    assert time.monotonic() - started < 10, "block_until_connected waited for nothing"
    with pytest.raises(errors.AuthFailedError, match="refused by 127.0.0.1"):
        intruder.exists("/")
    wait_until(lambda: states == ["SUSPENDED", "LOST"], timeout=10, message=f"{states}")
    assert intruder.state is ConnectionState.LOST
    refusals = [r.getMessage() for r in caplog.records if "AUTH_FAILED" in r.getMessage()]
    assert len(refusals) == 1, refusals
    assert refusals[0].startswith("SASL DIGEST-MD5 authentication as 'bob' refused by ")
    # Bob, on the same server and user, goes on.
    bob.create(path, b"", acl=BOB_ONLY)
    assert bob.get_data(path)[0] == b""


def test_reconnect_and_new_session_authenticate_again(
    sasl_server: ServerProcess,
    sasl_proxy: TcpProxy,
    make_client: Callable[..., Any],
    request: pytest.FixtureRequest,
):
    """
    Authentication belongs to a connection on ZooKeeper: bob's node stays readable
    after his connection was cut (same session) and after a new session, only
    because each new connection authenticates again.
    """
    path = _path(request, "reconnect")
    states: list[str] = []
    bob: BlockingCuratorFramework = make_client(sasl_proxy.hosts, sasl=BOB, states=states)
    bob.create(path, b"v1", acl=BOB_ONLY)
    session_id = bob.session_id
    sasl_proxy.cut()
    wait_until(lambda: "RECONNECTED" in states, timeout=20, message=f"reconnected: {states}")
    assert bob.session_id == session_id
    assert bob.get_data(path)[0] == b"v1"
    assert ("sasl", "bob") in bob.who_am_i()
    call_in_reactor(bob.zookeeper.inject_session_expiration)
    wait_until(
        lambda: states[-2:] == ["LOST", "RECONNECTED"], timeout=20, message=f"new session: {states}"
    )
    assert bob.session_id != session_id
    assert states == ["CONNECTED", "SUSPENDED", "RECONNECTED", "LOST", "RECONNECTED"]
    bob.set_data(path, b"v2")
    assert bob.get_data(path)[0] == b"v2"


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_required_server(
    request: pytest.FixtureRequest, jaas_file: Path
) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file, required=True)


def test_server_requiring_sasl(
    sasl_required_server: ServerProcess,
    make_client: Callable[..., Any],
    request: pytest.FixtureRequest,
):
    """
    zookeeper.sessionRequireClientSASLAuth / --sasl-required: the server cuts any
    request sent before SASL succeeded, so the client's digest auth replay and
    watch re-registration must come after the exchange, on every connection.
    """
    path = _path(request, "required")
    bob = make_client(sasl_required_server.hosts, sasl=BOB, auth_info=[("digest", "bob:pw")])
    events: list[Any] = []
    bob.create(path, b"", acl=BOB_ONLY)
    bob.get_data(path, watcher=events.append)
    assert ("sasl", "bob") in bob.who_am_i()
    states: list[str] = []
    bob.add_connection_state_listener(lambda client, state: states.append(state.value))
    call_in_reactor(bob.zookeeper.drop_connection)
    wait_until(lambda: "RECONNECTED" in states, timeout=20, message=f"reconnected: {states}")
    bob.set_data(path, b"changed")
    wait_until(lambda: len(events) == 1, timeout=10, message="the watch re-registered")
    assert ("digest", "bob") in bob.who_am_i()
    # One drop, one reconnection: nothing was sent before the exchange, which such a
    # server would have answered by closing the connection.
    assert states == ["SUSPENDED", "RECONNECTED"]


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_allow_failed_server(
    request: pytest.FixtureRequest, jaas_file: Path
) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file, allow_failed=True)


def test_wrong_password_kept_by_the_server_is_still_a_failure(
    sasl_allow_failed_server: ServerProcess, make_client: Callable[..., Any]
):
    """
    zookeeper.allowSaslFailedClients / --sasl-allow-failed-clients: the server
    answers the wrong response OK with no token and would keep the session,
    unauthenticated.  Java's client calls that AuthFailed, and so does curatorish:
    it does not go on as somebody else than asked.
    """
    intruder = make_client(
        sasl_allow_failed_server.hosts,
        start=False,
        sasl={"mechanism": "DIGEST-MD5", "username": "bob", "password": "guess"},
    )
    intruder.start()
    assert intruder.block_until_connected(15) is False
    with pytest.raises(errors.AuthFailedError, match="without a SASL token"):
        intruder.exists("/")
    assert intruder.state is ConnectionState.LOST
    bob = make_client(sasl_allow_failed_server.hosts, sasl=BOB)
    assert ("sasl", "bob") in bob.who_am_i()
