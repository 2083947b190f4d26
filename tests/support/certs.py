"""
Certificates made by the tests: a test CA, a server certificate for 127.0.0.1 and
localhost, client certificates (one of them expired, one from another CA), written as
PEM key stores (key + certificate) and trust stores (CA certificates), the format
zkreg and ZooKeeper's C{ssl.keyStore.type=PEM} both read.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(**parts: str) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
    oids["O"] = NameOID.ORGANIZATION_NAME
    # Most general first in the certificate, as openssl and keytool write them.
    order = ["O", "OU", "CN"]
    return x509.Name([x509.NameAttribute(oids[k], parts[k]) for k in order if k in parts])


@dataclass
class Authority:
    """A CA: its key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(O="zkreg tests", CN=common_name)
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(
        self,
        subject: x509.Name,
        server: bool = False,
        expired: bool = False,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A leaf certificate for 127.0.0.1 and localhost, usable by servers and clients."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        if expired:
            start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
        else:
            start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        )
        return key, builder.sign(self.key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class Stores:
    """
    The PEM files of one test run.

    @ivar truststore: the test CA's certificate.
    @ivar server: key store of the server (127.0.0.1, localhost).
    @ivar clients: key stores by client name: C{alice}, C{bob}, C{admin}, C{expired}
        (signed by the test CA) and C{stranger} (signed by another CA).
    @ivar dns: the subject DN (RFC 2253) of each client certificate.
    """

    directory: Path
    truststore: Path
    server: Path
    clients: dict[str, Path]
    certificates: dict[str, Path]
    keys: dict[str, Path]
    dns: dict[str, str]

    def zkreg_secure_listen(self, secure_port: int, client_auth: str | None = "need") -> list[str]:
        """
        @return: zkreg's options for a TLS client port on C{secure_port} with these
            stores (C{client_auth} None: zkreg's default).
        """
        args = [
            "--secure-listen",
            f"tcp:{secure_port}:interface=127.0.0.1",
            "--ssl-keystore",
            str(self.server),
            "--ssl-truststore",
            str(self.truststore),
        ]
        return args if client_auth is None else [*args, "--ssl-client-auth", client_auth]

    def zookeeper_secure_port(self, secure_port: int, client_auth: str = "need") -> dict[str, str]:
        """
        @return: ZooKeeper 3.8's zoo.cfg settings for the same TLS client port (its
            Netty connection factory, which C{secureClientPort} needs, and PEM stores).
        """
        return {
            "secureClientPort": str(secure_port),
            "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
            "ssl.keyStore.location": str(self.server),
            "ssl.keyStore.type": "PEM",
            "ssl.trustStore.location": str(self.truststore),
            "ssl.trustStore.type": "PEM",
            "ssl.clientAuth": client_auth,
        }

    def data_link(self, keystore: Path) -> list[str]:
        """
        @return: the options making a data server (C{keystore} = L{server}) or a session
            server (a client's key store) speak mutual TLS on the data link.
        """
        return [
            "--data-link-ssl-keystore",
            str(keystore),
            "--data-link-ssl-truststore",
            str(self.truststore),
        ]


def make_stores(directory: Path) -> Stores:
    """Create the CA, server and client certificates under C{directory}."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority.create("zkreg test CA")
    other = Authority.create("some other CA")
    truststore = directory / "ca.pem"
    truststore.write_bytes(_pem(authority.certificate))

    def write(name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> Path:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / f"{name}.key").write_bytes(key_pem)
        (directory / f"{name}.crt").write_bytes(_pem(certificate))
        store = directory / f"{name}.pem"
        store.write_bytes(key_pem + _pem(certificate))
        return store

    server = write("server", *authority.issue(_name(O="zkreg tests", CN="localhost")))
    subjects = {
        "alice": _name(O="zkreg tests", OU="payments", CN="alice"),
        "bob": _name(O="zkreg tests", OU="payments", CN="bob"),
        "admin": _name(O="zkreg tests", CN="admin"),
        "expired": _name(O="zkreg tests", CN="expired"),
        "stranger": _name(O="elsewhere", CN="stranger"),
    }
    clients = {}
    dns = {}
    for name, subject in subjects.items():
        issuer = other if name == "stranger" else authority
        clients[name] = write(name, *issuer.issue(subject, expired=name == "expired"))
        dns[name] = subject.rfc4514_string()
    return Stores(
        directory=directory,
        truststore=truststore,
        server=server,
        clients=clients,
        certificates={name: directory / f"{name}.crt" for name in [*subjects, "server"]},
        keys={name: directory / f"{name}.key" for name in [*subjects, "server"]},
        dns=dns,
    )
