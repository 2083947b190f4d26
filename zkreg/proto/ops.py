"""
What follows the header of each request and of its successful reply, by opcode.

The server looks up how to decode a request body and what its reply carries; the
client looks up how to decode the reply to a request it sent.  The pairs follow
ZooKeeper 3.9's C{FinalRequestProcessor} (what it sends) and C{ZooKeeper}/C{ClientCnxn}
(what clients send).

Conventions of the table:

  - L{None} means no body at all (delete's reply, ping, closeSession, whoAmI's
    request, ...).
  - L{MULTI} stands for the multi encoding of L{zkreg.proto.multi}, not a record.
  - A reply whose header C{err} is not 0 has no body (ZooKeeper sends the header
    alone), whatever the table says.
  - The reserved-xid requests (ping -2, auth -4, setWatches -8) appear under their
    opcodes; their replies carry the same reserved xid.
"""

from __future__ import annotations

from typing import NamedTuple

from zkreg.proto.consts import OpCode
from zkreg.proto.jute import Record
from zkreg.proto.records import (
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    GetSASLRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    SetACLRequest,
    SetACLResponse,
    SetDataRequest,
    SetDataResponse,
    SetSASLResponse,
    SetWatches,
    SetWatches2,
    SyncRequest,
    SyncResponse,
    WhoAmIResponse,
)

__all__ = ["MULTI", "OPS", "OpSpec"]


class _Multi:
    """Marker for a multi body (see L{zkreg.proto.multi}), which is not a record."""

    def __repr__(self) -> str:
        return "MULTI"


#: Stands in the table for the multi request or response encoding.
MULTI = _Multi()


class OpSpec(NamedTuple):
    """
    The bodies of one operation.

    @ivar request: the request record class, L{MULTI}, or L{None} (no body).
    @ivar response: the success reply's record class, L{MULTI}, or L{None} (no body).
    @ivar write: whether the operation changes state (goes through the data server's
        total order); sync counts as a write because it is ordered with them.
    """

    request: type[Record] | _Multi | None
    response: type[Record] | _Multi | None
    write: bool


#: Every opcode a client can send, with its bodies.
OPS: dict[int, OpSpec] = {
    OpCode.create: OpSpec(CreateRequest, CreateResponse, True),
    OpCode.create2: OpSpec(CreateRequest, Create2Response, True),
    OpCode.createContainer: OpSpec(CreateRequest, Create2Response, True),
    OpCode.createTTL: OpSpec(CreateTTLRequest, Create2Response, True),
    OpCode.delete: OpSpec(DeleteRequest, None, True),
    # deleteContainer: ZooKeeper's container manager submits it internally, with the
    # raw path bytes as the body; clients never send it.
    OpCode.deleteContainer: OpSpec(None, None, True),
    OpCode.exists: OpSpec(ExistsRequest, ExistsResponse, False),
    OpCode.getData: OpSpec(GetDataRequest, GetDataResponse, False),
    OpCode.setData: OpSpec(SetDataRequest, SetDataResponse, True),
    OpCode.getACL: OpSpec(GetACLRequest, GetACLResponse, False),
    OpCode.setACL: OpSpec(SetACLRequest, SetACLResponse, True),
    OpCode.getChildren: OpSpec(GetChildrenRequest, GetChildrenResponse, False),
    OpCode.getChildren2: OpSpec(GetChildren2Request, GetChildren2Response, False),
    OpCode.getAllChildrenNumber: OpSpec(
        GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, False
    ),
    OpCode.getEphemerals: OpSpec(GetEphemeralsRequest, GetEphemeralsResponse, False),
    OpCode.sync: OpSpec(SyncRequest, SyncResponse, True),
    OpCode.ping: OpSpec(None, None, False),
    # A standalone check (3.9) is answered like setData.
    OpCode.check: OpSpec(CheckVersionRequest, SetDataResponse, True),
    OpCode.multi: OpSpec(MULTI, MULTI, True),
    OpCode.multiRead: OpSpec(MULTI, MULTI, False),
    # reconfig answers with the new configuration's data and stat.
    OpCode.reconfig: OpSpec(ReconfigRequest, GetDataResponse, True),
    OpCode.checkWatches: OpSpec(CheckWatchesRequest, None, False),
    OpCode.removeWatches: OpSpec(RemoveWatchesRequest, None, False),
    # addWatch is answered with ErrorResponse(0), not an empty body.
    OpCode.addWatch: OpSpec(AddWatchRequest, ErrorResponse, False),
    OpCode.auth: OpSpec(AuthPacket, None, False),
    OpCode.setWatches: OpSpec(SetWatches, None, False),
    OpCode.setWatches2: OpSpec(SetWatches2, None, False),
    OpCode.sasl: OpSpec(GetSASLRequest, SetSASLResponse, False),
    OpCode.whoAmI: OpSpec(None, WhoAmIResponse, False),
    OpCode.closeSession: OpSpec(None, None, True),
}
