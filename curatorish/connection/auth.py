"""
Authenticating the session: auth packets (C{addauth}) and the SASL exchange.

L{SessionAuth}, a part of L{curatorish.connection.session.ZooKeeperConnection},
remembers the auth infos given to C{add_auth} and C{add_auth_info}, which every new
connection replays (ZooKeeper keeps authentication per connection), answers each
C{add_auth} caller when the server's reply to its auth packet comes, runs the SASL
exchange (L{curatorish.connection.sasl}) on every new connection before anything else
is sent on it, and stops the client for good (C{AUTH_FAILED}) when the server refuses
the credentials.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.client_state import ClientState
from curatorish.connection.packets import Packet
from curatorish.connection.protocol import ClientProtocol
from curatorish.connection.sasl import SASLConfig, SaslExchange, SaslRefused
from curatorish.logbridge import SESSION_NAMESPACE
from zkreg.proto.consts import Err, OpCode, Xid
from zkreg.proto.jute import Record
from zkreg.proto.records import AuthPacket, GetSASLRequest, RequestHeader, SetSASLResponse

_log = Logger(namespace=SESSION_NAMESPACE)


def credential_bytes(credential: str | bytes) -> bytes:
    """
    @return: an auth credential as the bytes sent: a C{str} as UTF-8, as kazoo sends
        C{add_auth("digest", "user:pw")}.
    @raise TypeError: for anything else.
    """
    if isinstance(credential, str):
        return credential.encode("utf-8")
    if isinstance(credential, bytes):
        return credential
    raise TypeError(f"an auth credential is str or bytes, not {type(credential).__name__}")


class SessionAuth:
    """
    Authenticates the session's connections, for the session.
    """

    # The session's state (created by ZooKeeperConnection.__init__):
    auth_failure: str | None
    sasl: SASLConfig | None
    state: ClientState
    _auth_callers: dict[tuple[str, bytes], list[defer.Deferred[None]]]
    _auth_infos: list[tuple[str, bytes]]
    _auth_waiters: deque[defer.Deferred[None]]
    _closing: bool
    _protocol: ClientProtocol | None
    _reader: Callable[[str | None, type[Record] | None], Callable[[int, bytes, int], Any]]
    _started: bool

    # Provided by the session and its other parts:
    start: Callable[[], None]
    _connection_ready: Callable[[ClientProtocol, bool], None]
    _fail_all: Callable[[errors.ZooKeeperError], None]
    _packet: Callable[[int, bytes, Callable[[int, bytes, int], Any], str | None], Packet]
    _send_packet: Callable[[Packet], None]
    _set_state: Callable[[ClientState], None]
    _stop_timers: Callable[[], None]

    # -- auth -------------------------------------------------------------------------

    def add_auth(self, scheme: str, credential: str | bytes) -> defer.Deferred[None]:
        """
        Authenticate this session (e.g. C{("digest", "user:password")}); it is
        replayed on every reconnect.

        @param credential: bytes, or a C{str} sent as UTF-8 (as kazoo does).
        @return: Deferred firing when the server accepted it (with
            L{errors.AuthFailedError} when it did not, which ends the client).
        """
        credential = credential_bytes(credential)
        if (scheme, credential) not in self._auth_infos:
            self._auth_infos.append((scheme, credential))
        if not (self.state.is_connected and self._protocol is not None):
            # Sent with the others when the next connection is primed.
            if not self._started:
                self.start()
            caller: defer.Deferred[None] = defer.Deferred()
            self._auth_callers.setdefault((scheme, credential), []).append(caller)
            return caller
        header = RequestHeader(Xid.AUTH, OpCode.auth).serialize()
        self._protocol.send_frame(header + AuthPacket(0, scheme, credential).serialize())
        waiter: defer.Deferred[None] = defer.Deferred()
        self._auth_waiters.append(waiter)
        return waiter

    def _replayed_auth_waiter(self, info: tuple[str, bytes]) -> defer.Deferred[None]:
        """
        @return: the Deferred for the reply to a replayed auth packet, passing the
            answer on to the L{add_auth} callers who were waiting for a connection.
        """
        callers = self._auth_callers.pop(info, [])
        waiter: defer.Deferred[None] = defer.Deferred()

        def answered(result: Any) -> None:
            for caller in callers:
                if isinstance(result, Failure):
                    caller.errback(result)
                else:
                    caller.callback(None)

        waiter.addBoth(answered)
        return waiter

    def add_auth_info(self, scheme: str, credential: str | bytes) -> None:
        """
        Remember an auth info to send when the next connection is primed (before
        L{start}: the credentials of the very first handshake).

        @param credential: bytes, or a C{str} sent as UTF-8.
        """
        credential = credential_bytes(credential)
        if (scheme, credential) not in self._auth_infos:
            self._auth_infos.append((scheme, credential))

    @property
    def auth_infos(self) -> list[tuple[str, bytes]]:
        return list(self._auth_infos)

    def _authenticate(self, protocol: ClientProtocol, read_only: bool) -> None:
        """
        Run the SASL exchange on this new connection before anything else is sent on
        it (Java holds its outgoing queue the same way); requests made meanwhile wait
        in the outgoing queue.
        """
        assert self.sasl is not None
        config = self.sasl
        exchange = SaslExchange(config)

        def send(token: bytes) -> defer.Deferred[bytes | None]:
            if self._protocol is not protocol:
                return defer.fail(errors.ConnectionLossError())
            packet = self._packet(
                OpCode.sasl,
                GetSASLRequest(token).serialize(),
                self._reader(None, SetSASLResponse),
                None,
            )
            self._send_packet(packet)
            return packet.deferred.addCallback(lambda reply: reply.token)

        def authenticated(_: None) -> None:
            if self._protocol is not protocol or self._closing or self.state.is_terminal:
                return
            _log.info(
                "SASL {mechanism} authentication as {user} succeeded on {host}:{port}",
                mechanism=config.mechanism,
                user=config.username,
                host=protocol.peer[0],
                port=protocol.peer[1],
            )
            self._connection_ready(protocol, read_only)

        def failed(failure: Failure) -> None:
            if self._protocol is not protocol or self._closing or self.state.is_terminal:
                return  # the connection went first: the next one authenticates again
            if failure.check(errors.ConnectionLossError):
                return
            reason = (
                f"SASL {config.mechanism} authentication as {config.username!r} refused "
                f"by {protocol.peer[0]}:{protocol.peer[1]}: {failure.getErrorMessage()}"
            )
            if not failure.check(SaslRefused):
                _log.failure("SASL exchange failed", failure=failure)
            _log.warn("{reason}; the client stops (AUTH_FAILED)", reason=reason)
            self._auth_failed(reason)

        defer.ensureDeferred(exchange.run(send)).addCallbacks(authenticated, failed)

    def _auth_answered(self, err: int) -> None:
        waiter = self._auth_waiters.popleft() if self._auth_waiters else None
        if err == 0:
            if waiter is not None and not waiter.called:
                waiter.callback(None)
            return
        _log.error("Authentication failed (error {err})", err=err)
        if waiter is not None and not waiter.called:
            waiter.errback(Failure(errors.error_for_code(err)))
        if err == Err.AUTHFAILED:
            self._auth_failed("the server refused an auth packet")

    def _auth_failed(self, reason: str) -> None:
        """
        The server refused our credentials: fail everything and stop for good.
        """
        self.auth_failure = reason
        self._stop_timers()
        self._fail_all(errors.AuthFailedError(None, reason))
        self._set_state(ClientState.AUTH_FAILED)
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort()
