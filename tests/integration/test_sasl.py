"""
SASL DIGEST-MD5 with kazoo (C{sasl_options}, through pure-sasl), against Apache
ZooKeeper 3.8 configured with the same JAAS file and its SASL provider, and against
zkreg with C{--sasl-config}: the same script gives the same outcomes on both (who may
read a C{sasl:<user>} node, what C{auth} expands to, what a wrong password gets).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    InvalidACLError,
    NoAuthError,
    SessionClosedRequireSaslError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id, make_acl
from puresasl.client import SASLClient

from tests.support import java as java_support
from tests.support.sasl import jaas_file, serving
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until

ALL = 31

#: The java_program fixture of tests.support.java, under this name here.
java_fixture = java_support.java_program


#: The jaas_file fixture of tests.support.sasl.
jaas_fixture = jaas_file


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_server(request: pytest.FixtureRequest, jaas_file: Path) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file)


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_required_server(
    request: pytest.FixtureRequest, jaas_file: Path
) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file, required=True)


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def sasl_allow_failed_server(
    request: pytest.FixtureRequest, jaas_file: Path
) -> Iterator[ServerProcess]:
    yield from serving(request.param, jaas_file, allow_failed=True)


class Clients:
    """Started kazoo clients of one server, stopped at teardown."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.started: list[KazooClient] = []

    def __call__(self, user: str | None = None, password: str | None = None) -> KazooClient:
        options: dict[str, Any] = {}
        if user is not None:
            options["sasl_options"] = {
                "mechanism": "DIGEST-MD5",
                "username": user,
                "password": password,
            }
        client = KazooClient(hosts=self.server.hosts, timeout=10.0, **options)
        self.started.append(client)
        client.start(timeout=15)
        return client

    def stop(self) -> None:
        for client in self.started:
            client.stop()
            client.close()


@pytest.fixture
def connect(sasl_server: ServerProcess) -> Iterator[Any]:
    clients = Clients(sasl_server)
    yield clients
    clients.stop()


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
        # When that answer is handled before start() looks at the state, start()
        # reports a time-out at once (kazoo's own race): the outcome is the same.
        try:
            intruder.start(timeout=10)
        except KazooTimeoutError:
            pass
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


def test_required_sasl_refuses_anonymous_clients(sasl_required_server):
    """
    zookeeper.sessionRequireClientSASLAuth / --sasl-required: an anonymous client's
    first request is answered SessionClosedRequireSasl and it is disconnected; a
    SASL-authenticated one works.
    """
    clients = Clients(sasl_required_server)
    try:
        anonymous = clients()
        with pytest.raises(SessionClosedRequireSaslError):
            anonymous.create("/sasl-required-anonymous", b"")
        wait_until(lambda: not anonymous.connected, timeout=15, message="anonymous cut off")
        bob = clients("bob", "bob-secret")
        bob.ensure_path("/sasl-required")
        assert bob.exists("/sasl-required") is not None
    finally:
        clients.stop()


def _java_jaas(tmp_path: Path, user: str, password: str) -> Path:
    path = tmp_path / f"client-{user}-{password}.conf"
    path.write_text(
        "Client {\n"
        "       org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        f'       username="{user}"\n'
        f'       password="{password}";\n'
        "};\n"
    )
    return path


def test_java_client_authenticates(sasl_server, java_fixture, connect, tmp_path, request):
    """
    The ZooKeeper Java client (JAAS DigestLoginModule, which sends an authzid) is
    authenticated, and its sasl:<user> node is then its own: kazoo as the same user
    reads it, another user cannot.
    """
    path = f"/sasl-java-{request.node.callspec.id}"
    result = java_fixture("SaslDigestClient").run(
        sasl_server.hosts, str(_java_jaas(tmp_path, "bob", "bob-secret")), path, "bob"
    )
    assert result.stdout.splitlines() == [
        "STATE SaslAuthenticated",
        "DATA java",
        "ACL sasl:bob",
    ], result.stderr[-2000:]
    assert connect("bob", "bob-secret").get(path)[0] == b"java"
    assert _outcome(lambda: connect("alice", "alice-secret").get(path)) == "NoAuth"


def test_java_client_wrong_password(sasl_server, java_fixture, tmp_path):
    result = java_fixture("SaslDigestClient").run(
        sasl_server.hosts, str(_java_jaas(tmp_path, "bob", "guess")), "/sasl-java-never", "bob"
    )
    assert result.stdout.splitlines() == ["STATE AuthFailed"], result.stderr[-2000:]


class RawClient:
    """
    A bare ZooKeeper connection on a socket, to see the server's answer to each SASL
    token (kazoo hides it: on an OK answer without a token it just sends its
    response again).
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd
        self._send(struct.pack(">iqiqi", 0, 0, 10000, 0, 16) + b"\0" * 16 + b"\0")
        self._read()
        self.xid = 0

    def _send(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        return data

    def _read(self) -> bytes:
        (size,) = struct.unpack(">i", self._read_exactly(4))
        return self._read_exactly(size)

    def request(self, opcode: int, body: bytes) -> tuple[int, bytes]:
        """Send one request; its reply's error code and body."""
        self.xid += 1
        self._send(struct.pack(">ii", self.xid, opcode) + body)
        while True:
            reply = self._read()
            xid, _zxid, err = struct.unpack(">iqi", reply[:16])
            if xid == self.xid:
                return err, reply[16:]

    def sasl(self, token: bytes) -> tuple[int, bytes | None]:
        err, body = self.request(102, struct.pack(">i", len(token)) + token)
        if err or len(body) < 4:
            return err, None
        (size,) = struct.unpack(">i", body[:4])
        return err, None if size < 0 else body[4 : 4 + size]

    def exists(self, path: str) -> int:
        encoded = path.encode()
        return self.request(3, struct.pack(">i", len(encoded)) + encoded + b"\0")[0]

    def close(self) -> None:
        self.sock.close()


def _failed_exchange(client: RawClient) -> int:
    """Run DIGEST-MD5 with a wrong password; the server's answer to the response."""
    mechanism = SASLClient(
        "zk-sasl-md5", "zookeeper", mechanism="DIGEST-MD5", username="bob", password="guess"
    )
    err, challenge = client.sasl(b"")
    assert err == 0 and challenge
    err, token = client.sasl(mechanism.process(challenge))
    assert token is None
    return err


def test_failed_client_closed_by_default(sasl_server):
    client = RawClient(sasl_server.port)
    try:
        assert _failed_exchange(client) == -115  # AuthFailed
        with pytest.raises(OSError):
            client.exists("/")
    finally:
        client.close()


def test_failed_client_kept_when_allowed(sasl_allow_failed_server, connect_to):
    """
    zookeeper.allowSaslFailedClients / --sasl-allow-failed-clients: the failed
    response is answered OK without a token and the session goes on unauthenticated
    (a sasl:bob node stays closed to it); a retry on that connection gets the same.
    """
    path = f"/sasl-allow-failed-{sasl_allow_failed_server.name}"
    bob = connect_to(sasl_allow_failed_server, "bob", "bob-secret")
    if bob.exists(path) is None:
        bob.create(path, b"", acl=[ACL(ALL, Id("sasl", "bob"))])
    client = RawClient(sasl_allow_failed_server.port)
    try:
        assert _failed_exchange(client) == 0
        assert client.exists("/") == 0
        assert client.request(4, struct.pack(">i", len(path)) + path.encode() + b"\0")[0] == (
            -102  # NoAuth
        )
        assert client.sasl(b"") == (0, None)
        assert client.exists("/") == 0
    finally:
        client.close()


@pytest.fixture
def connect_to() -> Iterator[Any]:
    started: list[Clients] = []

    def make(server: ServerProcess, user: str, password: str) -> KazooClient:
        clients = Clients(server)
        started.append(clients)
        return clients(user, password)

    yield make
    for clients in started:
        clients.stop()
