"""
Mutual TLS on the data link (C{--data-link-ssl-keystore}, C{--data-link-ssl-truststore}):
a session server with a certificate of the link's own CA serves clients on the data
server's tree; one whose certificate comes from another CA (here the clients' CA) is
refused by the data server with a log line, and the linked one goes on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from tests.support.certs import Stores, make_stores
from tests.support.ports import free_port
from tests.support.servers import ServerStartError, ZkregServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def link_stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("link-ca"))


@pytest.fixture(scope="module")
def client_stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("client-ca"))


def _tls_args(keystore: object, truststore: object) -> list[str]:
    return [
        "--data-link-ssl-keystore",
        str(keystore),
        "--data-link-ssl-truststore",
        str(truststore),
    ]


@pytest.fixture(scope="module")
def split(link_stores: Stores) -> Iterator[tuple[ZkregServer, ZkregServer, int]]:
    link_port = free_port()
    data = ZkregServer(
        extra_args=[
            "--data-link-listen",
            f"tcp:{link_port}:interface=127.0.0.1",
            *_tls_args(link_stores.server, link_stores.truststore),
        ]
    )
    started = [data]
    try:
        data.start()
        session = ZkregServer(
            extra_args=[
                "--role",
                "session",
                "--data-server",
                f"tcp:127.0.0.1:{link_port}",
                *_tls_args(link_stores.clients["alice"], link_stores.truststore),
            ]
        )
        started.append(session)
        session.start()
        yield data, session, link_port
    finally:
        for server in reversed(started):
            server.cleanup()


def _client(server: ZkregServer) -> KazooClient:
    client = KazooClient(hosts=server.hosts, timeout=10.0)
    client.start(timeout=15)
    return client


def test_session_server_over_tls_link(split: tuple[ZkregServer, ZkregServer, int]) -> None:
    data, session, _ = split
    remote, local = _client(session), _client(data)
    try:
        remote.create("/tls-link", b"over the tls link")
        local.sync("/tls-link")
        assert local.get("/tls-link")[0] == b"over the tls link"
    finally:
        for client in (remote, local):
            client.stop()
            client.close()


@pytest.mark.parametrize("tls", [True, False], ids=["other-ca", "plaintext"])
def test_session_server_refused(
    split: tuple[ZkregServer, ZkregServer, int],
    link_stores: Stores,
    client_stores: Stores,
    tls: bool,
) -> None:
    """
    A session server whose link certificate comes from the clients' CA, or that
    speaks plain TCP, never links: the data server logs why; the linked one goes on.
    """
    data, session, link_port = split
    args = ["--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}"]
    if tls:
        args += _tls_args(client_stores.clients["alice"], link_stores.truststore)
    intruder = ZkregServer(extra_args=args)
    try:
        with pytest.raises(ServerStartError):
            intruder.start(deadline_s=6)
        expected = "not signed by a CA in the trust store" if tls else "not a TLS client"
        wait_until(
            lambda: (
                "data link: TLS handshake with" in data.log_tail(100_000)
                and expected in data.log_tail(100_000)
            ),
            timeout=15,
            message="the data server logs the refused link",
        )
    finally:
        intruder.cleanup()
    client = _client(session)
    try:
        assert client.exists("/") is not None
    finally:
        client.stop()
        client.close()


def test_large_snapshot_over_tls_link(
    split: tuple[ZkregServer, ZkregServer, int], link_stores: Stores
) -> None:
    """
    A session server joining over TLS a tree too large to send inline gets the
    snapshot from a forked child, relayed into TLS by the data server (not written
    on its reactor): the joiner's replica holds every node, and a write made during
    the join follows the snapshot.
    """
    from zkreg.link.serve import INLINE_SNAPSHOT_NODES

    data, _, link_port = split
    local = _client(data)
    joiner = ZkregServer(
        extra_args=[
            "--role",
            "session",
            "--data-server",
            f"tcp:127.0.0.1:{link_port}",
            *_tls_args(link_stores.clients["bob"], link_stores.truststore),
        ]
    )
    try:
        local.ensure_path("/tls-big")
        count = INLINE_SNAPSHOT_NODES + 1000
        for start in range(0, count, 500):
            transaction = local.transaction()
            for index in range(start, min(start + 500, count)):
                transaction.create(f"/tls-big/n{index:06d}", b"v" * 50)
            assert all(isinstance(result, str) for result in transaction.commit())
        joiner.start(deadline_s=60)
        local.create("/tls-big-after", b"after the join")
        remote = _client(joiner)
        try:
            remote.sync("/tls-big-after")
            assert len(remote.get_children("/tls-big")) == count
            assert remote.get("/tls-big-after")[0] == b"after the join"
        finally:
            remote.stop()
            remote.close()
        log = data.log_tail(200_000)
        assert "written by pid" in log and "nodes sent, then" in log, log[-3000:]
    finally:
        local.stop()
        local.close()
        joiner.cleanup()


@pytest.mark.parametrize(
    ("options", "links"),
    [
        (["--data-link-ssl-hostname", "localhost"], True),
        (["--data-link-ssl-hostname", "data.elsewhere.example"], False),
        (
            [
                "--data-link-ssl-hostname",
                "data.elsewhere.example",
                "--data-link-ssl-hostname-verification",
                "false",
            ],
            True,
        ),
    ],
    ids=["configured-name", "wrong-name", "verification-off"],
)
def test_data_server_name_checked(
    split: tuple[ZkregServer, ZkregServer, int],
    link_stores: Stores,
    options: list[str],
    links: bool,
) -> None:
    """
    The session server checks the data server's certificate names the host it dials
    (the other tests: 127.0.0.1) or the configured C{--data-link-ssl-hostname}
    (the test certificate names 127.0.0.1 and localhost); a name it does not carry
    is refused with a log line naming it, unless verification is off.
    """
    _, _, link_port = split
    joiner = ZkregServer(
        extra_args=[
            "--role",
            "session",
            "--data-server",
            f"tcp:127.0.0.1:{link_port}",
            *_tls_args(link_stores.clients["bob"], link_stores.truststore),
            *options,
        ]
    )
    try:
        if links:
            joiner.start(deadline_s=30)
            remote = _client(joiner)
            try:
                assert remote.exists("/") is not None
            finally:
                remote.stop()
                remote.close()
        else:
            with pytest.raises(ServerStartError):
                joiner.start(deadline_s=6)
            wait_until(
                lambda: (
                    "TLS handshake refused: its certificate does not name "
                    "data.elsewhere.example" in joiner.log_tail(100_000)
                ),
                timeout=15,
                message="the session server logs the refused data server",
            )
    finally:
        joiner.cleanup()


def test_data_server_of_another_ca_refused(link_stores: Stores, client_stores: Stores) -> None:
    """
    A data server whose link certificate comes from another CA is never linked to:
    the session server logs why (its certificate does not chain to the link's trust
    store) and does not start serving.
    """
    link_port = free_port()
    data = ZkregServer(
        extra_args=[
            "--data-link-listen",
            f"tcp:{link_port}:interface=127.0.0.1",
            *_tls_args(client_stores.server, link_stores.truststore),
        ]
    )
    joiner = ZkregServer(
        extra_args=[
            "--role",
            "session",
            "--data-server",
            f"tcp:127.0.0.1:{link_port}",
            *_tls_args(link_stores.clients["bob"], link_stores.truststore),
        ]
    )
    try:
        data.start()
        with pytest.raises(ServerStartError):
            joiner.start(deadline_s=6)
        wait_until(
            lambda: (
                "TLS handshake refused: its certificate does not chain to the data-link "
                "trust store" in joiner.log_tail(100_000)
            ),
            timeout=15,
            message="the session server logs the data server it refused",
        )
    finally:
        joiner.cleanup()
        data.cleanup()
