"""
The requests a session server answers itself, without the data tier: reads from its
read view, pings, auth and SASL, watch registration and removal, whoAmI; and the
latency statistics of every answered request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from zkreg.proto.consts import Err, OpCode
from zkreg.proto.records import ClientInfo, ErrorResponse, Id, SetSASLResponse, WhoAmIResponse
from zkreg.session.replies import (
    PING_XID,
    REPLY_HEADER_SIZE,
    REPLY_PREFIX,
    encode_body,
    encode_reply,
)
from zkreg.session.requests import DATA_READ_OPS, UNDECODABLE
from zkreg.session.sasl import DigestMD5Server, SaslFailed
from zkreg.session.stats import fold_latencies, java_auth_order
from zkreg.session.watches import (
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    encode_event,
)

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory


def _user_of(auth_id: Id) -> str:
    """The user name ZooKeeper's providers report for an id (AuthUtil.getUser)."""
    if auth_id.scheme == "digest":
        return auth_id.id.split(":", 1)[0]
    if auth_id.scheme in ("ip", "sasl", "x509"):
        return auth_id.id
    return ""


class _MarshallingError(Exception):
    """A request ZooKeeper fails with MarshallingError (a Java runtime exception)."""


class LocalOperations:
    """
    The local-operation half of L{zkreg.session.protocol.ClientConnection} (a
    mixin: it answers through the connection's output and changes its auth).
    """

    factory: SessionServerFactory
    session_id: int
    peer: str
    peer_host: str
    auth: tuple
    last_latency_ms: int
    last_response_ms: int
    last_zxid: int
    min_latency_ms: int
    max_latency_ms: int
    total_latency_ms: int
    latency_count: int
    _log: Logger
    _received_at: float
    #: when each write answered since the last L{_settle_write_latencies} arrived
    _write_received: list[float]
    #: the zxid of the last of them
    _write_zxid: int
    _sasl: DigestMD5Server | None
    _sasl_aborted: bool
    _sasl_required: bool

    if TYPE_CHECKING:

        def send(self, frame: bytes) -> None: ...

        def send_pieces(self, pieces: tuple[bytes, ...]) -> None: ...

        def send_event(self, frame: bytes) -> None: ...

        def close(self, why: str | None = None) -> None: ...

    def _record_latency(self, received_at: float | None, zxid: int) -> None:
        """Count the latency of a request the session server answered itself."""
        if received_at == self._received_at:
            # Answered within the dataReceived that brought it: well under the
            # millisecond ZooKeeper counts in, and no clock call per request.
            now = received_at
            latency = 0
        else:
            now = self.factory.clock.seconds()
            latency = 0 if received_at is None else int((now - received_at) * 1000)
        if self._write_received:
            # Writes answered before this request are counted first (against the
            # clock: the shortcut above's time is when this request arrived).
            self._settle_write_latencies()
        self.last_latency_ms = latency
        self.last_response_ms = int(now * 1000)
        self.last_zxid = zxid
        if self.latency_count == 0 or latency < self.min_latency_ms:
            self.min_latency_ms = latency
        if latency > self.max_latency_ms:
            self.max_latency_ms = latency
        self.total_latency_ms += latency
        self.latency_count += 1
        self.factory.stats.record_latency(latency)

    def _record_write_latency(self, received_at: float, zxid: int) -> None:
        """
        Note an answered write: its latency is counted when its reply leaves, with
        the others of its batch (L{_settle_write_latencies}), rather than one clock
        call and a dozen counters per write.  Inlined in the answer path.
        """
        self._write_received.append(received_at)
        self._write_zxid = zxid

    def _settle_write_latencies(self, now: float | None = None) -> None:
        """
        Count the latencies of the writes answered since the last time: each from
        the time of the data that brought it to C{now} (the clock's by default),
        when its reply is sent.  Called as a batch of replies is written, before a
        later request's latency is counted, and before any report (cons, stat,
        mntr, crst, srst) reads the counters.
        """
        received = self._write_received
        if not received:
            return
        self._write_received = []
        if now is None:
            now = self.factory.clock.seconds()
        latencies = [int((now - received_at) * 1000) for received_at in received]
        self.last_latency_ms = latencies[-1]
        self.last_response_ms = int(now * 1000)
        self.last_zxid = self._write_zxid
        fold_latencies(self, latencies)
        self.factory.stats.record_write_latencies(latencies)

    def _answer_local(self, xid: int, opcode: int, record: Any, received_at: float | None) -> None:
        factory = self.factory
        zxid = factory.last_zxid()
        if record is UNDECODABLE:
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
            return
        try:
            self._answer_local_op(xid, opcode, record, zxid)
        except _MarshallingError:
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
        except Exception:
            # ZooKeeper's FinalRequestProcessor answers any unexpected failure with
            # MarshallingError and keeps the connection.
            self._log.failure(
                "failed to process opcode {opcode} of session 0x{session_id:x}",
                opcode=opcode,
                session_id=self.session_id,
            )
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
        self._record_latency(received_at, zxid)

    def _answer_local_op(self, xid: int, opcode: int, record: Any, zxid: int) -> None:
        factory = self.factory
        if opcode in DATA_READ_OPS:
            if opcode == OpCode.multiRead:
                if any(getattr(op, "path", "") is None for _, op in record):
                    raise _MarshallingError()
            elif opcode != OpCode.getEphemerals and record.path is None:
                # ZooKeeper looks the null path up in a ConcurrentHashMap: NPE.
                raise _MarshallingError()
            err, response = factory.perform_read(self, opcode, record)
            if response.__class__ is bytes and err == 0:
                # A getData's whole body (the common read): framed as it is, with
                # no copy by encode_body and no second concatenation.
                size = REPLY_HEADER_SIZE + len(response)
                self.send(REPLY_PREFIX.pack(size, xid, zxid, 0) + response)
                return
            if response.__class__ is tuple:
                # A large node's data, in pieces around the tree's own bytes.
                size = REPLY_HEADER_SIZE + sum(map(len, response))
                self.send_pieces((REPLY_PREFIX.pack(size, xid, zxid, err), *response))
                return
            body = encode_body(opcode, response) if err == 0 and response is not None else b""
            self.send(encode_reply(xid, zxid, err, body))
        elif opcode == OpCode.ping:
            self.send(encode_reply(PING_XID, zxid, 0))
        elif opcode == OpCode.auth:
            self._authenticate(xid, record)
            return
        elif opcode == OpCode.setWatches or opcode == OpCode.setWatches2:
            self._set_watches(record, opcode == OpCode.setWatches2)
            self.send(encode_reply(xid, zxid, 0))
        elif opcode == OpCode.addWatch:
            if record.mode not in (0, 1):
                raise _MarshallingError()  # WatcherMode.fromZooDef throws
            factory.watches.add_persistent_watch(record.path, self, record.mode == 1)
            self.send(encode_reply(xid, zxid, 0, ErrorResponse(0).serialize()))
        elif opcode == OpCode.checkWatches:
            if record.type not in (1, 2, 3) or record.path is None:
                raise _MarshallingError()  # WatcherType.fromInt throws; null path NPE
            try:
                found = factory.watches.contains(record.path, record.type, self)
            except ValueError as error:
                raise _MarshallingError() from error
            self.send(encode_reply(xid, zxid, 0 if found else Err.NOWATCHER))
        elif opcode == OpCode.removeWatches:
            if record.type not in (1, 2, 3) or record.path is None:
                raise _MarshallingError()
            removed = factory.watches.remove(record.path, record.type, self)
            self.send(encode_reply(xid, zxid, 0 if removed else Err.NOWATCHER))
        elif opcode == OpCode.whoAmI:
            infos = [ClientInfo(auth_id.scheme, _user_of(auth_id)) for auth_id in self.auth]
            self.send(encode_reply(xid, zxid, 0, WhoAmIResponse(infos).serialize()))
        elif opcode == OpCode.sasl:
            self._sasl_step(xid, record)
        else:
            self.send(encode_reply(xid, zxid, Err.UNIMPLEMENTED))

    def _authenticate(self, xid: int, packet: Any) -> None:
        scheme = packet.scheme
        added = self.factory.acl_checker.authenticate(
            scheme, bytes(packet.auth or b""), self.peer_host
        )
        if added is None:
            self.factory.stats.auth_failed += 1
            self._log.warn(
                "no authentication provider for scheme {scheme} from {peer}; closing",
                scheme=scheme,
                peer=self.peer,
            )
            self.send(encode_reply(xid, 0, Err.AUTHFAILED))
            self.close()
            return
        auth = list(self.auth)
        for auth_id in added:
            if auth_id not in auth:
                auth.append(auth_id)
        self.auth = java_auth_order(auth)
        self._log.info(
            "session 0x{session_id:x}: auth success for scheme {scheme} and address {peer}",
            session_id=self.session_id,
            scheme=scheme,
            peer=self.peer,
        )
        self.send(encode_reply(xid, 0, 0))

    def _refuse_unauthenticated(self, xid: int) -> None:
        """
        A request before SASL succeeded while SASL is required: answered
        SessionClosedRequireSaslAuth and the connection closed, as ZooKeeper does.
        """
        self._log.warn(
            "client {peer} (session 0x{session_id:x}) sent a request without SASL "
            "authentication, which this server requires (--sasl-required); closing",
            peer=self.peer,
            session_id=self.session_id,
        )
        self.send(encode_reply(xid, 0, Err.SESSIONCLOSEDREQUIRESASLAUTH))
        self.close()

    def _sasl_step(self, xid: int, record: Any) -> None:
        """
        One token of a SASL exchange (ZooKeeperServer.processSasl): answered with the
        server's token; a failed exchange is answered AuthFailed and the connection
        closed, as ZooKeeper does when zookeeper.allowSaslFailedClients is off.  With
        --sasl-allow-failed-clients (and SASL not required) it is answered OK with no
        token, as ZooKeeper does, and the client goes on unauthenticated.
        """
        users = self.factory.sasl_users
        if users is None:
            # A ZooKeeper without SASL configured answers OK with no token.
            self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
            return
        if self._sasl_aborted:
            # As ZooKeeper's aborted SaslServer: every further token fails, and the
            # kept client is answered OK without a token again.
            self.factory.stats.auth_failed += 1
            self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
            return
        if self._sasl is None:
            self._sasl = DigestMD5Server(users)
        try:
            token = self._sasl.step(bytes(record.token or b""))
        except (SaslFailed, UnicodeDecodeError) as error:
            self.factory.stats.auth_failed += 1
            if self.factory.sasl_allow_failed_clients and not self._sasl_required:
                self._log.warn(
                    "client {peer} (session 0x{session_id:x}) failed to SASL "
                    "authenticate: {error}; kept unauthenticated "
                    "(--sasl-allow-failed-clients)",
                    peer=self.peer,
                    session_id=self.session_id,
                    error=error,
                )
                # As ZooKeeper's SaslServer, an aborted exchange cannot be retried
                # on this connection.
                self._sasl_aborted = True
                self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
                return
            self._log.warn(
                "client {peer} (session 0x{session_id:x}) failed to SASL authenticate: "
                "{error}; closing",
                peer=self.peer,
                session_id=self.session_id,
                error=error,
            )
            err = Err.SESSIONCLOSEDREQUIRESASLAUTH if self._sasl_required else Err.AUTHFAILED
            self.send(encode_reply(xid, 0, err, SetSASLResponse(None).serialize()))
            self.close()
            return
        user = self._sasl.authorized_id
        if user is not None:
            self._sasl_required = False
            auth = list(self.auth)
            if Id("sasl", user) not in auth:
                auth.append(Id("sasl", user))
            self.auth = java_auth_order(auth)
            self._log.info(
                "session 0x{session_id:x}: SASL (DIGEST-MD5) authenticated {user} from {peer}",
                session_id=self.session_id,
                user=user,
                peer=self.peer,
            )
        self.send(encode_reply(xid, 0, 0, SetSASLResponse(token).serialize()))

    def _set_watches(self, record: Any, with_persistent: bool) -> None:
        """
        Re-register a reconnecting client's watches, firing what it missed
        (ZooKeeper's DataTree.setWatches).
        """
        view = self.factory.read_view
        watches = self.factory.watches
        relative_zxid = record.relativeZxid
        for path in record.dataWatches or ():
            node = view.get(path)
            if node is None:
                self.send_event(encode_event(NODE_DELETED, path))
            elif node.mzxid > relative_zxid:
                self.send_event(encode_event(NODE_DATA_CHANGED, path))
            else:
                watches.add_data_watch(path, self)
        for path in record.existWatches or ():
            if view.get(path) is not None:
                self.send_event(encode_event(NODE_CREATED, path))
            else:
                watches.add_data_watch(path, self)
        for path in record.childWatches or ():
            node = view.get(path)
            if node is None:
                self.send_event(encode_event(NODE_DELETED, path))
            elif node.pzxid > relative_zxid:
                self.send_event(encode_event(NODE_CHILDREN_CHANGED, path))
            else:
                watches.add_child_watch(path, self)
        if with_persistent:
            for path in record.persistentWatches or ():
                watches.add_persistent_watch(path, self, False)
            for path in record.persistentRecursiveWatches or ():
                watches.add_persistent_watch(path, self, True)
