"""
TLS for curatorish's connections, through Twisted's C{wrapClientTLS}: a ZooKeeper
server's secure port (ZooKeeper's C{secureClientPort}, zkreg's C{--secure-listen}).

C{tls=} of L{curatorish.CuratorFramework} (and of the blocking face and
L{curatorish.connection.session.ZooKeeperConnection}) takes either a L{TLSConfig}
(PEM files: the CA the server's certificate must chain to, the client's certificate
and key) or any Twisted client TLS options made for one host, e.g. the result of
C{twisted.internet.ssl.optionsForClientTLS("zk.example", trustRoot, clientCert)}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator

__all__ = ["TLSConfig", "tls_endpoint_factory"]


def _read(path: str | Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


@dataclass(frozen=True)
class TLSConfig:
    """
    PEM files of a TLS client; each server's certificate is checked against C{ca}
    and against the host name (or IP address) dialled.

    @ivar ca: the CA certificate(s) the servers' certificates chain to; L{None}
        trusts the platform's CAs.
    @ivar cert: the client certificate (for servers that want or need one, and for
        the C{x509} ACL scheme); it may also hold the key.
    @ivar key: the client's private key, when not in C{cert}.
    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None

    def options_for(self, host: str) -> Any:
        """Twisted's client TLS options for a connection to C{host}."""
        trust: Any = None
        if self.ca is not None:
            trust = ssl.Certificate.loadPEM(_read(self.ca))
        client_certificate = None
        if self.cert is not None:
            pem = _read(self.cert)
            if self.key is not None:
                pem = pem + b"\n" + _read(self.key)
            client_certificate = ssl.PrivateCertificate.loadPEM(pem)
        return ssl.optionsForClientTLS(host, trustRoot=trust, clientCertificate=client_certificate)


def tls_endpoint_factory(
    tls: Any, plain: Callable[[Any, str, int, float], Any]
) -> Callable[[Any, str, int, float], Any]:
    """
    Wrap an endpoint factory C{(reactor, host, port, timeout_s) -> endpoint} in TLS.

    @param tls: a L{TLSConfig} (options made per host) or Twisted client TLS options
        (L{IOpenSSLClientConnectionCreator}, used for every host as given).
    """
    if isinstance(tls, TLSConfig):
        options_for: Callable[[str], Any] = tls.options_for
    elif IOpenSSLClientConnectionCreator.providedBy(tls):

        def options_for(host: str) -> Any:
            return tls

    else:
        raise TypeError(
            f"tls must be a TLSConfig or Twisted client TLS options "
            f"(optionsForClientTLS), not {type(tls).__name__}"
        )

    def endpoint(reactor: Any, host: str, port: int, timeout_s: float) -> Any:
        return wrapClientTLS(options_for(host), plain(reactor, host, port, timeout_s))

    return endpoint
