"""
TLS for zkreg's listeners and its data link, from PEM key and trust stores.

ZooKeeper's C{secureClientPort} takes a key store (the server's private key and
certificate chain) and a trust store (the CAs whose certificates it accepts from
clients); with C{ssl.keyStore.type=PEM} both are PEM files.  zkreg takes the same two
files and builds Twisted's TLS from them (pyOpenSSL underneath): no TLS of its own.

A client that presented a certificate the trust store vouches for is given its
subject's distinguished name as an C{x509} identity, as ZooKeeper's
C{X509AuthenticationProvider} does; L{subject_dn} writes the name as Java's
C{X500Principal.getName()} does (RFC 2253), so ACLs written for ZooKeeper match.

A refused handshake (a certificate from another CA, an expired one, none where one is
needed, plaintext) is explained by L{handshake_refusal}, for one log line.
"""

from __future__ import annotations

import weakref
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import ssl
from twisted.python.failure import Failure

__all__ = [
    "CLIENT_AUTH_MODES",
    "TLSConfigError",
    "client_tls_options",
    "data_link_tls_endpoints",
    "handshake_refusal",
    "load_keystore",
    "load_truststore",
    "peer_dn",
    "server_refusal",
    "server_tls_options",
    "subject_dn",
]

#: ZooKeeper's C{ssl.clientAuth} values: C{none} asks no certificate, C{want} asks
#: (and checks one that is given), C{need} refuses a client without one.
CLIENT_AUTH_MODES = ("none", "want", "need")


class TLSConfigError(Exception):
    """A key or trust store cannot be used; the message is one line for the operator."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as error:
        raise TLSConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None


def load_keystore(path: str) -> tuple[ssl.PrivateCertificate, list[ssl.Certificate]]:
    """
    Read a PEM key store: a private key and its certificate, then any intermediate
    certificates of its chain (ZooKeeper's PEM C{keyStore}).

    @return: the private certificate and the rest of the chain.
    @raise TLSConfigError: when the file is missing or holds no matching key and
        certificate.
    """
    pem = _read(path, "key store")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as error:
        raise TLSConfigError(
            f"key store {path} must hold a PEM private key (unencrypted) and its "
            f"certificate: {error}"
        ) from None
    leaf = certificates[0]
    if leaf.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise TLSConfigError(f"key store {path}: the private key does not match the certificate")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private = ssl.PrivateCertificate.loadPEM(
        leaf.public_bytes(serialization.Encoding.PEM) + key_pem
    )
    chain = [
        ssl.Certificate.loadPEM(cert.public_bytes(serialization.Encoding.PEM))
        for cert in certificates[1:]
    ]
    return private, chain


def load_truststore(path: str) -> list[ssl.Certificate]:
    """
    Read a PEM trust store: the CA certificates whose signatures are accepted.

    @raise TLSConfigError: when the file is missing or holds no certificate.
    """
    pem = _read(path, "trust store")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise TLSConfigError(f"trust store {path} must hold PEM CA certificates: {error}") from None
    return [
        ssl.Certificate.loadPEM(cert.public_bytes(serialization.Encoding.PEM))
        for cert in certificates
    ]


#: X.509 verification results OpenSSL reports, said for an operator.
_VERIFY_ERRORS = {
    2: "its issuer is not in the trust store",
    7: "its signature does not verify",
    9: "it is not yet valid",
    10: "it has expired",
    18: "it is self-signed and not in the trust store",
    19: "its chain ends in a self-signed certificate not in the trust store",
    20: "it is not signed by a CA in the trust store",
    21: "it is not signed by a CA in the trust store",
    23: "it has been revoked",
    24: "its issuer is not a CA",
    26: "it is not meant for this purpose",
}

#: Why a TLS connection's peer certificate was refused, by its TLS protocol.
_refusals: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _record_refusal(connection: Any, certificate: Any, errno: int, depth: int, ok: int) -> bool:
    """pyOpenSSL's verify callback: keep OpenSSL's verdict, remember why it said no."""
    if not ok:
        reason = _VERIFY_ERRORS.get(errno, f"verification error {errno}")
        try:
            subject = subject_dn(certificate.to_cryptography())
        except Exception:
            subject = "?"
        tls_protocol = connection.get_app_data()
        if tls_protocol is not None:
            _refusals[tls_protocol] = f"certificate {subject!r} refused: {reason}"
    return bool(ok)


class _ServerContextFactory:
    """
    Twisted's L{ssl.CertificateOptions} with ZooKeeper's C{clientAuth} modes and a
    verify callback that remembers why a client certificate was refused.
    """

    def __init__(self, options: ssl.CertificateOptions, client_auth: str) -> None:
        self._options = options
        self._client_auth = client_auth
        self._context: SSL.Context | None = None

    def getContext(self) -> SSL.Context:
        if self._context is None:
            context = self._options.getContext()
            if self._client_auth != "none":
                mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
                if self._client_auth == "need":
                    mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
                context.set_verify(mode, _record_refusal)
            self._context = context
        return self._context


def server_tls_options(keystore: str, truststore: str | None, client_auth: str = "need") -> Any:
    """
    The TLS context factory of a listener.

    @param keystore: the PEM key store (see L{load_keystore}).
    @param truststore: the PEM trust store that client certificates must chain to;
        needed unless C{client_auth} is C{none}.
    @param client_auth: one of L{CLIENT_AUTH_MODES}.
    @raise TLSConfigError: for an unusable store or a mode without a trust store.
    """
    if client_auth not in CLIENT_AUTH_MODES:
        raise TLSConfigError(
            f"client auth must be one of {', '.join(CLIENT_AUTH_MODES)}, got {client_auth!r}"
        )
    private, chain = load_keystore(keystore)
    if truststore is None and client_auth != "none":
        raise TLSConfigError(
            f"client auth {client_auth} needs a trust store (the CAs of client certificates)"
        )
    authorities = load_truststore(truststore) if truststore is not None else []
    options = ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        extraCertChain=[cert.original for cert in chain],
        verify=client_auth != "none",
        requireCertificate=client_auth == "need",
        caCerts=[cert.original for cert in authorities] or None,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )
    return _ServerContextFactory(options, client_auth)


def client_tls_options(
    hostname: str,
    truststore: str | None = None,
    keystore: str | None = None,
    verify_hostname: bool = True,
) -> Any:
    """
    The TLS options of a client (the data link's session side): the server's
    certificate must chain to the trust store (the system's CAs without one) and,
    unless C{verify_hostname} is false, name C{hostname} (a DNS name or an IP
    address, matched against its subject alternative names, RFC 6125); the key
    store, if given, is the client certificate presented.
    """
    trust: Any = None
    if truststore is not None:
        authorities = load_truststore(truststore)
        trust = ssl.trustRootFromCertificates(authorities)
    client_certificate = None
    if keystore is not None:
        client_certificate, _ = load_keystore(keystore)
    if verify_hostname:
        return ssl.optionsForClientTLS(
            hostname, trustRoot=trust, clientCertificate=client_certificate
        )
    # The chain is still verified (trustRoot implies verify); only the name is not.
    return ssl.CertificateOptions(
        privateKey=client_certificate.privateKey.original if client_certificate else None,
        certificate=client_certificate.original if client_certificate else None,
        trustRoot=trust if trust is not None else ssl.platformTrust(),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def _host_of(description: str) -> str:
    """The host of a C{tcp:host:port} (or C{tcp:host=...:port=...}) endpoint string."""
    _, _, rest = description.partition(":")
    positional = []
    for part in rest.split(":"):
        name, equals, value = part.partition("=")
        if equals and name == "host":
            return value
        if not equals:
            positional.append(part)
    return positional[0] if positional else ""


def data_link_tls_endpoints(
    described: list[tuple[str, Any]],
    keystore: str,
    truststore: str | None,
    hostname: str | None = None,
    verify_hostname: bool = True,
) -> list[tuple[str, Any]]:
    """
    Wrap a session server's data-server endpoints in mutual TLS: it presents the
    data-link key store and checks the data server's certificate against the
    data-link trust store and the name it expects (as ZooKeeper's
    C{ssl.hostnameVerification}, on by default).

    @param described: C{(description, endpoint)} pairs of
        L{zkreg.link.tcp.parse_data_servers}.
    @param hostname: the name every data server's certificate must carry; L{None}:
        the host each endpoint dials (C{tcp:10.0.0.5:2888} needs C{10.0.0.5}).
    @param verify_hostname: false to check only the chain to the trust store.
    """
    from twisted.internet.endpoints import wrapClientTLS

    return [
        (
            description,
            wrapClientTLS(
                client_tls_options(
                    hostname if hostname is not None else _host_of(description),
                    truststore,
                    keystore,
                    verify_hostname,
                ),
                endpoint,
            ),
        )
        for description, endpoint in described
    ]


#: The attribute keywords C{X500Principal.getName()} writes (RFC 2253 section 2.3);
#: any other attribute is written as its dotted OID and the hex of its DER value.
_RFC2253_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
}


def _escape(value: str) -> str:
    """RFC 2253 section 2.4: backslash before the special characters."""
    escaped = "".join("\\" + char if char in ',+"\\<>;' else char for char in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _der_value(attribute: x509.NameAttribute) -> bytes:
    """The DER of one attribute's value, as its certificate encodes it."""
    der = x509.Name([attribute]).public_bytes()

    def skip_header(data: bytes, offset: int) -> tuple[int, int]:
        length = data[offset + 1]
        start = offset + 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[start : start + count], "big")
            start += count
        return start, length

    # SEQUENCE { SET { SEQUENCE { OID, value } } }
    offset, _ = skip_header(der, 0)
    offset, _ = skip_header(der, offset)
    offset, _ = skip_header(der, offset)
    start, length = skip_header(der, offset)
    return der[start + length :]


def subject_dn(certificate: x509.Certificate) -> str:
    """
    A certificate's subject as Java's C{X500Principal.getName()} writes it (RFC 2253):
    the most specific name first, C{,} between names, C{+} within one, e.g.
    C{CN=alice,OU=payments,O=Example}.  This is the C{x509} id of its holder.
    """
    names = []
    for rdn in reversed(certificate.subject.rdns):
        parts = []
        for attribute in rdn:
            keyword = _RFC2253_KEYWORDS.get(attribute.oid)
            if keyword is not None:
                value = attribute.value
                parts.append(f"{keyword}={_escape(value if isinstance(value, str) else '')}")
            else:
                parts.append(f"{attribute.oid.dotted_string}=#{_der_value(attribute).hex()}")
        names.append("+".join(parts))
    return ",".join(names)


def peer_dn(transport: Any) -> str | None:
    """
    The subject DN of the certificate a TLS peer presented and the trust store
    vouched for, or L{None} (plaintext, or no certificate).
    """
    get_certificate = getattr(transport, "getPeerCertificate", None)
    if get_certificate is None:
        return None
    try:
        certificate = get_certificate()
    except Exception:
        return None
    if certificate is None:
        return None
    return subject_dn(certificate.to_cryptography())


def handshake_refusal(transport: Any, reason: Failure | None) -> str | None:
    """
    Why a TLS connection ended before its handshake completed, for the log line of a
    refused client; L{None} when the connection did not fail in TLS.
    """
    if reason is None or not reason.check(SSL.Error):
        return None
    remembered = _refusals.pop(transport, None)
    if remembered is not None:
        return remembered
    text = _ssl_error_text(reason)
    if "wrong version number" in text or "http request" in text or "unknown protocol" in text:
        return f"not a TLS client (plaintext on a TLS port?): {text}"
    if "peer did not return a certificate" in text:
        return "no client certificate (the listener needs one: ssl client auth need)"
    return text


def _ssl_error_text(reason: Failure) -> str:
    """OpenSSL's error queue of an C{SSL.Error}, as one line."""
    detail = reason.value.args[0] if reason.value.args else reason.value
    texts = []
    if isinstance(detail, list):
        for entry in detail:
            texts.append(str(entry[-1]) if isinstance(entry, tuple) else str(entry))
    else:
        texts.append(str(detail))
    return "; ".join(t for t in texts if t) or "TLS error"


def server_refusal(reason: Failure | None) -> str | None:
    """
    Why a TLS client (a session server's data link) refused the server it dialled,
    for one log line: its certificate names another host, or does not chain to the
    trust store; L{None} when the connection did not fail so.
    """
    if reason is None:
        return None
    from service_identity import VerificationError

    if reason.check(VerificationError):
        names = []
        for error in getattr(reason.value, "errors", ()):
            expected = getattr(error, "mismatched_id", None)
            name = getattr(expected, "hostname", None) or getattr(expected, "ip", None)
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            if name is not None:
                names.append(str(name))
        wanted = " or ".join(sorted(set(names))) or "the host dialled"
        return (
            f"its certificate does not name {wanted} (hostname verification: the "
            f"host dialled, or --data-link-ssl-hostname)"
        )
    if reason.check(SSL.Error):
        text = _ssl_error_text(reason)
        if "certificate verify failed" in text:
            return f"its certificate does not chain to the data-link trust store ({text})"
        return text
    return None
