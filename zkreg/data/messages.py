"""
The values that cross the data link: a request in, an outcome and a commit out.

Plain slotted classes, treated as immutable once built: the in-process link passes them
by reference and the TCP link serializes them with the jute records they carry.  They
are not C{frozen} because a frozen dataclass costs three times as much to build, and
one of each is built per write on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Request:
    """
    One client request on its way to the data server.

    @ivar session_id: the session that sent it.
    @ivar cxid: the client's xid, echoed in the reply; with C{session_id} it names the
        request uniquely, so a resubmission after a failover is not applied twice.
    @ivar opcode: a L{zkreg.proto.consts.OpCode} value.
    @ivar record: the decoded request record (for multi, a list of C{(opcode, record)}).
    @ivar auth: the session's authenticated ids, a tuple of L{zkreg.proto.records.Id}
        (always includes C{Id("ip", client address)}).
    @ivar stamp: for exactly-once writes over a link that may resubmit, the
        L{WriteStamp} its session server gave it; L{None} otherwise.
    @ivar schemes: the optional ACL schemes (C{sasl}, C{x509}) the session server
        of another process knows, which decide whether an ACL naming them is valid
        (as the server a ZooKeeper client connected to); L{None}: the data server's
        own (in one process they are the same server).
    """

    session_id: int
    cxid: int
    opcode: int
    record: Any
    auth: tuple = ()
    stamp: WriteStamp | None = None
    schemes: frozenset[str] | None = None


@dataclass(slots=True)
class WriteStamp:
    """
    What makes a write resubmittable: its session server's per-session sequence
    number.  (The client's cxid cannot serve: kazoo restarts xids at 0 on every
    reconnect, so a session repeats cxids.)

    @ivar origin: a random 64-bit id of the session server's link, new each time the
        session server starts, so two session servers never share numbers for a
        session that moved between them.
    @ivar seq: the write's number, from 1, increasing per session and origin.
    @ivar acked: every reply up to this number (same session and origin) has been
        received: the data tier may forget those replies.
    """

    origin: int
    seq: int
    acked: int = 0


@dataclass(slots=True)
class Outcome:
    """
    The data server's answer to a L{Request}.

    @ivar zxid: the zxid to put in the reply header.
    @ivar err: a L{zkreg.proto.consts.Err} value, 0 on success.
    @ivar response: the response record to encode after the reply header, or L{None}
        (for an error, or an operation whose response has no body).
    """

    zxid: int
    err: int
    response: Any = None


@dataclass(slots=True)
class SessionGrant:
    """
    A live session as the data tier knows it.
    """

    session_id: int
    password: bytes
    timeout_ms: int


@dataclass(slots=True)
class Commit:
    """
    One applied transaction, as published on the commit stream.

    @ivar zxid: its zxid.
    @ivar session_id: the session whose request it was (0 for internal ones).
    @ivar cxid: that request's xid.
    @ivar txn_type: the txn header type (an opcode, or C{OpCode.error}).
    @ivar txn: the transaction record that was applied.
    @ivar events: the watch events the apply triggered, in order, as
        C{(event_type, path)} pairs using L{zkreg.proto.consts.EventType}:
        NodeCreated/NodeDeleted/NodeDataChanged on the node's own path,
        NodeChildrenChanged on the parent's path.  For a multi, all ops' events.
    @ivar closed_session: the session id this txn closed (closeSession or expiry), or 0.
    @ivar time: the txn header's time (ms since the epoch), so that a replica applying
        the stream (C{DataTree.apply(TxnHeader(session_id, cxid, zxid, time,
        txn_type), txn)}) gets the same ctime/mtime; 0 from producers predating it.
    @ivar record: the txn's log record as the sequencer encoded it (what the commit
        stream of the data link sends), or L{None} when it was not at hand.
    """

    zxid: int
    session_id: int
    cxid: int
    txn_type: int
    txn: Any
    events: tuple = field(default=())
    closed_session: int = 0
    time: int = 0
    record: bytes | None = None
