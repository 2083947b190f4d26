"""
The requests a session server's data link (L{zkreg.link.tcp.TCPDataLink}) makes of the
data tier, and their bookkeeping until each is answered: a tag per request, the calls
kept (and sent again after an outage), and the stamp of every write (this link's
origin, the session's next number, and the oldest number not answered yet, so that
the data server can forget what was) that makes sending it again harmless
(L{zkreg.data.dedup}).

It is separate from the link's connection and its lifetime (L{zkreg.link.tcp}) because
it owns what they only count, hand over or fail as a whole: the calls and the
sessions' write numbers.  Submitting a write and answering it is the hot path of
every write: its code is tuned (see bench/README.md), not to be reshaped lightly.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from zkreg.data import codes
from zkreg.data.applier import answer
from zkreg.data.messages import Outcome, SessionGrant
from zkreg.data.reads import READ_OPS
from zkreg.data.server import DataServerFailed
from zkreg.link import wire
from zkreg.link.errors import DataTierUnavailable
from zkreg.link.states import UNAVAILABLE

if TYPE_CHECKING:
    from zkreg.link.tcp import LinkProtocol

#: Distinct ids (of client connections) the link keeps encoded.
_IDS_KEPT = 1024


class _Call:
    """
    A request to the data tier, kept until answered (and sent again after an outage).

    @ivar message: the request, encoded (L{wire.encode_message}).
    @ivar waiting: a L{Deferred}, or a callable taking the L{Outcome} or a L{Failure}
        (see L{zkreg.data.applier.answer}).
    @ivar raw: answer with the response body's bytes rather than its record.
    """

    __slots__ = ("opcode", "message", "waiting", "session_id", "seq", "raw")

    def __init__(
        self,
        opcode: int,
        message: bytes,
        waiting: Any,
        session_id: int,
        seq: int,
        raw: bool = False,
    ) -> None:
        self.opcode = opcode
        self.message = message
        self.waiting = waiting
        self.session_id = session_id
        self.seq = seq
        self.raw = raw


class DataTierCalls:
    """
    The requests part of L{zkreg.link.tcp.TCPDataLink} (a mixin: it sends on the
    link's connection once the replica is synced, and holds requests until then).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{TCPDataLink.__init__}).
    """

    state: str
    origin: int
    _protocol: LinkProtocol | None
    _synced: bool
    #: set when anything was sent since the last beat (L{zkreg.link.liveness})
    _sent_since_beat: bool
    #: the requests not answered yet, by tag (all held while no data server is linked)
    _calls: dict[int, _Call]
    #: connections' ids (tuples of L{Id}) encoded once (L{wire.encode_auth})
    _ids: dict[tuple[Any, ...], bytes]
    _next_tag: int
    #: per session, the number of its last write
    _seq: dict[int, int]
    #: per session, the numbers of its writes not answered yet, oldest first (an
    #: OrderedDict: its first key is found at once, where a dict whose front is
    #: popped again and again scans past the holes it leaves)
    _unanswered: dict[int, OrderedDict[int, None]]

    # -- requests ----------------------------------------------------------------------

    def _call(
        self,
        opcode: int,
        build: Any,
        waiting: Any,
        session_id: int = 0,
        seq: int = 0,
        raw: bool = False,
    ) -> None:
        """
        Send a request built by C{build(tag)}, or hold it while no data server is
        linked; C{waiting} gets the answer.
        """
        if self.state == UNAVAILABLE:
            answer(waiting, Failure(DataTierUnavailable("no data server")))
            return
        self._next_tag = tag = (self._next_tag + 1) & 0x7FFFFFFF
        message = build(tag)
        if not isinstance(message, bytes):
            message = wire.encode_message(message)
        self._calls[tag] = _Call(opcode, message, waiting, session_id, seq, raw)
        protocol = self._protocol
        if protocol is not None and self._synced:
            protocol.send_encoded(message)
            self._sent_since_beat = True

    def _deferred_call(
        self, opcode: int, build: Any, session_id: int = 0, seq: int = 0
    ) -> Deferred:
        waiting: Deferred = Deferred()
        self._call(opcode, build, waiting, session_id, seq)
        return waiting

    def _answered(self, tag: int) -> _Call | None:
        call = self._calls.pop(tag, None)
        if call is not None and call.seq:
            unanswered = self._unanswered.get(call.session_id)
            if unanswered is not None:
                unanswered.pop(call.seq, None)
        return call

    def _result(self, tag: int, failed: bool, zxid: int, err: int, body: bytes | None) -> None:
        call = self._answered(tag)
        if call is None:
            return
        if failed:
            error = DataServerFailed((body or b"").decode("utf-8", "replace"))
            answer(call.waiting, Failure(error))
            return
        if err != 0:
            response = None
        elif call.raw:
            response = body
        else:
            response = wire.decode_response_body(call.opcode, body)
        answer(call.waiting, Outcome(zxid, err, response))

    def _granted(self, message: Any) -> None:
        call = self._answered(message.tag)
        if call is None:
            return
        if not message.present:
            answer(call.waiting, None)
        else:
            grant = SessionGrant(message.sessionId, message.passwd or b"", message.timeOut)
            answer(call.waiting, grant)

    # -- IDataLink ---------------------------------------------------------------------

    def create_session(self, timeout_ms: int) -> Deferred:
        """See L{IDataLink.create_session}."""
        return self._deferred_call(0, lambda tag: wire.CreateSession(tag, timeout_ms))

    def revalidate_session(self, session_id: int, password: bytes, timeout_ms: int) -> Deferred:
        """See L{IDataLink.revalidate_session}."""
        return self._deferred_call(
            0, lambda tag: wire.Revalidate(tag, session_id, password, timeout_ms)
        )

    def close_session(self, session_id: int) -> Deferred:
        """See L{IDataLink.close_session}."""
        return self._deferred_call(-11, lambda tag: wire.CloseSession(tag, session_id), session_id)

    def submit(self, request: Any) -> Deferred:
        """
        See L{IDataLink.submit}.  A write is stamped with this link's origin and the
        session's next number, so that sending it again after an outage cannot apply
        it twice.
        """
        waiting: Deferred = Deferred()
        self._submit(request, waiting, False)
        return waiting

    def submit_with_callback(self, request: Any, callback: Any) -> None:
        """
        L{submit} without a Deferred, as L{zkreg.data.server.DataServer}'s: C{callback}
        gets the L{Outcome} or a L{Failure}, possibly before this returns.  The
        outcome's response is the reply body's bytes as the data server encoded them
        (the session server sends them on as they are), not a record.
        """
        self._submit(request, callback, True)

    def _submit(self, request: Any, waiting: Any, raw: bool) -> None:
        opcode = request.opcode
        body = wire.encode_request_body(opcode, request.record)
        session_id = request.session_id
        seq = acked = 0
        if opcode != codes.OP_SYNC and opcode not in READ_OPS:
            seq = self._seq.get(session_id, 0) + 1
            self._seq[session_id] = seq
            unanswered = self._unanswered.get(session_id)
            if unanswered is None:
                unanswered = self._unanswered[session_id] = OrderedDict()
            acked = next(iter(unanswered)) - 1 if unanswered else seq - 1
            unanswered[seq] = None
        origin = self.origin if seq else 0
        cxid = request.cxid
        auth = self._ids.get(request.auth)
        if auth is None:
            if len(self._ids) >= _IDS_KEPT:
                self._ids.clear()
            auth = self._ids[request.auth] = wire.encode_auth(request.auth)
        self._call(
            opcode,
            lambda tag: wire.submit_message(
                tag, session_id, cxid, opcode, auth, body, origin, seq, acked
            ),
            waiting,
            session_id,
            seq,
            raw,
        )

    # -- facts for srvr / mntr ---------------------------------------------------------

    @property
    def held(self) -> int:
        """Requests waiting for an answer (held while the link is down)."""
        return len(self._calls)
