"""
SASL authentication of a curatorish connection, as ZooKeeper's Java client does it
(C{ZooKeeperSaslClient}): on every new connection, once the server has established
(or resumed) the session and before the client reports itself connected or sends
anything else on it, the client runs the SASL exchange in C{sasl} requests (opcode
102, with ordinary xids as Java's C{ClientCnxn.sendPacket} gives them), each
carrying one token of the mechanism (C{GetSASLRequest}) and answered with the
server's next token (C{SetSASLResponse}).

Only DIGEST-MD5 is offered (what ZooKeeper's C{DigestLoginModule} does; GSSAPI,
Kerberos, is not), through the C{pure-sasl} package, an optional dependency
(C{pip install 'zkreg[sasl]'}), imported only when SASL is asked for.  ZooKeeper
names the DIGEST-MD5 server C{zookeeper/zk-sasl-md5} whatever its host name
(C{SecurityUtils}), so that is the default here too.

The exchange fails (the connection then ends in C{AUTH_FAILED}, for good, as Java's
C{SaslState.FAILED} does) when:
  - the server answers a token with an error (ZooKeeper 3.8 answers a wrong password
    C{AuthFailed} and closes the connection);
  - the server answers OK with no token while the mechanism is not complete (what
    ZooKeeper answers with C{zookeeper.allowSaslFailedClients}, or when it has no
    SASL configured: Java's client calls that a failure too);
  - the server's own proof (C{rspauth}) is wrong: it does not know our password.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DIGEST_MD5",
    "SASLConfig",
    "SaslExchange",
    "SaslRefused",
    "sasl_config",
]

DIGEST_MD5 = "DIGEST-MD5"

#: The server name ZooKeeper gives DIGEST-MD5 (SecurityUtils), and its service.
ZOOKEEPER_DIGEST_SERVER_NAME = "zk-sasl-md5"
ZOOKEEPER_SERVICE = "zookeeper"

#: More rounds than any mechanism needs: a server that keeps answering is broken.
MAX_ROUNDS = 10


class SaslRefused(Exception):
    """
    The SASL exchange failed: the message says why, in words for a log line.
    """


@dataclass(frozen=True)
class SASLConfig:
    """
    The SASL credentials of a client (C{sasl=} of L{curatorish.CuratorFramework}, of
    the blocking face and of L{curatorish.connection.ZooKeeperConnection}): what a
    Java client's JAAS C{Client} section with C{DigestLoginModule} gives.

    @ivar username: the user, as in the server's C{user_<name>} JAAS option; an
        authenticated client holds the ACL id C{sasl:<username>}.
    @ivar password: the user's password (not shown by C{repr}).
    @ivar mechanism: C{"DIGEST-MD5"}, the only one offered.
    @ivar service: the SASL service name (ZooKeeper's C{zookeeper.sasl.client.username}).
    @ivar server_name: the server name of the digest-uri; ZooKeeper fixes it to
        C{zk-sasl-md5} for DIGEST-MD5.
    """

    username: str
    password: str = field(repr=False)
    mechanism: str = DIGEST_MD5
    service: str = ZOOKEEPER_SERVICE
    server_name: str = ZOOKEEPER_DIGEST_SERVER_NAME

    def __post_init__(self) -> None:
        if self.mechanism.upper() != DIGEST_MD5:
            raise ValueError(
                f"SASL mechanism {self.mechanism!r} is not supported: only DIGEST-MD5 "
                "(GSSAPI/Kerberos is not)"
            )
        for name in ("username", "password", "service", "server_name"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"SASL {name} must be a str, not {type(getattr(self, name)).__name__}"
                )
        if not self.username:
            raise ValueError("SASL username must not be empty")


#: kazoo's C{sasl_options} keys, and the L{SASLConfig} field each one fills.
_KAZOO_KEYS = {
    "mechanism": "mechanism",
    "username": "username",
    "password": "password",
    "service": "service",
    "host": "server_name",
    "server_name": "server_name",
}


def sasl_config(value: SASLConfig | Mapping[str, Any] | None) -> SASLConfig | None:
    """
    The L{SASLConfig} of a C{sasl=} argument: a L{SASLConfig}, or a mapping with
    kazoo's C{sasl_options} keys (C{mechanism}, C{username}, C{password}, and
    C{service}), or L{None} (no SASL).

    @raise TypeError: for anything else, or a mapping with other keys.
    @raise ImportError: when C{pure-sasl} is not installed.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(_KAZOO_KEYS))
        if unknown:
            raise TypeError(
                f"unknown SASL option(s) {', '.join(unknown)}: expected "
                "mechanism, username, password, service"
            )
        value = SASLConfig(**{_KAZOO_KEYS[key]: option for key, option in value.items()})
    if not isinstance(value, SASLConfig):
        raise TypeError(
            f"sasl must be a SASLConfig or a mapping of SASL options, not {type(value).__name__}"
        )
    _sasl_client_class()
    return value


def _sasl_client_class() -> Any:
    """
    @return: pure-sasl's C{SASLClient}, imported now rather than with curatorish.
    @raise ImportError: with what to install, when it is missing.
    """
    try:
        from puresasl.client import SASLClient
    except ImportError as error:
        raise ImportError(
            "SASL authentication needs the pure-sasl package: "
            "pip install 'zkreg[sasl]' (or pip install pure-sasl)"
        ) from error
    return SASLClient


class SaslExchange:
    """
    One connection's SASL exchange, from the client's side (C{ZooKeeperSaslClient}).

    @ivar config: the credentials.
    """

    def __init__(self, config: SASLConfig) -> None:
        self.config = config
        from puresasl import QOP

        self._mechanism = _sasl_client_class()(
            config.server_name,
            config.service,
            mechanism=DIGEST_MD5,
            username=config.username,
            password=config.password,
            # Authentication only: the connection has no integrity or privacy layer.
            qops=(QOP.AUTH,),
        )

    @property
    def complete(self) -> bool:
        return bool(self._mechanism.complete)

    def _process(self, challenge: bytes | None) -> bytes | None:
        try:
            response = self._mechanism.process(challenge)
        except Exception as error:
            # pure-sasl's SASLProtocolException (a wrong rspauth: the server does not
            # know our password), SASLError, or a malformed challenge.
            raise SaslRefused(f"the server's SASL message is not acceptable: {error}") from None
        return bytes(response) if response is not None else None

    async def run(self, send: Callable[[bytes], Awaitable[bytes | None]]) -> None:
        """
        Run the exchange to its end.

        @param send: sends one token in a C{sasl} request and returns the server's
            token (L{None} for none); raises the L{curatorish.errors} class of an
            error answer, or a connection loss.
        @raise SaslRefused: when the exchange fails (wrapping an error answer).
        """
        from curatorish import errors

        # DIGEST-MD5 has no initial response: Java then sends an empty token.
        token = self._process(None) or b""
        for _ in range(MAX_ROUNDS):
            try:
                challenge = await send(token)
            except (errors.AuthFailedError, errors.SessionClosedRequireSaslError) as error:
                raise SaslRefused(
                    f"the server answered {error.code_name} (wrong user name or password?)"
                ) from None
            except errors.ConnectionLossError:
                raise
            except errors.ZooKeeperError as error:
                raise SaslRefused(f"the server answered {error.code_name}") from None
            if not challenge:
                if self.complete:
                    return
                raise SaslRefused(
                    "the server answered without a SASL token before the exchange was "
                    "complete (it refused the credentials but keeps unauthenticated "
                    "clients, or has no SASL configured)"
                )
            response = self._process(challenge)
            if self.complete:
                if response:
                    await send(response)
                return
            token = response or b""
        raise SaslRefused(f"no end to the SASL exchange after {MAX_ROUNDS} rounds")
