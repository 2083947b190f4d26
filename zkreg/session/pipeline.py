"""
The per-session request pipeline of a client connection: requests in, replies out in
request order.

Ordering (ZooKeeper's per-session FIFO): a session's requests are answered strictly in
the order they arrived.  Writes go to the data link and are answered when their
Deferred fires; a read (or any request the session server answers itself) that arrives
while a write of the same session is outstanding waits behind it in C{_pending}, and is
evaluated only when everything before it has been answered, so it sees that write.
With nothing outstanding, reads are answered synchronously, without a Deferred.

A write that arrives behind such a waiting read must not be visible to it.  When the
link applies writes only after C{submit} returned, one at a time, each answered before
the next is applied (C{writes_pass_reads} of the factory: the data link over TCP, and a
data server on a file or etcd log), the write is submitted at once, as ZooKeeper's
leader logs it at once: the read is evaluated in the answer of the write before it,
before the next write is applied, so it sees exactly the writes before it.  A session
mixing reads and writes then gets several writes into each group commit instead of one
per sync.  Local requests other than reads (auth, SASL, watch registrations) still hold
the writes behind them, and with a log that applies during C{submit} (the memory log)
every local request does.

It is separate from the framing (L{zkreg.session.framing}) and the connection's
lifetime (L{zkreg.session.protocol}) because it owns what they never look into: the
entries of the pending queue and their kinds (the connection only counts and clears
the queue).
"""

from __future__ import annotations

import struct
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.data.messages import Request
from zkreg.data.server import DataServerFailed
from zkreg.link.errors import DataTierUnavailable
from zkreg.proto.consts import Err, OpCode
from zkreg.proto.jute import DecodeError
from zkreg.proto.ops import OPS
from zkreg.session.replies import encode_reply, encode_write_reply
from zkreg.session.requests import (
    DATA_READ_OPS,
    SASL_EXEMPT_OPS,
    UNDECODABLE,
    WRITE_OPS,
    decode_body,
)
from zkreg.session.states import CLOSING, ESTABLISHED

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_REQUEST_HEADER = struct.Struct(">ii")

#: Requests in flight on one connection above which it is not read from.
MAX_OUTSTANDING = 1000

# Kinds of entries in the pending queue.
_DONE = 0  # reply bytes ready
_WAITING = 1  # a submitted write, reply not yet known
_LOCAL = 2  # a local op that holds the writes behind it, to evaluate at the head
_HELD = 3  # a write not yet submitted because a local op precedes it
_READ = 4  # a read the writes behind it were submitted past, to evaluate at the head

# Opcodes compared on every request, as plain ints (an enum member costs a lookup).
_CHECK = int(OpCode.check)
_CLOSE_SESSION = int(OpCode.closeSession)
_DELETE_CONTAINER = int(OpCode.deleteContainer)

#: Local requests later writes may be submitted past (see the module docstring).
_PASSABLE_OPS = DATA_READ_OPS | {int(OpCode.ping)}


class RequestPipeline:
    """
    The request-pipeline half of L{zkreg.session.protocol.ClientConnection} (a
    mixin: it answers through the connection's output and its local operations).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{ClientConnection.__init__}); C{send}, C{_flush_later} and
    C{_update_reading} of L{zkreg.session.output.ConnectionOutput};
    C{_answer_local}, C{_refuse_unauthenticated} and C{_record_write_latency} of
    L{zkreg.session.local.LocalOperations}; and C{close} and C{abort} of
    C{ClientConnection}.
    """

    factory: SessionServerFactory
    session_id: int
    auth: tuple
    peer: str
    last_cxid: int
    last_opcode: int
    _log: Logger
    _state: int
    #: requests received and not yet answered, in order: C{[kind, request or reply,
    #: received_at]}, then any marker (C{_CLOSE_AFTER}, C{_THROTTLED})
    _pending: deque[list]
    #: entries of kind C{_LOCAL} in C{_pending}: writes behind them are held
    _local_waiting: int
    _draining: bool
    _received_at: float
    _reading_paused: bool
    _out: list[bytes] | None
    _close_after_flush: bool
    _closing_session: bool
    _sasl_required: bool
    _touched_in: int
    _touched_ms: int
    _write_received: list[float]
    _write_zxid: int

    if TYPE_CHECKING:

        def send(self, frame: bytes) -> None: ...

        def _flush_later(self) -> None: ...

        def _update_reading(self) -> None: ...

        def _answer_local(
            self, xid: int, opcode: int, record: Any, received_at: float | None
        ) -> None: ...

        def _refuse_unauthenticated(self, xid: int) -> None: ...

        def _record_write_latency(self, received_at: float, zxid: int) -> None: ...

        def close(self, why: str | None = None) -> None: ...

        def abort(self, why: str) -> None: ...

    # -- requests ----------------------------------------------------------------------

    def _request_received(self, buf: bytes, start: int, end: int) -> None:
        if end - start < 8:
            raise DecodeError("request shorter than its header")
        xid, opcode = _REQUEST_HEADER.unpack_from(buf, start)
        if self._sasl_required and opcode not in SASL_EXEMPT_OPS:
            self._refuse_unauthenticated(xid)
            return
        factory = self.factory
        if self._touched_in != factory.touch_generation:
            # Once per connection and flush of touches, not once per request; and not
            # again within the millisecond of the last touch (the data tier keeps a
            # session's last contact in ms: a second touch in that ms changes nothing
            # and costs a reactor turn's flush for each request of a sequential client).
            # The ms is that of the data's arrival, read once per read already.
            now_ms = round(self._received_at * 1000)
            if now_ms != self._touched_ms:
                self._touched_in = factory.touch_generation
                self._touched_ms = now_ms
                factory.touch(self.session_id)
        if xid >= 0:
            self.last_cxid = xid
        self.last_opcode = opcode
        if opcode in WRITE_OPS:
            if opcode == _DELETE_CONTAINER:
                # ZooKeeper reads this internal request's body as the raw path bytes.
                record = bytes(buf[start + 8 : end]).decode("utf-8", "replace")
            else:
                try:
                    record = decode_body(opcode, buf, start + 8, end)
                except DecodeError as error:
                    record = self._undecodable(opcode, error)
            if record is UNDECODABLE:
                self._enqueue_local(xid, opcode, UNDECODABLE)
                return
            request = (
                None
                if opcode == _CLOSE_SESSION
                else Request(self.session_id, xid, opcode, record, self.auth)
            )
            # Received when the data that brought it was (see _record_write_latency).
            entry = [_HELD, (xid, opcode, request), self._received_at]
            self._pending.append(entry)
            if not self._local_waiting:
                submit_with_callback = factory.submit_with_callback
                if (
                    request is not None
                    and submit_with_callback is not None
                    and factory.throttler is None
                ):
                    # _submit and submit_admitted for the common case, inlined.
                    entry[0] = _WAITING
                    submit_with_callback(request, partial(self._write_done, entry))
                else:
                    self._submit(entry)
            if len(self._pending) >= MAX_OUTSTANDING and not self._reading_paused:
                # Like ZooKeeper's throttling: stop reading from a client that has
                # too many requests in flight, until they are answered.
                self._reading_paused = True
                self._update_reading()
            return
        if opcode not in OPS:
            self._log.warn(
                "unknown opcode {opcode} from {peer}, session 0x{session_id:x}",
                opcode=opcode,
                peer=self.peer,
                session_id=self.session_id,
            )
            # ZooKeeper's UnimplementedRequestProcessor answers at once, then closes.
            self.send(encode_reply(xid, -1, Err.UNIMPLEMENTED))
            self.close()
            return
        record = self._decode_body(opcode, buf, start + 8, end)
        self._enqueue_local(xid, opcode, record)

    def _decode_body(self, opcode: int, buf: bytes, start: int, end: int) -> Any:
        try:
            return decode_body(opcode, buf, start, end)
        except DecodeError as error:
            return self._undecodable(opcode, error)

    def _undecodable(self, opcode: int, error: DecodeError) -> Any:
        """Log a request body that did not decode; @return: L{UNDECODABLE}."""
        self._log.warn(
            "undecodable body of opcode {opcode} from {peer}: {error}",
            opcode=opcode,
            peer=self.peer,
            error=error,
        )
        return UNDECODABLE

    def _enqueue_local(self, xid: int, opcode: int, record: Any) -> None:
        if not self._pending:
            self._answer_local(xid, opcode, record, self._received_at)
            return
        factory = self.factory
        if factory.writes_pass_reads and opcode in _PASSABLE_OPS and record is not UNDECODABLE:
            kind = _READ
        else:
            kind = _LOCAL
            self._local_waiting += 1
        self._pending.append([kind, (xid, opcode, record), self._received_at])

    # -- writes ------------------------------------------------------------------------

    def _submit(self, entry: list) -> None:
        """Send a held write to the data link; its reply fills the entry."""
        entry[0] = _WAITING
        throttler = self.factory.throttler
        if throttler is not None:
            entry.append(_THROTTLED)
            if not throttler.admit(self, entry):
                return
        self.submit_admitted(entry)

    def submit_admitted(self, entry: list) -> None:
        """
        Submit a write the server-wide throttler admitted (at once, or when room
        freed up): see L{zkreg.session.limits.RequestThrottler}.
        """
        xid, opcode, request = entry[1]
        factory = self.factory
        if opcode == OpCode.closeSession:
            self._closing_session = True
            deferred = factory.link.close_session(self.session_id)
        else:
            submit_with_callback = factory.submit_with_callback
            if submit_with_callback is not None:
                # No Deferred per write: the callback may run before this returns,
                # exactly as a Deferred fired inside submit (see _drain).
                submit_with_callback(request, partial(self._write_done, entry))
                return
            deferred = factory.link.submit(request)
        deferred.addCallbacks(
            self._write_answered,
            self._write_failed,
            callbackArgs=(entry,),
            errbackArgs=(entry,),
        )

    def _write_done(self, entry: list, result: Any) -> None:
        """
        The callback of C{submit_with_callback}: an L{Outcome} or a L{Failure}.

        The common case, an answered write at the head of the pending queue while
        nothing is being drained, goes straight to the output: this is the answer
        path of every write (the general one is L{_write_answered}).
        """
        if isinstance(result, Failure):
            self._write_failed(result, entry)
            return
        pending = self._pending
        xid, opcode, _ = entry[1]
        if (
            pending
            and pending[0] is entry
            and entry[-1] is not _THROTTLED
            and self._state == ESTABLISHED
            and not self._draining
            and opcode != _CHECK
            and opcode != _CLOSE_SESSION
        ):
            zxid = result.zxid
            reply = encode_write_reply(xid, zxid, result.err, opcode, result.response)
            self._write_received.append(entry[2])  # _record_write_latency, inlined
            self._write_zxid = zxid
            pending.popleft()
            if self._out is None:
                self._flush_later()
            self.send(reply)
            if pending and pending[0][0] != _WAITING:
                # Reads that waited for this write, or writes held behind them.
                self._drain_from_callback()
            else:
                self._resume_reading_if_drained()
            return
        self._write_answered(result, entry)

    def _write_answered(self, outcome: Any, entry: list) -> None:
        if entry[-1] is _THROTTLED:
            entry.pop()
            self.factory.throttler.done()  # type: ignore[union-attr]
        xid, opcode, _ = entry[1]
        if opcode == OpCode.check and outcome.err == 0:
            # ZooKeeper 3.8 orders and logs a standalone check (a 3.9 client's) but
            # answers it only when it fails; 3.8 clients send check inside a multi.
            entry[0] = _DONE
            entry[1] = b""
            self._drain_from_callback()
            return
        zxid = outcome.zxid
        entry[0] = _DONE
        entry[1] = encode_write_reply(xid, zxid, outcome.err, opcode, outcome.response)
        self._record_write_latency(entry[2], zxid)
        if opcode == OpCode.closeSession:
            entry.append(_CLOSE_AFTER)
        self._drain_from_callback()

    def _write_failed(self, failure: Any, entry: list) -> None:
        if entry[-1] is _THROTTLED:
            entry.pop()
            self.factory.throttler.done()  # type: ignore[union-attr]
        if failure.check(DataServerFailed):
            # The durable log failed: the write was not applied and none will be
            # until an operator restarts the server.  Answer it with an error and keep
            # the session, so that its reads (and its ephemerals) go on working.
            self._log.error(
                "write of session 0x{session_id:x} refused: {reason}",
                session_id=self.session_id,
                reason=failure.getErrorMessage(),
            )
            xid, _, _ = entry[1]
            entry[0] = _DONE
            entry[1] = encode_reply(xid, self.factory.last_zxid(), Err.SYSTEMERROR)
            self._drain_from_callback()
            return
        if failure.check(DataTierUnavailable):
            self._log.warn(
                "write of session 0x{session_id:x} failed: {reason}; closing",
                session_id=self.session_id,
                reason=failure.getErrorMessage(),
            )
        else:
            self._log.failure(
                "data tier could not take a write of session 0x{session_id:x}; closing",
                failure=failure,
                session_id=self.session_id,
            )
        self._pending.clear()
        self.close()

    def _drain_from_callback(self) -> None:
        if self._state == CLOSING and not self._close_after_flush:
            return
        if self._draining:
            # The drain loop up the stack will find this entry answered.
            return
        self._flush_later()
        try:
            self._drain()
        except Exception:
            self._log.failure(
                "unexpected failure answering session 0x{session_id:x}; closing",
                session_id=self.session_id,
            )
            self.abort("internal error")

    def _drain(self) -> None:
        """
        Answer the head of the pending queue for as long as it can be answered.

        Not reentrant: a write whose Deferred fires synchronously while this loop
        submits it only marks its entry done, and the loop sends it.
        """
        self._draining = True
        try:
            self._drain_loop()
        finally:
            self._draining = False

    def _drain_loop(self) -> None:
        self._answer_ready()
        self._resume_reading_if_drained()

    def _resume_reading_if_drained(self) -> None:
        """Read again from a client paused for too many requests in flight, once half are answered."""
        if self._reading_paused and len(self._pending) <= MAX_OUTSTANDING // 2:
            self._reading_paused = False
            self._update_reading()

    def _answer_ready(self) -> None:
        pending = self._pending
        while pending and self._state != CLOSING:
            entry = pending[0]
            kind = entry[0]
            if kind == _DONE:
                pending.popleft()
                if entry[1]:
                    self.send(entry[1])
                if len(entry) > 3 and entry[3] is _CLOSE_AFTER:
                    self.close()
                    return
            elif kind == _LOCAL or kind == _READ:
                pending.popleft()
                if kind == _LOCAL:
                    self._local_waiting -= 1
                xid, opcode, record = entry[1]
                self._answer_local(xid, opcode, record, entry[2])
            elif kind == _HELD:
                # Submit this write and every write behind it up to the next local op
                # that holds them (reads they may pass do not).
                to_submit = []
                for later in pending:
                    if later[0] == _LOCAL:
                        break
                    if later[0] == _HELD:
                        to_submit.append(later)
                for later in to_submit:
                    if self._state == CLOSING:
                        return
                    self._submit(later)
            else:
                return

    # -- reporting ---------------------------------------------------------------------

    def writes_passed_reads(self) -> bool:
        """Whether a write was submitted past a read still waiting for its turn."""
        read_waiting = False
        for entry in self._pending:
            kind = entry[0]
            if kind == _READ:
                read_waiting = True
            elif read_waiting and kind == _WAITING:
                return True
        return False


#: Marker on a pending entry: close the connection once this reply is sent.
_CLOSE_AFTER = object()
#: Marks a pending write counted in flight by the server-wide throttler.
_THROTTLED = object()
