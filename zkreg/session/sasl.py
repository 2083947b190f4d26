"""
SASL DIGEST-MD5 authentication as ZooKeeper 3.8 offers it: the C{sasl} request
(opcode 102) carries the mechanism's tokens, and a client that completes the exchange
gets the C{sasl} id of its user name (matched by C{sasl:<user>} ACL entries).

Credentials come from a JAAS-style file, as ZooKeeper's C{DigestLoginModule} reads
them: the C{Server} section's C{user_<name>="<password>"} options.

The server side of RFC 2831 (with C{qop=auth}: authentication only, no integrity or
privacy layer), with ZooKeeper's fixed names: realm and host C{zk-sasl-md5}, service
C{zookeeper}, so the digest-uri a client sends is C{zookeeper/zk-sasl-md5}.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets

#: ZooKeeper's fixed DIGEST-MD5 realm and server name (SecurityUtils).
REALM = "zk-sasl-md5"
DIGEST_URI = "zookeeper/zk-sasl-md5"
#: The JAAS section a ZooKeeper server reads (zookeeper.sasl.serverconfig).
SERVER_SECTION = "Server"


class JaasConfigError(ValueError):
    """The JAAS file cannot be read or has no usable Server section."""


class SaslFailed(Exception):
    """The client's SASL exchange is invalid: wrong password, user or token."""


_SECTION = re.compile(r"([A-Za-z0-9_.-]+)\s*\{(.*?)\}\s*;", re.S)
_OPTION = re.compile(r'([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))')


def parse_jaas_users(text: str, source: str = "<jaas>") -> dict[str, str]:
    """
    The users and passwords of a JAAS configuration's C{Server} section.

    @raise JaasConfigError: when there is no C{Server} section or it names no user.
    """
    for name, body in _SECTION.findall(text):
        if name != SERVER_SECTION:
            continue
        users = {}
        for key, quoted, bare in _OPTION.findall(body):
            if key.startswith("user_") and len(key) > len("user_"):
                value = quoted if quoted or not bare else bare
                users[key[len("user_") :]] = re.sub(r"\\(.)", r"\1", value)
        if not users:
            raise JaasConfigError(
                f'{source}: the {SERVER_SECTION} section defines no user_<name>="<password>"'
            )
        return users
    raise JaasConfigError(
        f"{source}: no {SERVER_SECTION} {{ ... }}; section (ZooKeeper's DigestLoginModule "
        "format: Server { org.apache.zookeeper.server.auth.DigestLoginModule required "
        'user_bob="secret"; };)'
    )


def load_jaas_users(path: str) -> dict[str, str]:
    """
    Read L{parse_jaas_users} from a file.

    @raise JaasConfigError: when the file cannot be read or is not usable.
    """
    try:
        with open(path, encoding="utf-8") as jaas_file:
            text = jaas_file.read()
    except OSError as error:
        raise JaasConfigError(
            f"cannot read SASL config {path}: {os.strerror(error.errno or 0)}"
        ) from error
    return parse_jaas_users(text, path)


def parse_digest_fields(token: bytes) -> dict[str, str]:
    """
    The C{name=value} fields of a DIGEST-MD5 message (values quoted or not, with
    backslash escapes inside quotes).

    @raise SaslFailed: for a malformed message.
    """
    fields: dict[str, str] = {}
    text = token.decode("utf-8", "strict") if token else ""
    position = 0
    length = len(text)
    while position < length:
        while position < length and text[position] in " \t,":
            position += 1
        if position >= length:
            break
        equals = text.find("=", position)
        if equals < 0:
            raise SaslFailed(f"malformed DIGEST-MD5 field near {text[position:][:20]!r}")
        name = text[position:equals].strip().lower()
        position = equals + 1
        if position < length and text[position] == '"':
            position += 1
            value = []
            while position < length and text[position] != '"':
                if text[position] == "\\" and position + 1 < length:
                    position += 1
                value.append(text[position])
                position += 1
            if position >= length:
                raise SaslFailed("unterminated quoted DIGEST-MD5 value")
            position += 1
            fields[name] = "".join(value)
        else:
            comma = text.find(",", position)
            end = length if comma < 0 else comma
            fields[name] = text[position:end].strip()
            position = end
    return fields


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - DIGEST-MD5 is MD5 by definition


class DigestMD5Server:
    """
    One connection's DIGEST-MD5 exchange: L{step} takes each client token and returns
    the server's; C{authorized_id} is set once the client proved its password.

    @ivar authorized_id: the authenticated user (its authzid if it sent one that is
        its own name), or None until the exchange completes.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users
        self._nonce: str | None = None
        self.authorized_id: str | None = None

    def step(self, token: bytes | None) -> bytes:
        """
        @return: the server's next token.
        @raise SaslFailed: the exchange failed (the connection should be closed).
        """
        if self.authorized_id is not None:
            raise SaslFailed("SASL exchange already complete")
        if self._nonce is None:
            self._nonce = secrets.token_urlsafe(30)
            return (
                f'realm="{REALM}",nonce="{self._nonce}",qop="auth",charset=utf-8,algorithm=md5-sess'
            ).encode("ascii")
        return self._check_response(parse_digest_fields(token or b""))

    def _check_response(self, fields: dict[str, str]) -> bytes:
        username = fields.get("username")
        if username is None or username not in self._users:
            raise SaslFailed(f"unknown user {username!r}")
        if fields.get("nonce") != self._nonce:
            raise SaslFailed("the response's nonce is not the one issued")
        if fields.get("qop", "auth") != "auth":
            raise SaslFailed(f"unsupported qop {fields.get('qop')!r} (only auth)")
        digest_uri = fields.get("digest-uri", "")
        if digest_uri != DIGEST_URI:
            raise SaslFailed(f"digest-uri {digest_uri!r} is not {DIGEST_URI!r}")
        realm = fields.get("realm", REALM)
        cnonce = fields.get("cnonce")
        nc = fields.get("nc")
        if not cnonce or nc is None:
            raise SaslFailed("the response lacks cnonce or nc")
        authzid = fields.get("authzid")
        password = self._users[username]
        secret = hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()  # noqa: S324
        a1 = secret + f":{self._nonce}:{cnonce}".encode()
        if authzid:
            a1 += f":{authzid}".encode()
        ha1 = _md5_hex(a1)

        def response_for(a2: str) -> str:
            return _md5_hex(
                f"{ha1}:{self._nonce}:{nc}:{cnonce}:auth:{_md5_hex(a2.encode())}".encode()
            )

        expected = response_for(f"AUTHENTICATE:{digest_uri}")
        if not secrets.compare_digest(expected, fields.get("response", "")):
            raise SaslFailed(f"wrong password for user {username!r}")
        if authzid and authzid != username:
            raise SaslFailed(f"user {username!r} may not act as {authzid!r}")
        self.authorized_id = username
        return f"rspauth={response_for(':' + digest_uri)}".encode("ascii")
