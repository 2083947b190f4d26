"""
The session's packet queue: requests on their way, and the dispatch of the replies.

L{PacketQueue} is the part of L{curatorish.connection.session.ZooKeeperConnection}
that turns an operation's encoded request into a L{Packet} (Java's
C{ClientCnxn.Packet}), gives it an xid and sends it (or holds it until the session is
connected), fails it when the request timeout passes, and matches every reply to the
oldest pending packet (replies come in order).  Replies with a reserved xid (pings,
watch notifications, auth and setWatches answers) are told apart here too, and
notifications go to their watchers.

It is separate from connecting (L{curatorish.connection.connecting}) because it only
needs a connected protocol to write on, whichever server that is; the operations
(L{curatorish.connection.operations}) submit through it with C{_submit}.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.client_state import ClientState
from curatorish.connection.paths import Chroot
from curatorish.connection.protocol import ClientProtocol
from curatorish.connection.watches import WatchedEvent, Watcher, WatchManager
from curatorish.logbridge import SESSION_NAMESPACE
from zkreg.proto.consts import EventType, KeeperState, Xid
from zkreg.proto.jute import DecodeError, Record
from zkreg.proto.records import WatcherEvent

_log = Logger(namespace=SESSION_NAMESPACE)

_MAX_XID = 2**31 - 1

#: The reply header (C{ReplyHeader}: xid, zxid, err), read in one call per reply.
_REPLY_HEADER = struct.Struct(">iqi")
_REPLY_HEADER_SIZE = _REPLY_HEADER.size

#: The reserved xids as plain ints: compared on every reply.
_PING_XID = int(Xid.PING)
_NOTIFICATION_XID = int(Xid.NOTIFICATION)
_AUTH_XID = int(Xid.AUTH)
_SET_WATCHES_XID = int(Xid.SET_WATCHES)


class Packet:
    """
    One request on its way: encoded body, how to read its reply, and its Deferred.
    """

    __slots__ = ("opcode", "body", "complete", "deferred", "path", "xid", "timer")

    def __init__(
        self,
        opcode: int,
        body: bytes,
        complete: Callable[[int, bytes, int], Any],
        path: str | None,
    ) -> None:
        self.opcode = opcode
        self.body = body
        self.complete = complete
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self.path = path
        self.xid = 0
        self.timer: IDelayedCall | None = None

    def fail(self, error: BaseException) -> None:
        self._stop_timer()
        if not self.deferred.called:
            self.deferred.errback(Failure(error))

    def succeed(self, result: Any) -> None:
        if self.timer is not None:
            self._stop_timer()
        deferred = self.deferred
        if not deferred.called:
            deferred.callback(result)

    def _stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class PacketQueue:
    """
    Sends the session's requests and dispatches the replies.
    """

    # The session's state (created by ZooKeeperConnection.__init__):
    auth_failure: str | None
    chroot: Chroot
    last_zxid: int
    reactor: Any
    renew_expired_session: bool
    request_timeout_ms: int | None
    state: ClientState
    watches: WatchManager
    _auth_waiters: deque[defer.Deferred[None]]
    _closing: bool
    _connected: bool
    _last_heard: float
    _last_sent: float
    _outgoing: deque[Packet]
    _pending: deque[Packet]
    _protocol: ClientProtocol | None
    _started: bool
    _xid: int

    # Provided by the session and its other parts:
    drop_connection: Callable[[], None]
    start: Callable[[], None]
    _auth_answered: Callable[[int], None]

    # -- sending ----------------------------------------------------------------------

    def _packet(
        self, opcode: int, body: bytes, complete: Callable[[int, bytes, int], Any], path: str | None
    ) -> Packet:
        return Packet(opcode, body, complete, path)

    def _next_xid(self) -> int:
        xid = self._xid
        self._xid = 1 if xid >= _MAX_XID else xid + 1
        return xid

    def _submit(
        self,
        opcode: int,
        record: Record | bytes | None,
        complete: Callable[[int, bytes, int], Any],
        path: str | None,
    ) -> defer.Deferred[Any]:
        if not self._connected or self._closing:
            # Connected (the common case) is none of these states.
            if self._closing or self.state is ClientState.CLOSED:
                return defer.fail(errors.ConnectionClosedError(path))
            if self.state is ClientState.AUTH_FAILED:
                return defer.fail(errors.AuthFailedError(path, self.auth_failure))
            if self.state is ClientState.EXPIRED and not self.renew_expired_session:
                return defer.fail(errors.SessionExpiredError(path))
        if record is None:
            body = b""
        elif isinstance(record, bytes):
            body = record
        else:
            body = record.serialize()
        packet = self._packet(opcode, body, complete, path)
        if self.request_timeout_ms is not None:
            packet.timer = self.reactor.callLater(
                self.request_timeout_ms / 1000.0, self._request_timed_out, packet
            )
        if self._connected and self._protocol is not None:
            self._send_packet(packet)
        else:
            self._outgoing.append(packet)
            if not self._started:
                self.start()
        return packet.deferred

    def _send_packet(self, packet: Packet) -> None:
        assert self._protocol is not None
        packet.xid = xid = self._next_xid()
        self._pending.append(packet)
        self._protocol.send_request(xid, packet.opcode, packet.body)
        self._last_sent = self.reactor.seconds()

    def _request_timed_out(self, packet: Packet) -> None:
        packet.timer = None
        if packet in self._outgoing:
            self._outgoing.remove(packet)
            packet.fail(errors.RequestTimeoutError(packet.path))
            return
        if packet in self._pending:
            _log.warn(
                "Request {opcode} on {path} not answered in {ms} ms: dropping the connection",
                opcode=packet.opcode,
                path=packet.path,
                ms=self.request_timeout_ms,
            )
            self._pending.remove(packet)
            packet.fail(errors.RequestTimeoutError(packet.path))
            self.drop_connection()

    def _fail_all(self, error: errors.ZooKeeperError) -> None:
        pending, self._pending = self._pending, deque()
        outgoing, self._outgoing = self._outgoing, deque()
        auth_waiters, self._auth_waiters = self._auth_waiters, deque()
        for packet in list(pending) + list(outgoing):
            packet.fail(type(error)(packet.path, error.message))
        for waiter in auth_waiters:
            if not waiter.called:
                waiter.errback(Failure(type(error)(None, error.message)))

    # -- replies ----------------------------------------------------------------------

    def _reply_received(self, frame: bytes) -> None:
        self._last_heard = self.reactor.seconds()
        if len(frame) < _REPLY_HEADER_SIZE:
            raise DecodeError(f"reply of {len(frame)} bytes, shorter than its header")
        xid, zxid, err = _REPLY_HEADER.unpack_from(frame)
        offset = _REPLY_HEADER_SIZE
        if xid < 0:
            if xid == _PING_XID:
                return
            if xid == _NOTIFICATION_XID:
                event, _ = WatcherEvent.deserialize(frame, offset)
                self._deliver_event(event)
                return
            if xid == _AUTH_XID:
                self._auth_answered(err)
                return
            if xid == _SET_WATCHES_XID:
                if err:
                    _log.warn("setWatches failed with error {err}", err=err)
                return
        if not self._pending:
            _log.error("Reply with xid {xid} but nothing is pending", xid=xid)
            self.drop_connection()
            return
        packet = self._pending.popleft()
        if packet.xid != xid:
            _log.error(
                "Xid out of order: got {xid}, expected {expected}", xid=xid, expected=packet.xid
            )
            packet.fail(errors.ConnectionLossError(packet.path))
            self.drop_connection()
            return
        if zxid > 0:
            self.last_zxid = zxid
        try:
            result = packet.complete(err, frame, offset)
        except errors.ZooKeeperError as error:
            packet.fail(error)
        except DecodeError:
            packet.fail(errors.MarshallingError(packet.path))
            raise
        except Exception as error:
            # A bug in a reply reader must not leave its caller waiting forever.
            _log.failure("Reading the reply to {opcode} failed", opcode=packet.opcode)
            packet.fail(error)
        else:
            packet.succeed(result)

    def _deliver_event(self, event: WatcherEvent) -> None:
        path = self.chroot.to_client(event.path) if event.path is not None else None
        try:
            event_type = EventType(event.type)
            state = KeeperState(event.state)
        except ValueError:
            _log.warn("Unknown watch event {event!r}", event=event)
            return
        if path is None or event_type == EventType.NONE:
            return
        watched = WatchedEvent(event_type, state, path)
        for watcher in self.watches.materialize(event_type, path):
            self._call_watcher(watcher, watched)

    def _call_watcher(self, watcher: Watcher, event: WatchedEvent) -> None:
        try:
            result = watcher(event)
        except Exception:
            _log.failure("Watcher {watcher!r} raised on {event!r}", watcher=watcher, event=event)
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(
                lambda failure: _log.failure(
                    "Watcher {watcher!r} failed", failure=failure, watcher=watcher
                )
            )
