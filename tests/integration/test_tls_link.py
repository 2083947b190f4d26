"""
Mutual TLS on the data link (C{--data-link-ssl-keystore}, C{--data-link-ssl-truststore}):
a session server with a certificate of the link's own CA serves clients on the data
server's tree; one whose certificate comes from another CA (here the clients' CA) is
refused by the data server with a log line, and the linked one goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kazoo.client import KazooClient

from tests.support.certs import Stores, make_stores
from tests.support.ports import free_port
from tests.support.servers import ServerStartError, ZkregServer
from tests.support.split import link_listen, running_split, session_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def link_stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("link-ca"))


@pytest.fixture(scope="module")
def client_stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("client-ca"))


@pytest.fixture(scope="module")
def split(link_stores: Stores) -> Iterator[tuple[ZkregServer, ZkregServer, int]]:
    with running_split(
        data_options=link_stores.data_link(link_stores.server),
        session_options=link_stores.data_link(link_stores.clients["alice"]),
    ) as started:
        yield started.data, started.sessions[0], started.link_port


@contextmanager
def _client(server: ZkregServer) -> Iterator[KazooClient]:
    """A started kazoo client of C{server}, stopped and closed on the way out."""
    client = KazooClient(hosts=server.hosts, timeout=10.0)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def _never_links(joiner: ZkregServer, logger: ZkregServer, *lines: str) -> None:
    """
    C{joiner} (a session server) never starts serving, and C{logger}'s log says why:
    every one of C{lines}.
    """
    try:
        with pytest.raises(ServerStartError):
            joiner.start(deadline_s=6)
        wait_until(
            lambda: all(line in logger.log_tail(100_000) for line in lines),
            timeout=15,
            message=f"the refused link logged: {lines}",
        )
    finally:
        joiner.cleanup()


def test_session_server_over_tls_link(split: tuple[ZkregServer, ZkregServer, int]) -> None:
    data, session, _ = split
    with _client(session) as remote, _client(data) as local:
        remote.create("/tls-link", b"over the tls link")
        local.sync("/tls-link")
        assert local.get("/tls-link")[0] == b"over the tls link"


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
    intruder = session_server(
        link_port, *(link_stores.data_link(client_stores.clients["alice"]) if tls else ())
    )
    expected = "not signed by a CA in the trust store" if tls else "not a TLS client"
    _never_links(intruder, data, "data link: TLS handshake with", expected)
    with _client(session) as client:
        assert client.exists("/") is not None


def test_large_snapshot_over_tls_link(
    split: tuple[ZkregServer, ZkregServer, int], link_stores: Stores
) -> None:
    """
    A session server joining over TLS a tree too large to send inline gets the
    snapshot from a forked child, relayed into TLS by the data server (not written
    on its reactor): the joiner's replica holds every node, and a write made during
    the join follows the snapshot.
    """
    from zkreg.link.snapshot_transfer import INLINE_SNAPSHOT_NODES

    data, _, link_port = split
    joiner = session_server(link_port, *link_stores.data_link(link_stores.clients["bob"]))
    with _client(data) as local:
        local.ensure_path("/tls-big")
        count = INLINE_SNAPSHOT_NODES + 1000
        for start in range(0, count, 500):
            transaction = local.transaction()
            for index in range(start, min(start + 500, count)):
                transaction.create(f"/tls-big/n{index:06d}", b"v" * 50)
            assert all(isinstance(result, str) for result in transaction.commit())
        try:
            joiner.start(deadline_s=60)
            local.create("/tls-big-after", b"after the join")
            with _client(joiner) as remote:
                remote.sync("/tls-big-after")
                assert len(remote.get_children("/tls-big")) == count
                assert remote.get("/tls-big-after")[0] == b"after the join"
            log = data.log_tail(200_000)
            assert "written by pid" in log and "nodes sent, then" in log, log[-3000:]
        finally:
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
    joiner = session_server(link_port, *link_stores.data_link(link_stores.clients["bob"]), *options)
    if not links:
        refused = "TLS handshake refused: its certificate does not name data.elsewhere.example"
        _never_links(joiner, joiner, refused)
        return
    try:
        joiner.start(deadline_s=30)
        with _client(joiner) as remote:
            assert remote.exists("/") is not None
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
        extra_args=[*link_listen(link_port), *link_stores.data_link(client_stores.server)]
    )
    joiner = session_server(link_port, *link_stores.data_link(link_stores.clients["bob"]))
    try:
        data.start()
        refused = (
            "TLS handshake refused: its certificate does not chain to the data-link trust store"
        )
        _never_links(joiner, joiner, refused)
    finally:
        data.cleanup()
