"""
curatorish over TLS (C{tls=}): the blocking face with a L{curatorish.TLSConfig} and
the Deferred face with Twisted's C{optionsForClientTLS}, against ZooKeeper 3.8 and
zkreg with TLS ports (tests/integration/test_tls.py starts both alike): the x509 id
is the certificate's DN, ACLs hold, and a server whose certificate the CA did not
sign is never connected to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import ssl

from curatorish import ACL, BlockingCuratorFramework, Id, TLSConfig
from curatorish.errors import NoAuthError
from tests.integration.test_tls import _server, _start
from tests.support.certs import Stores, make_stores

ALL = 31


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return make_stores(tmp_path_factory.mktemp("curatorish-tls"))


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def tls_server(request: pytest.FixtureRequest, stores: Stores) -> Iterator[Any]:
    server = _start(_server(request.param, stores))
    yield server
    server.cleanup()


def _hosts(server: Any) -> str:
    return f"127.0.0.1:{server.secure_port}"


def _tls(stores: Stores, who: str) -> TLSConfig:
    return TLSConfig(ca=stores.truststore, cert=stores.certificates[who], key=stores.keys[who])


def test_blocking_client_with_tls_config(
    tls_server: Any, stores: Stores, make_client: Callable[..., BlockingCuratorFramework]
) -> None:
    alice = make_client(_hosts(tls_server), tls=_tls(stores, "alice"))
    bob = make_client(
        _hosts(tls_server), tls=TLSConfig(ca=stores.truststore, cert=stores.clients["bob"])
    )
    assert ("x509", stores.dns["alice"]) in alice.who_am_i()
    assert ("x509", stores.dns["bob"]) in bob.who_am_i()
    path = alice.create(
        "/curatorish-tls-", b"alice's", acl=[ACL(ALL, Id("x509", stores.dns["alice"]))], mode=_seq()
    ).path
    assert alice.get_data(path)[0] == b"alice's"
    with pytest.raises(NoAuthError):
        bob.get_data(path)


def _seq() -> Any:
    from curatorish import CreateMode

    return CreateMode.PERSISTENT_SEQUENTIAL


def test_twisted_tls_options(
    tls_server: Any, stores: Stores, make_client: Callable[..., BlockingCuratorFramework]
) -> None:
    """C{tls=} also takes Twisted's own client TLS options, as made for the host."""
    trust = ssl.Certificate.loadPEM(stores.truststore.read_bytes())
    key_store = stores.clients["admin"].read_bytes()
    options = ssl.optionsForClientTLS(
        "127.0.0.1", trustRoot=trust, clientCertificate=ssl.PrivateCertificate.loadPEM(key_store)
    )
    admin = make_client(_hosts(tls_server), tls=options)
    assert ("x509", stores.dns["admin"]) in admin.who_am_i()


def test_server_of_another_ca_is_refused(
    tls_server: Any,
    stores: Stores,
    tmp_path_factory: pytest.TempPathFactory,
    make_client: Callable[..., BlockingCuratorFramework],
) -> None:
    """A client trusting another CA never connects (the server's certificate fails)."""
    other = make_stores(tmp_path_factory.mktemp("other-ca"))
    client = make_client(
        _hosts(tls_server),
        start=False,
        tls=TLSConfig(
            ca=other.truststore, cert=stores.certificates["alice"], key=stores.keys["alice"]
        ),
    )
    client.start()
    assert not client.block_until_connected(3)


def test_bad_tls_argument() -> None:
    with pytest.raises(TypeError, match="tls must be a TLSConfig"):
        BlockingCuratorFramework("127.0.0.1:1", tls="yes please")
