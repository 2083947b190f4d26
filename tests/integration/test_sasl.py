"""
SASL DIGEST-MD5 with kazoo (C{sasl_options}, through pure-sasl), against Apache
ZooKeeper 3.8 configured with the same JAAS file and its SASL provider, and against
zkreg with C{--sasl-config}: the same script gives the same outcomes on both (who may
read a C{sasl:<user>} node, what C{auth} expands to, what a wrong password gets).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id, make_acl

from tests.support.servers import ServerProcess, ZkregServer, ZooKeeperOracle, unavailable_reason
from tests.support.waiting import wait_until

JAAS = """
// The users of both servers (ZooKeeper's DigestLoginModule format).
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_bob="bob-secret"
       user_alice="alice-secret";
};
"""

ALL = 31


@pytest.fixture(scope="module")
def jaas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sasl") / "jaas.conf"
    path.write_text(JAAS)
    return path


def _start(server: ServerProcess) -> ServerProcess:
    reason = unavailable_reason(server.name)
    if reason is not None:
        pytest.skip(f"{server.name} unavailable: {reason}")
    server.start()
    return server


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_server(request: pytest.FixtureRequest, jaas_file: Path) -> Iterator[ServerProcess]:
    server: ServerProcess
    if request.param == "zookeeper":
        server = ZooKeeperOracle(
            extra_jvm_args=[
                f"-Djava.security.auth.login.config={jaas_file}",
                "-Dzookeeper.authProvider.1="
                "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            ]
        )
    else:
        server = ZkregServer(extra_args=["--sasl-config", str(jaas_file)])
    _start(server)
    yield server
    server.cleanup()


@pytest.fixture
def connect(sasl_server: ServerProcess) -> Iterator[Any]:
    clients: list[KazooClient] = []

    def make(user: str | None = None, password: str | None = None) -> KazooClient:
        options: dict[str, Any] = {}
        if user is not None:
            options["sasl_options"] = {
                "mechanism": "DIGEST-MD5",
                "username": user,
                "password": password,
            }
        client = KazooClient(hosts=sasl_server.hosts, timeout=10.0, **options)
        clients.append(client)
        client.start(timeout=15)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


def _outcome(call: Any) -> str:
    try:
        result = call()
    except NoAuthError:
        return "NoAuth"
    except InvalidACLError:
        return "InvalidACL"
    return "ok" if not isinstance(result, tuple) else repr(result[0])


def test_sasl_acl_lets_only_its_user_in(connect, request):
    path = f"/sasl-{request.node.callspec.id}"
    bob = connect("bob", "bob-secret")
    alice = connect("alice", "alice-secret")
    anonymous = connect()
    bob.create(path, b"bob's", acl=[ACL(ALL, Id("sasl", "bob"))])
    assert _outcome(lambda: bob.get(path)) == 'b"bob\'s"'
    assert _outcome(lambda: alice.get(path)) == "NoAuth"
    assert _outcome(lambda: anonymous.get(path)) == "NoAuth"
    assert _outcome(lambda: alice.set(path, b"x")) == "NoAuth"
    assert bob.get_acls(path)[0] == [ACL(ALL, Id("sasl", "bob"))]


def test_auth_scheme_expands_to_the_sasl_id(connect, request):
    path = f"/sasl-auth-{request.node.callspec.id}"
    alice = connect("alice", "alice-secret")
    alice.create(path, b"", acl=[make_acl("auth", "", all=True)])
    assert alice.get_acls(path)[0] == [ACL(ALL, Id("sasl", "alice"))]
    anonymous = connect()
    assert (
        _outcome(lambda: anonymous.create(path + "x", b"", acl=[make_acl("auth", "", all=True)]))
        == "InvalidACL"
    )


def test_wrong_password_is_refused_and_others_unaffected(connect, sasl_server):
    bob = connect("bob", "bob-secret")
    intruder = KazooClient(
        hosts=sasl_server.hosts,
        timeout=10.0,
        sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": "guess"},
    )
    try:
        # kazoo marks the session connected at the handshake, before SASL; the
        # server's AuthFailed answer (and closed connection) then ends it for good.
        intruder.start(timeout=10)
        wait_until(
            lambda: intruder.state == KazooState.LOST and not intruder.connected,
            timeout=15,
            message="the wrong password refused",
        )
    finally:
        intruder.stop()
        intruder.close()
    bob.ensure_path("/sasl-still-served")
    assert bob.exists("/sasl-still-served") is not None
    wait_until(lambda: bob.connected, timeout=10)
