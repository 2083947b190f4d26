"""
The data link over TCP: a session server in another process (or on another machine)
talks to the data server.

The client side, L{TCPDataLink}, provides L{IDataLink}.  On connecting it receives the
whole tree, then every commit; it keeps a replica (its L{read_view}) by applying each
commit before passing it to its own listeners.  The data server sends a write's commit
before its result on the same connection, so by the time a session server sees a
reply, its read view already holds the write (a session reads its own writes).

The server side, L{DataLinkServerFactory}, serves one L{DataServer} to any number of
such clients.  Frames and messages: L{zkreg.link.wire}.

Not yet: reconnecting to another data server and resubmitting (a link that loses its
connection fails what is pending with C{ConnectionLost} and stays down).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.codes import EPHEMERAL_CONTAINER, EPHEMERAL_NORMAL, EPHEMERAL_TTL, ephemeral_type
from zkreg.data.messages import Commit, Outcome, Request, SessionGrant
from zkreg.data.node import Node
from zkreg.data.replica import ReplicaFeeder
from zkreg.data.server import DataServer, DataServerFailed
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import TXN_CLASSES
from zkreg.interfaces import IDataLink
from zkreg.link import wire
from zkreg.proto.jute import DecodeError

#: Largest frame accepted: a node's data (1 MB by default) plus its path and ACL, or a
#: multi of many such ops.
MAX_FRAME = 64 * 1024 * 1024

_CONNECTION_DONE = Failure(ConnectionLost("data link closed"))


class _Framed(Int32StringReceiver):
    MAX_LENGTH = MAX_FRAME
    log = Logger()

    def send(self, message: Any) -> None:
        self.sendString(wire.encode_message(message))

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def stringReceived(self, frame: bytes) -> None:
        try:
            message = wire.decode_message(frame)
        except DecodeError as error:
            self.log.warn("undecodable data-link frame: {error}", error=error)
            self._drop()
            return
        self.messageReceived(message)

    def messageReceived(self, message: Any) -> None:
        raise NotImplementedError

    def lengthLimitExceeded(self, length: int) -> None:
        self.log.warn("data-link frame of {length} bytes is too long", length=length)
        self._drop()


# -- server side -----------------------------------------------------------------------


class _ServerProtocol(_Framed):
    """One session server's connection to the data server."""

    def __init__(self, server: DataServer) -> None:
        self.server = server
        self.subscribed = False

    def connectionMade(self) -> None:
        self.factory.links.add(self)

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        self.factory.links.discard(self)
        if self.subscribed:
            self.server.unsubscribe(self)
            self.subscribed = False

    def committed(self, commit: Commit) -> None:
        """ICommitListener: forward every commit."""
        self.send(
            wire.CommitMsg(
                commit.zxid,
                commit.session_id,
                commit.cxid,
                commit.txn_type,
                commit.time,
                commit.txn.serialize() if commit.txn is not None else None,
                [wire.Event(event_type, path) for event_type, path in commit.events],
                commit.closed_session,
            )
        )

    def messageReceived(self, message: Any) -> None:
        kind = message.__class__
        if kind is wire.Submit:
            request = Request(
                message.sessionId,
                message.cxid,
                message.opcode,
                wire.decode_request_body(message.opcode, message.body),
                tuple(message.auth or ()),
            )
            self._answer(message.tag, request.opcode, self.server.submit(request))
        elif kind is wire.Touch:
            self.server.touch_sessions(message.sessionIds or ())
        elif kind is wire.CreateSession:
            self._grant(message.tag, self.server.create_session(message.timeOut))
        elif kind is wire.Revalidate:
            granted = self.server.revalidate_session(
                message.sessionId, message.passwd or b"", message.timeOut
            )
            self._grant(message.tag, granted)
        elif kind is wire.CloseSession:
            self._answer(message.tag, -11, self.server.close_session(message.sessionId))
        elif kind is wire.Hello:
            self._send_snapshot()
        else:
            self.log.warn("unexpected data-link message {kind}", kind=kind.__name__)
            self._drop()

    def _send_snapshot(self) -> None:
        # Synchronous, so no commit can slip between the copy and the subscription.
        tree = self.server.tree
        for path, node in tree.iter_nodes():
            self.send(
                wire.SnapNode(
                    path,
                    node.data,
                    list(node.acl),
                    node.czxid,
                    node.mzxid,
                    node.ctime,
                    node.mtime,
                    node.version,
                    node.cversion,
                    node.aversion,
                    node.ephemeral_owner,
                    node.pzxid,
                )
            )
        sessions = [wire.SessionEntry(sid, timeout) for sid, timeout in tree.sessions.items()]
        self.send(wire.SnapEnd(tree.last_zxid, tree.extended_types, sessions))
        if not self.subscribed:
            self.server.subscribe(self)
            self.subscribed = True

    def _answer(self, tag: int, opcode: int, outcome: Deferred) -> None:
        def answered(result: Outcome) -> None:
            body = wire.encode_response_body(opcode, result.response) if result.err == 0 else None
            self.send(wire.Result(tag, False, result.zxid, result.err, body))

        def failed(reason: Failure) -> None:
            self.send(wire.Result(tag, True, 0, 0, reason.getErrorMessage().encode()))

        outcome.addCallbacks(answered, failed)

    def _grant(self, tag: int, granted: Deferred) -> None:
        def answered(grant: SessionGrant | None) -> None:
            if grant is None:
                self.send(wire.Grant(tag, False, 0, None, 0))
            else:
                self.send(wire.Grant(tag, True, grant.session_id, grant.password, grant.timeout_ms))

        granted.addCallbacks(answered, lambda reason: self.send(wire.Grant(tag, False, 0, None, 0)))


class DataLinkServerFactory(Factory):
    """
    Serves a L{DataServer} to TCP data-link clients; listen on it with an endpoint.

    @ivar server: the data server.
    @ivar links: the session servers connected now (for metrics).
    """

    def __init__(self, server: DataServer) -> None:
        self.server = server
        self.links: set[Any] = set()

    def buildProtocol(self, addr: Any) -> _ServerProtocol:
        protocol = _ServerProtocol(self.server)
        protocol.factory = self
        return protocol


# -- client side -----------------------------------------------------------------------


@implementer(IDataLink)
class TCPDataLink(_Framed):
    """
    L{IDataLink} over one TCP connection to a data server.

    @ivar ready: a Deferred firing with this link once the tree has arrived.
    @ivar tree: the replica read view (valid once L{ready} fired).
    """

    #: Touches are gathered for this long and sent as one frame: a session server
    #: touches a session on every client packet, and the data server only needs to
    #: hear of each live session well within a tick.
    TOUCH_DELAY_S = 0.05

    def __init__(self, clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.clock = clock
        self._touched: dict[int, None] = {}
        self._touch_call: Any = None
        self.ready: Deferred = Deferred()
        self.tree: DataTree | None = None
        self._loading: DataTree | None = None
        self._feeder: ReplicaFeeder | None = None
        self._listeners: list[Any] = []
        self._pending: dict[int, tuple[str, Deferred, int]] = {}
        self._next_tag = 0
        self._lost: Failure | None = None

    # -- connection --------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._loading = DataTree()
        self._loading.nodes = {}
        self.send(wire.Hello(wire.PROTOCOL_VERSION))

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        self._lost = reason
        if self._touch_call is not None and self._touch_call.active():
            self._touch_call.cancel()
        self._touch_call = None
        pending, self._pending = self._pending, {}
        for _kind, waiting, _opcode in pending.values():
            waiting.errback(reason)
        if not self.ready.called:
            self.ready.errback(reason)

    def messageReceived(self, message: Any) -> None:
        kind = message.__class__
        if kind is wire.CommitMsg:
            self._commit(message)
        elif kind is wire.Result:
            self._result(message)
        elif kind is wire.Grant:
            self._granted(message)
        elif kind is wire.SnapNode:
            self._load_node(message)
        elif kind is wire.SnapEnd:
            self._loaded(message)
        else:
            self.log.warn("unexpected data-link message {kind}", kind=kind.__name__)
            self._drop()

    # -- the replica -------------------------------------------------------------------

    def _load_node(self, message: Any) -> None:
        tree = self._loading
        assert tree is not None
        node = Node(
            message.data, tree.intern_acl(message.acl or ()), message.czxid, message.ctime, 0
        )
        node.mzxid = message.mzxid
        node.mtime = message.mtime
        node.version = message.version
        node.cversion = message.cversion
        node.aversion = message.aversion
        node.ephemeral_owner = message.ephemeralOwner
        node.pzxid = message.pzxid
        path = message.path
        tree.nodes[path] = node
        if path != "/":
            cut = path.rfind("/")
            parent = tree.nodes[path[:cut] if cut > 0 else "/"]
            if parent.children is None:
                parent.children = {}
            parent.children[path[cut + 1 :]] = None

    def _loaded(self, message: Any) -> None:
        tree = self._loading
        assert tree is not None
        self._loading = None
        tree.extended_types = message.extendedTypes
        for path, node in tree.nodes.items():
            owner = node.ephemeral_owner
            if not owner:
                continue
            kind = ephemeral_type(owner, tree.extended_types)
            if kind == EPHEMERAL_NORMAL:
                tree.ephemerals.setdefault(owner, {})[path] = None
            elif kind == EPHEMERAL_CONTAINER:
                tree.containers[path] = None
            elif kind == EPHEMERAL_TTL:
                tree.ttls[path] = None
        tree.sessions = {entry.sessionId: entry.timeOut for entry in message.sessions or ()}
        tree.last_zxid = message.lastZxid
        tree.quotas.rebuild()
        self.tree = tree
        self._feeder = ReplicaFeeder(tree)
        self.ready.callback(self)

    def _commit(self, message: Any) -> None:
        txn = None
        if message.txn is not None:
            txn = TXN_CLASSES[message.txnType].from_bytes(message.txn)
        commit = Commit(
            message.zxid,
            message.sessionId,
            message.cxid,
            message.txnType,
            txn,
            tuple((event.type, event.path) for event in message.events or ()),
            message.closedSession,
            message.time,
        )
        if self._feeder is not None:
            self._feeder.committed(commit)
        for listener in tuple(self._listeners):
            try:
                listener.committed(commit)
            except Exception:
                self.log.failure("commit listener {listener!r} failed", listener=listener)

    # -- requests ----------------------------------------------------------------------

    def _call(self, kind: str, opcode: int, build: Any) -> Deferred:
        if self._lost is not None:
            return fail(self._lost)
        self._next_tag = (self._next_tag + 1) & 0x7FFFFFFF
        tag = self._next_tag
        waiting: Deferred = Deferred()
        self._pending[tag] = (kind, waiting, opcode)
        self.send(build(tag))
        return waiting

    def _result(self, message: Any) -> None:
        entry = self._pending.pop(message.tag, None)
        if entry is None:
            return
        _kind, waiting, opcode = entry
        if message.failed:
            waiting.errback(DataServerFailed((message.body or b"").decode("utf-8", "replace")))
            return
        response = wire.decode_response_body(opcode, message.body) if message.err == 0 else None
        waiting.callback(Outcome(message.zxid, message.err, response))

    def _granted(self, message: Any) -> None:
        entry = self._pending.pop(message.tag, None)
        if entry is None:
            return
        waiting = entry[1]
        if not message.present:
            waiting.callback(None)
        else:
            waiting.callback(
                SessionGrant(message.sessionId, message.passwd or b"", message.timeOut)
            )

    # -- IDataLink ---------------------------------------------------------------------

    def create_session(self, timeout_ms: int) -> Deferred:
        """See L{IDataLink.create_session}."""
        return self._call("grant", 0, lambda tag: wire.CreateSession(tag, timeout_ms))

    def revalidate_session(self, session_id: int, password: bytes, timeout_ms: int) -> Deferred:
        """See L{IDataLink.revalidate_session}."""
        return self._call(
            "grant", 0, lambda tag: wire.Revalidate(tag, session_id, password, timeout_ms)
        )

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """See L{IDataLink.touch_sessions}; sent within L{TOUCH_DELAY_S}, batched."""
        if self._lost is not None:
            return
        self._touched.update(dict.fromkeys(session_ids))
        if self._touch_call is None and self._touched:
            self._touch_call = self.clock.callLater(self.TOUCH_DELAY_S, self._send_touches)

    def _send_touches(self) -> None:
        self._touch_call = None
        touched, self._touched = self._touched, {}
        if touched and self._lost is None:
            self.send(wire.Touch(list(touched)))

    def close_session(self, session_id: int) -> Deferred:
        """See L{IDataLink.close_session}."""
        return self._call("result", -11, lambda tag: wire.CloseSession(tag, session_id))

    def submit(self, request: Any) -> Deferred:
        """See L{IDataLink.submit}."""
        opcode = request.opcode
        body = wire.encode_request_body(opcode, request.record)
        return self._call(
            "result",
            opcode,
            lambda tag: wire.Submit(
                tag, request.session_id, request.cxid, opcode, list(request.auth), body
            ),
        )

    def subscribe(self, listener: Any) -> None:
        """See L{IDataLink.subscribe}."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        """See L{IDataLink.unsubscribe}."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def read_view(self) -> DataTree:
        """The replica tree (once L{ready} has fired)."""
        assert self.tree is not None, "the data link is not ready yet"
        return self.tree


def connect_data_link(endpoint: Any) -> Deferred:
    """
    Connect to a data server.

    @param endpoint: an C{IStreamClientEndpoint} (e.g. C{clientFromString(reactor,
        "tcp:127.0.0.1:2888")}).
    @return: a Deferred firing with a ready L{TCPDataLink}.
    """
    factory = Factory.forProtocol(TCPDataLink)
    connected = endpoint.connect(factory)
    return connected.addCallback(lambda link: link.ready)
