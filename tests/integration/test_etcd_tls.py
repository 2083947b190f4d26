"""
Data-link TLS with the data tier on etcd: two data servers on one etcd member, both
with the data-link key and trust stores, and a session server following the leader
through etcd (C{--role session --etcd}) with its own stores. The session server
connects over mutual TLS to whichever data server etcd names, also after a kill -9
of the active one; the active data server refuses a plain connection.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.certs import make_stores
from tests.support.etcd import etcd_unavailable_reason
from tests.support.etcd_tier import EtcdTier
from tests.support.waiting import wait_until
from zkreg.link import wire

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        etcd_unavailable_reason() is not None, reason=str(etcd_unavailable_reason())
    ),
]

PREFIX = "/zkreg-tls"


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdTier]:
    """etcd, two data servers with data-link TLS, a TLS session server following etcd."""
    stores = make_stores(tmp_path_factory.mktemp("etcd-link-ca"))
    started = EtcdTier(
        1,
        PREFIX,
        data_args=stores.data_link(stores.server),
        session_args=stores.data_link(stores.clients["alice"]),
    )
    try:
        yield started.start()
    finally:
        started.stop()


def _plain_hello_answered(port: int) -> bool:
    """Say a plain-TCP hello to a data link: @return: whether a sync starts."""
    frame = wire.encode_frame(wire.Hello(wire.PROTOCOL_VERSION, -1, "plain", []))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        plain.sendall(frame)
        received = b""
        try:
            while len(received) < 4 or len(received) < 4 + int.from_bytes(received[:4], "big"):
                chunk = plain.recv(65536)
                if not chunk:
                    return False
                received += chunk
        except OSError:
            return False
    try:
        return isinstance(wire.decode_message(received[4:]), wire.SyncStart)
    except Exception:  # noqa: BLE001 - anything but a sync start is a refusal
        return False


def test_session_server_follows_the_leader_over_tls(tier: EtcdTier) -> None:
    """Writes through the TLS link, then through the next leader after a kill -9."""
    from kazoo.client import KazooClient

    assert tier.session is not None
    kazoo = KazooClient(hosts=tier.session.hosts, timeout=10.0)
    kazoo.start(timeout=30)
    try:
        session_id = kazoo.client_id[0]
        kazoo.create("/etcd-tls", b"before")
        first = tier.active()
        assert first is not None
        epoch = kazoo.exists("/etcd-tls").czxid >> 32
        mntr = tier.session.four_letter("mntr")
        assert f"zk_data_server\t{first.link}" in mntr and "zk_data_link_state\tup" in mntr
        # The active data server speaks TLS only.
        assert not _plain_hello_answered(first.link_port)
        wait_until(
            lambda: "not a TLS client" in first.log_tail(100_000),
            timeout=15,
            message="the data server logs the plain connection it refused",
        )
        killed_at = time.monotonic()
        first.kill()
        _, stat = kazoo.create("/etcd-tls/after", b"after", include_data=True)
        print(f"TLS failover (kill -9 to the write answered): {time.monotonic() - killed_at:.2f} s")
        assert stat.czxid >> 32 > epoch
        second = tier.active()
        assert second is not None and second is not first
        assert f"zk_data_server\t{second.link}" in tier.session.four_letter("mntr")
        assert kazoo.client_id[0] == session_id
        assert kazoo.get("/etcd-tls")[0] == b"before"
    finally:
        kazoo.stop()
        kazoo.close()
