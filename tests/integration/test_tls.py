"""
TLS client listeners with kazoo (C{use_ssl=True}), and the C{x509} ACL scheme, against
Apache ZooKeeper 3.8 (Netty, C{secureClientPort}, PEM stores, its
X509AuthenticationProvider) and zkreg (C{--secure-listen}, C{--ssl-keystore},
C{--ssl-truststore}) configured alike: the same script gives the same outcomes.

Refusals (a certificate from another CA, an expired one, none, plaintext on the TLS
port) are checked on zkreg: a log line saying why, and the other clients unaffected.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.security import ACL, Id

from tests.support.certs import Stores, make_stores
from tests.support.ports import free_port
from tests.support.rawclient import RawClient
from tests.support.servers import (
    NETTY_EXTRA_JARS,
    NettyZooKeeperOracle,
    ServerProcess,
    ZkregServer,
)
from tests.support.split import running_split
from tests.support.waiting import wait_until

ALL = 31
READ = 1


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("tls"))


def _start(server: ServerProcess) -> ServerProcess:
    server.start()  # skips the test when this kind of server cannot run here
    return server


def _server(kind: str, stores: Stores, client_auth: str = "need") -> ServerProcess:
    """A server with a plain port and a TLS port (.secure_port)."""
    secure_port = free_port()
    superuser = stores.dns["admin"]
    server: ServerProcess
    if kind == "zookeeper":
        server = NettyZooKeeperOracle(
            extra_config={
                **stores.zookeeper_secure_port(secure_port, client_auth),
                "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
            },
            extra_jvm_args=[f"-Dzookeeper.X509AuthenticationProvider.superUser={superuser}"],
        )
    else:
        server = ZkregServer(
            extra_args=[
                *stores.zkreg_secure_listen(secure_port, client_auth),
                "--x509-superuser",
                superuser,
            ]
        )
    server.secure_port = secure_port  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def tls_server(request: pytest.FixtureRequest, stores: Stores) -> Iterator[ServerProcess]:
    server = _start(_server(request.param, stores))
    yield server
    server.cleanup()


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def want_server(request: pytest.FixtureRequest, stores: Stores) -> Iterator[ServerProcess]:
    server = _start(_server(request.param, stores, client_auth="want"))
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def split_tls_server(stores: Stores) -> Iterator[ServerProcess]:
    """
    A data server with a data-link listener and no TLS client listener, and a
    session server linked to it with the TLS listener and the x509 super user.
    """
    tls = _server("zkreg", stores)
    assert isinstance(tls, ZkregServer)
    with running_split(session_options=tls.extra_args) as split:
        session = split.sessions[0]
        session.secure_port = tls.secure_port  # type: ignore[attr-defined]
        yield session


@pytest.fixture(scope="module")
def zkreg_tls(stores: Stores) -> Iterator[ServerProcess]:
    server = _start(_server("zkreg", stores))
    yield server
    server.cleanup()


class _Clients:
    def __init__(self) -> None:
        self.started: list[KazooClient] = []

    def tls(
        self, server: ServerProcess, stores: Stores, who: str | None, **options: Any
    ) -> KazooClient:
        """A kazoo client on the TLS port, with C{who}'s certificate (or none)."""
        extra: dict[str, Any] = {}
        if who is not None:
            extra = {"certfile": str(stores.certificates[who]), "keyfile": str(stores.keys[who])}
        client = KazooClient(
            hosts=f"127.0.0.1:{server.secure_port}",  # type: ignore[attr-defined]
            use_ssl=True,
            ca=str(stores.truststore),
            verify_certs=True,
            timeout=10.0,
            **extra,
            **options,
        )
        self.started.append(client)
        return client

    def plain(self, server: ServerProcess) -> KazooClient:
        client = KazooClient(hosts=server.hosts, timeout=10.0)
        self.started.append(client)
        client.start(timeout=15)
        return client

    def close(self) -> None:
        for client in self.started:
            try:
                client.stop()
            finally:
                client.close()


@pytest.fixture
def clients() -> Iterator[_Clients]:
    made = _Clients()
    yield made
    made.close()


def _outcome(action: Any) -> str:
    try:
        result = action()
    except NoAuthError:
        return "NoAuth"
    except InvalidACLError:
        return "InvalidACL"
    return "ok" if result is None or not isinstance(result, tuple) else repr(result[0])


def test_x509_acl_enforcement(tls_server: ServerProcess, stores: Stores, clients: _Clients) -> None:
    """
    A node whose ACL names alice's DN: alice reads it, bob gets NoAuth, the super
    user's certificate passes; C{auth} expands to the creator's DN; a plain client
    (only its ip id) is refused; a malformed DN is InvalidACL.  Same on both servers.
    """
    _check_x509_acls(tls_server, stores, clients, "/tls-acl")


def test_x509_acls_through_a_session_server(
    split_tls_server: ServerProcess, stores: Stores, clients: _Clients
) -> None:
    """
    The same outcomes in the split: the TLS listener is a session server's, the ACLs
    are checked and validated by a data server with no TLS listener of its own (it
    takes the x509 scheme from the session server's link, the DN ids and the super
    user's C{super} from each request).
    """
    _check_x509_acls(split_tls_server, stores, clients, "/tls-split-acl")


def _check_x509_acls(server: ServerProcess, stores: Stores, clients: _Clients, base: str) -> None:
    alice = clients.tls(server, stores, "alice")
    alice.start(timeout=20)
    bob = clients.tls(server, stores, "bob")
    bob.start(timeout=20)
    admin = clients.tls(server, stores, "admin")
    admin.start(timeout=20)
    plain = clients.plain(server)
    if alice.exists(base) is None:
        alice.create(base, b"")
    path = alice.create(
        f"{base}/n-", b"secret", acl=[ACL(ALL, Id("x509", stores.dns["alice"]))], sequence=True
    )
    for other in (bob, admin, plain):  # other sessions: see alice's write first
        other.sync(path)
    outcomes = {
        "alice reads": _outcome(lambda: alice.get(path)),
        "bob reads": _outcome(lambda: bob.get(path)),
        "admin reads": _outcome(lambda: admin.get(path)),
        "plain reads": _outcome(lambda: plain.get(path)),
        "bob sets": _outcome(lambda: bob.set(path, b"x")),
        "admin sets": _outcome(lambda: admin.set(path, b"y") and None),
    }
    auth_path = alice.create(f"{base}/auth-", b"", acl=[ACL(ALL, Id("auth", ""))], sequence=True)
    bob.sync(auth_path)
    outcomes["auth expands to"] = repr(
        [(acl.id.scheme, acl.id.id) for acl in alice.get_acls(auth_path)[0]]
    )
    outcomes["bob reads auth node"] = _outcome(lambda: bob.get(auth_path))
    outcomes["bad dn"] = _outcome(
        lambda: (
            alice.create(
                f"{base}/bad-", b"", acl=[ACL(ALL, Id("x509", "no dn here"))], sequence=True
            )
            and None
        )
    )
    assert outcomes == {
        "alice reads": "b'secret'",
        "bob reads": "NoAuth",
        "admin reads": "b'secret'",
        "plain reads": "NoAuth",
        "bob sets": "NoAuth",
        "admin sets": "ok",
        "auth expands to": repr([("x509", stores.dns["alice"])]),
        "bob reads auth node": "NoAuth",
        "bad dn": "InvalidACL",
    }


def _log_has(server: ServerProcess, text: str) -> bool:
    return text in server.log_tail(200_000)


@pytest.mark.parametrize(
    ("who", "log_text"),
    [
        ("stranger", "not signed by a CA in the trust store"),
        ("expired", "has expired"),
        (None, "no client certificate"),
    ],
)
def test_refused_certificates(
    zkreg_tls: ServerProcess, stores: Stores, clients: _Clients, who: str | None, log_text: str
) -> None:
    """A wrong, expired or missing certificate: no session, one log line why; others go on."""
    witness = clients.tls(zkreg_tls, stores, "alice")
    witness.start(timeout=20)
    refused = clients.tls(zkreg_tls, stores, who, connection_retry={"max_tries": 0})
    with pytest.raises(refused.handler.timeout_exception):
        refused.start(timeout=3)
    wait_until(lambda: _log_has(zkreg_tls, log_text), timeout=15, message=log_text)
    assert witness.exists("/") is not None
    assert clients.plain(zkreg_tls).exists("/") is not None
    _assert_one_refusal_line(zkreg_tls, stores, who)


def _assert_one_refusal_line(server: ServerProcess, stores: Stores, who: str | None) -> None:
    """
    One more refused connection, made by hand so it is exactly one (kazoo retries):
    exactly one log line names its port, saying why, and no traceback.  C{who} is the
    certificate presented, none for L{None}, or C{"plaintext"} for no TLS at all.
    """
    raw = socket.create_connection(("127.0.0.1", server.secure_port), timeout=10)  # type: ignore[attr-defined]
    port = raw.getsockname()[1]
    try:
        if who == "plaintext":
            raw.sendall(b"\x00\x00\x00\x2c" + b"\x00" * 44)
        else:
            context = ssl.create_default_context(cafile=str(stores.truststore))
            if who is not None:
                context.load_cert_chain(str(stores.certificates[who]), str(stores.keys[who]))
            raw = context.wrap_socket(raw, server_hostname="127.0.0.1")
            raw.sendall(b"\x00\x00\x00\x2c" + b"\x00" * 44)
        raw.recv(1)
    except OSError:
        pass  # refused: an alert, a reset or end of file
    finally:
        raw.close()
    marker = f"client /127.0.0.1:{port}: TLS handshake refused, connection closed: "
    wait_until(lambda: marker in server.log_tail(200_000), timeout=15, message="the refusal logged")
    log = server.log_tail(200_000)
    # Besides the info lines of every connection (opened, closed): one warning.
    lines = [line for line in log.splitlines() if f"/127.0.0.1:{port}" in line]
    warnings = [line for line in lines if "#warn]" in line or "#error]" in line]
    assert len(warnings) == 1 and marker in warnings[0], lines
    assert "Traceback" not in log


def test_plaintext_to_tls_port(zkreg_tls: ServerProcess, stores: Stores, clients: _Clients) -> None:
    """A plaintext client on the TLS port is refused with a log line; TLS clients go on."""
    witness = clients.tls(zkreg_tls, stores, "bob")
    witness.start(timeout=20)
    plain = KazooClient(
        hosts=f"127.0.0.1:{zkreg_tls.secure_port}",  # type: ignore[attr-defined]
        timeout=10.0,
        connection_retry={"max_tries": 0},
    )
    clients.started.append(plain)
    with pytest.raises(plain.handler.timeout_exception):
        plain.start(timeout=3)
    wait_until(
        lambda: _log_has(zkreg_tls, "not a TLS client (plaintext on a TLS port?)"),
        timeout=15,
        message="plaintext refusal logged",
    )
    assert witness.get("/")[1] is not None
    _assert_one_refusal_line(zkreg_tls, stores, "plaintext")


def test_listen_takes_ssl_endpoint(stores: Stores, clients: _Clients, tmp_path: Path) -> None:
    """
    C{--listen ssl:...} (Twisted's endpoint, server certificate only): kazoo connects
    with C{use_ssl=True}; the server is checked against the test CA.
    """
    port = free_port()
    server = ZkregServer(
        extra_args=[
            "--listen",
            f"ssl:{port}:interface=127.0.0.1:privateKey={stores.keys['server']}"
            f":certKey={stores.certificates['server']}",
            "--4lw-whitelist",
            "*",
        ]
    )
    # ruok goes to the plain port the launcher gives; the last --listen wins, so
    # only the TLS one exists: wait on kazoo instead.
    server.secure_port = port  # type: ignore[attr-defined]
    import subprocess

    from tests.support.servers import _DIE_WITH_PARENT

    process = subprocess.Popen(
        server.command(),
        cwd=server.cwd(),
        env=server.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_DIE_WITH_PARENT,  # type: ignore[arg-type]
    )
    try:
        client = clients.tls(server, stores, None)
        wait_until(lambda: _try_start(client), timeout=30, message="TLS --listen answers")
        client.create("/tls-listen-ssl", b"over tls")
        assert client.get("/tls-listen-ssl")[0] == b"over tls"
    finally:
        process.kill()
        process.wait()
        server.cleanup()


def _try_start(client: KazooClient) -> bool:
    try:
        client.start(timeout=2)
    except Exception:
        return False
    return True


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--listen", "ssl:0:privateKey=/nonexistent/server.pem"], ["No such file"]),
        (["--secure-listen", "tcp:0"], ["--secure-listen needs --ssl-keystore"]),
        (
            ["--secure-listen", "tcp:0", "--ssl-keystore", "{truststore}"],
            ["must hold a PEM private key"],
        ),
        (
            ["--secure-listen", "tcp:0", "--ssl-keystore", "{server}"],
            ["client auth need needs a trust store"],
        ),
        (["--ssl-client-auth", "maybe"], ["ssl-client-auth must be one of none, want, need"]),
        (["--x509-superuser", "admin"], ["x509-superuser must be a subject DN"]),
        (
            ["--role", "session", "--data-server", "tcp:127.0.0.1:1"]
            + ["--data-link-ssl-hostname", "data.example"],
            ["data-link-ssl-hostname and data-link-ssl-hostname-verification need data-link TLS"],
        ),
        (
            ["--role", "session", "--data-server", "tcp:127.0.0.1:1"]
            + ["--data-link-ssl-hostname-verification", "maybe"],
            ["expected true or false, got 'maybe'"],
        ),
        (
            ["--secure-listen", "tcp:0", "--ssl-keystore", "/nonexistent/k.pem"],
            ["cannot read key store /nonexistent/k.pem"],
        ),
    ],
)
def test_tls_startup_errors(
    stores: Stores, tmp_path: Path, argv: list[str], fragments: list[str]
) -> None:
    """A missing or wrong TLS file or setting stops zkreg with one line, no traceback."""
    from tests.integration.test_startup_errors import assert_one_line_error, twistd

    values = {"truststore": str(stores.truststore), "server": str(stores.server)}
    result = twistd(*[arg.format(**values) for arg in argv], cwd=tmp_path)
    assert_one_line_error(result, *fragments)


ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")


def _zkcli_tls(server: ServerProcess, stores: Stores, who: str, script: str) -> str:
    """
    Run Debian's zkCli.sh (the Java client) on the TLS port with C{who}'s PEM key
    store: Netty socket, PEM trust and key stores.  zkEnv.sh fixes the classpath
    without Netty's codec and resolver jars, so CLIENT_JVMFLAGS gives a whole one
    (the JVM takes the last -cp).
    """
    import os
    import subprocess

    if not ZKCLI.exists():
        pytest.skip(f"{ZKCLI} absent (Debian package zookeeper)")
    jars = ["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar", *NETTY_EXTRA_JARS]
    flags = [
        "-Xmx128m",
        "-cp",
        ":".join(jar for jar in jars if Path(jar).exists()),
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        f"-Dzookeeper.ssl.keyStore.location={stores.clients[who]}",
        "-Dzookeeper.ssl.keyStore.type=PEM",
        f"-Dzookeeper.ssl.trustStore.location={stores.truststore}",
        "-Dzookeeper.ssl.trustStore.type=PEM",
    ]
    env = dict(os.environ, ZOO_LOG4J_PROP="WARN,CONSOLE", CLIENT_JVMFLAGS=" ".join(flags))
    completed = subprocess.run(
        [str(ZKCLI), "-server", f"127.0.0.1:{server.secure_port}"],  # type: ignore[attr-defined]
        input=script,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return completed.stdout


def test_zkcli_over_tls(tls_server: ServerProcess, stores: Stores) -> None:
    """
    zkCli.sh over TLS with bob's certificate: whoami lists its x509 id (the DN as
    ZooKeeper writes it), it writes and reads, and a node only alice may read is
    NoAuth for it.  The same transcript lines on both servers.
    """
    owner = KazooClient(
        hosts=f"127.0.0.1:{tls_server.secure_port}",  # type: ignore[attr-defined]
        use_ssl=True,
        ca=str(stores.truststore),
        certfile=str(stores.certificates["alice"]),
        keyfile=str(stores.keys["alice"]),
        timeout=10.0,
    )
    owner.start(timeout=20)
    try:
        owner.ensure_path("/tls-zkcli")
        if owner.exists("/tls-zkcli/alice-only") is None:
            owner.create(
                "/tls-zkcli/alice-only", b"", acl=[ACL(ALL, Id("x509", stores.dns["alice"]))]
            )
    finally:
        owner.stop()
        owner.close()
    output = _zkcli_tls(
        tls_server,
        stores,
        "bob",
        "whoami\nset /tls-zkcli bob-was-here\nget /tls-zkcli\nget /tls-zkcli/alice-only\nquit\n",
    )
    # The watcher's lines come from another thread, anywhere in the transcript.
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and not line.startswith(("WATCHER::", "WatchedEvent"))
    ]
    start = lines.index("Auth scheme: User")
    # As ZooKeeper 3.8 prints it (this test passes against it too).
    assert lines[start : start + 5] == [
        "Auth scheme: User",
        "ip: 127.0.0.1",
        f"x509: {stores.dns['bob']}",
        "bob-was-here",
        "Insufficient permission : /tls-zkcli/alice-only",
    ], output


def test_client_auth_want(want_server: ServerProcess, stores: Stores, clients: _Clients) -> None:
    """
    C{ssl.clientAuth=want}: a client without a certificate connects over TLS with
    no x509 id (an x509 node is NoAuth, C{auth} has nothing to expand to); one with
    a certificate gets its DN.  Same on both servers.
    """
    alice = clients.tls(want_server, stores, "alice")
    alice.start(timeout=20)
    anonymous = clients.tls(want_server, stores, None)
    anonymous.start(timeout=20)
    path = alice.create(
        "/tls-want-", b"", acl=[ACL(ALL, Id("x509", stores.dns["alice"]))], sequence=True
    )
    outcomes = {
        "alice reads": _outcome(lambda: alice.get(path)[0].decode() or None),
        "anonymous reads": _outcome(lambda: anonymous.get(path)),
        "anonymous auth acl": _outcome(
            lambda: (
                anonymous.create(
                    "/tls-want-auth-", b"", acl=[ACL(ALL, Id("auth", ""))], sequence=True
                )
                and None
            )
        ),
        "anonymous reads root": _outcome(lambda: anonymous.get_children("/") and None),
    }
    assert outcomes == {
        "alice reads": "ok",
        "anonymous reads": "NoAuth",
        "anonymous auth acl": "InvalidACL",
        "anonymous reads root": "ok",
    }


class _TLSRawClient(RawClient):
    """A raw ZooKeeper client over TLS (Python's ssl), with a client certificate."""

    context: ssl.SSLContext | None = None

    def open_socket(self) -> None:
        self.drop()
        assert self.context is not None
        plain = socket.create_connection((self.host, self.port), timeout=self.io_timeout)
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = self.context.wrap_socket(plain, server_hostname="127.0.0.1")
        self._buffer = bytearray()


def test_slow_tls_consumer_is_bounded_then_closed(stores: Stores, clients: _Clients) -> None:
    """
    The liveness bound (--max-output-buffer, --output-stall-timeout) over TLS: a TLS
    client that sends 300 getData of a 1 MB node and reads nothing is no longer read
    once a few MiB are unsent (the encrypted replies wait in the TCP transport under
    TLS), so the server grows by far less than the 300 MB the replies would take;
    other clients, TLS and plain, are answered meanwhile; the connection is closed
    with one log line once it stays full for the stall timeout.
    """
    from tests.integration.test_liveness import connections_from, get_data_frame, rss_bytes

    server = _server("zkreg", stores)
    assert isinstance(server, ZkregServer)
    server.extra_args += ["--output-stall-timeout", "3000"]
    _start(server)
    try:
        witness = clients.tls(server, stores, "bob")
        witness.start(timeout=20)
        plain = clients.plain(server)
        witness.create("/tls-slow", b"x" * 1_000_000)
        baseline = rss_bytes(server.pid)  # type: ignore[arg-type]
        context = ssl.create_default_context(cafile=str(stores.truststore))
        context.load_cert_chain(str(stores.certificates["alice"]), str(stores.keys["alice"]))
        slow = _TLSRawClient(server.secure_port)  # type: ignore[attr-defined]
        slow.context = context
        slow.connect()
        sock = slow._sock
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        local_port = sock.getsockname()[1]
        sock.sendall(b"".join(get_data_frame(xid, "/tls-slow") for xid in range(1, 301)))
        try:
            for _ in range(5):
                for other in (witness, plain):
                    started = time.monotonic()
                    assert other.get("/tls-slow")[0][:1] == b"x"
                    assert time.monotonic() - started < 5.0
            grown = rss_bytes(server.pid) - baseline  # type: ignore[arg-type]
            assert grown < 60_000_000, f"server grew by {grown} bytes for one slow TLS client"
            wait_until(
                lambda: connections_from(server, local_port) == 0,
                timeout=30,
                message="the slow TLS client's connection to be closed",
            )
            log = server.log_tail(200_000)
            assert log.count("read none of its") == 1, log[-3000:]
            assert witness.exists("/tls-slow") is not None
            assert plain.exists("/tls-slow") is not None
        finally:
            slow.drop()
    finally:
        server.cleanup()
