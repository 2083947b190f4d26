"""
Every record of ZooKeeper's C{zookeeper.jute}: the client protocol and the transactions.

One class per jute class, with the jute class name and the jute field names (so
C{Stat.ephemeralOwner}, C{ConnectRequest.timeOut}) and the fields in the jute order:
C{zookeeper.jute} is the reference for what each holds.  Request, response and
transaction records are distinct classes even where their fields coincide.

Two deliberate departures from the IDL, both about what real peers send:

  - C{ConnectRequest.readOnly} and C{ConnectResponse.readOnly} are optional: clients
    and servers older than 3.4 end the record before it (ZooKeeper's
    C{compat.ProtocolManager} reads it only when bytes remain, and answers a client in
    the same form it spoke).  Here the field is L{None} when absent; a decoded record
    records whether the byte was there, and encoding writes it only when not L{None}.
    Decode these two from a buffer that ends where the record ends (the frame).
  - The quorum and file-header records of C{zookeeper.jute} are not here: zkreg does
    not speak ZooKeeper's quorum protocol or write its log format.

The multi request and response are not jute records; see L{zkreg.proto.multi}.
"""

from zkreg.proto.jute import (
    BOOLEAN,
    BUFFER,
    INT,
    LONG,
    OPTIONAL_BOOLEAN,
    USTRING,
    Record,
    vector,
)

# org.apache.zookeeper.data


class Id(Record):
    """An authenticated identity: C{scheme} (world, digest, ip, ...) and C{id}."""

    fields = (("scheme", USTRING), ("id", USTRING))


class ACL(Record):
    """One ACL entry: a L{zkreg.proto.consts.Perms} bit set granted to an L{Id}."""

    fields = (("perms", INT), ("id", Id))


_STAT_FIELDS = (
    ("czxid", LONG),
    ("mzxid", LONG),
    ("ctime", LONG),
    ("mtime", LONG),
    ("version", INT),
    ("cversion", INT),
    ("aversion", INT),
    ("ephemeralOwner", LONG),
    ("dataLength", INT),
    ("numChildren", INT),
    ("pzxid", LONG),
)


class Stat(Record):
    """A znode's metadata as clients see it."""

    fields = _STAT_FIELDS


class StatPersisted(Record):
    """A znode's metadata as ZooKeeper stores it (no dataLength, numChildren)."""

    fields = tuple(f for f in _STAT_FIELDS if f[0] not in ("dataLength", "numChildren"))


class ClientInfo(Record):
    """One entry of a whoAmI answer."""

    fields = (("authScheme", USTRING), ("user", USTRING))


# org.apache.zookeeper.proto


class ConnectRequest(Record):
    """The handshake a client sends first; C{readOnly} is L{None} when omitted."""

    fields = (
        ("protocolVersion", INT),
        ("lastZxidSeen", LONG),
        ("timeOut", INT),
        ("sessionId", LONG),
        ("passwd", BUFFER),
        ("readOnly", OPTIONAL_BOOLEAN),
    )


class ConnectResponse(Record):
    """The handshake answer; C{readOnly} is L{None} when omitted (old peers)."""

    fields = (
        ("protocolVersion", INT),
        ("timeOut", INT),
        ("sessionId", LONG),
        ("passwd", BUFFER),
        ("readOnly", OPTIONAL_BOOLEAN),
    )


class SetWatches(Record):
    """Re-registers one-shot watches after a reconnect (opcode setWatches)."""

    fields = (
        ("relativeZxid", LONG),
        ("dataWatches", vector(USTRING)),
        ("existWatches", vector(USTRING)),
        ("childWatches", vector(USTRING)),
    )


class SetWatches2(Record):
    """Re-registers one-shot and persistent watches after a reconnect (setWatches2)."""

    fields = (
        ("relativeZxid", LONG),
        ("dataWatches", vector(USTRING)),
        ("existWatches", vector(USTRING)),
        ("childWatches", vector(USTRING)),
        ("persistentWatches", vector(USTRING)),
        ("persistentRecursiveWatches", vector(USTRING)),
    )


class RequestHeader(Record):
    """Heads every client request after the handshake."""

    fields = (("xid", INT), ("type", INT))


class MultiHeader(Record):
    """Heads each op of a multi request or result; see L{zkreg.proto.multi}."""

    fields = (("type", INT), ("done", BOOLEAN), ("err", INT))


class AuthPacket(Record):
    """An addAuth request (xid -4, opcode auth)."""

    fields = (("type", INT), ("scheme", USTRING), ("auth", BUFFER))


class ReplyHeader(Record):
    """Heads every server reply and notification after the handshake."""

    fields = (("xid", INT), ("zxid", LONG), ("err", INT))


class GetDataRequest(Record):
    fields = (("path", USTRING), ("watch", BOOLEAN))


class SetDataRequest(Record):
    fields = (("path", USTRING), ("data", BUFFER), ("version", INT))


class ReconfigRequest(Record):
    fields = (
        ("joiningServers", USTRING),
        ("leavingServers", USTRING),
        ("newMembers", USTRING),
        ("curConfigId", LONG),
    )


class SetDataResponse(Record):
    fields = (("stat", Stat),)


class GetSASLRequest(Record):
    fields = (("token", BUFFER),)


class SetSASLRequest(Record):
    fields = (("token", BUFFER),)


class SetSASLResponse(Record):
    fields = (("token", BUFFER),)


class CreateRequest(Record):
    """create, create2 and createContainer requests (the opcode tells them apart)."""

    fields = (("path", USTRING), ("data", BUFFER), ("acl", vector(ACL)), ("flags", INT))


class CreateTTLRequest(Record):
    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("flags", INT),
        ("ttl", LONG),
    )


class DeleteRequest(Record):
    """delete and deleteContainer requests."""

    fields = (("path", USTRING), ("version", INT))


class GetChildrenRequest(Record):
    fields = (("path", USTRING), ("watch", BOOLEAN))


class GetAllChildrenNumberRequest(Record):
    fields = (("path", USTRING),)


class GetChildren2Request(Record):
    fields = (("path", USTRING), ("watch", BOOLEAN))


class CheckVersionRequest(Record):
    fields = (("path", USTRING), ("version", INT))


class GetMaxChildrenRequest(Record):
    fields = (("path", USTRING),)


class GetMaxChildrenResponse(Record):
    fields = (("max", INT),)


class SetMaxChildrenRequest(Record):
    fields = (("path", USTRING), ("max", INT))


class SyncRequest(Record):
    fields = (("path", USTRING),)


class SyncResponse(Record):
    fields = (("path", USTRING),)


class GetACLRequest(Record):
    fields = (("path", USTRING),)


class SetACLRequest(Record):
    fields = (("path", USTRING), ("acl", vector(ACL)), ("version", INT))


class SetACLResponse(Record):
    fields = (("stat", Stat),)


class AddWatchRequest(Record):
    """C{mode} is an L{zkreg.proto.consts.AddWatchMode}."""

    fields = (("path", USTRING), ("mode", INT))


class WatcherEvent(Record):
    """A notification (reply xid -1): L{zkreg.proto.consts.EventType}, KeeperState."""

    fields = (("type", INT), ("state", INT), ("path", USTRING))


class ErrorResponse(Record):
    fields = (("err", INT),)


class CreateResponse(Record):
    fields = (("path", USTRING),)


class Create2Response(Record):
    fields = (("path", USTRING), ("stat", Stat))


class ExistsRequest(Record):
    fields = (("path", USTRING), ("watch", BOOLEAN))


class ExistsResponse(Record):
    fields = (("stat", Stat),)


class GetDataResponse(Record):
    fields = (("data", BUFFER), ("stat", Stat))


class GetChildrenResponse(Record):
    fields = (("children", vector(USTRING)),)


class GetAllChildrenNumberResponse(Record):
    fields = (("totalNumber", INT),)


class GetChildren2Response(Record):
    fields = (("children", vector(USTRING)), ("stat", Stat))


class GetACLResponse(Record):
    fields = (("acl", vector(ACL)), ("stat", Stat))


class CheckWatchesRequest(Record):
    """C{type} is a L{zkreg.proto.consts.WatcherType}."""

    fields = (("path", USTRING), ("type", INT))


class RemoveWatchesRequest(Record):
    """C{type} is a L{zkreg.proto.consts.WatcherType}."""

    fields = (("path", USTRING), ("type", INT))


class GetEphemeralsRequest(Record):
    fields = (("prefixPath", USTRING),)


class GetEphemeralsResponse(Record):
    fields = (("ephemerals", vector(USTRING)),)


class WhoAmIResponse(Record):
    fields = (("clientInfo", vector(ClientInfo)),)


# org.apache.zookeeper.txn


class TxnDigest(Record):
    fields = (("version", INT), ("treeDigest", LONG))


class TxnHeader(Record):
    """Heads every logged transaction; C{type} is the opcode (or -1, error)."""

    fields = (
        ("clientId", LONG),
        ("cxid", INT),
        ("zxid", LONG),
        ("time", LONG),
        ("type", INT),
    )


class CreateTxnV0(Record):
    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("ephemeral", BOOLEAN),
    )


class CreateTxn(Record):
    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("ephemeral", BOOLEAN),
        ("parentCVersion", INT),
    )


class CreateTTLTxn(Record):
    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("parentCVersion", INT),
        ("ttl", LONG),
    )


class CreateContainerTxn(Record):
    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("parentCVersion", INT),
    )


class DeleteTxn(Record):
    fields = (("path", USTRING),)


class SetDataTxn(Record):
    fields = (("path", USTRING), ("data", BUFFER), ("version", INT))


class CheckVersionTxn(Record):
    fields = (("path", USTRING), ("version", INT))


class SetACLTxn(Record):
    fields = (("path", USTRING), ("acl", vector(ACL)), ("version", INT))


class SetMaxChildrenTxn(Record):
    fields = (("path", USTRING), ("max", INT))


class CreateSessionTxn(Record):
    fields = (("timeOut", INT),)


class CloseSessionTxn(Record):
    fields = (("paths2Delete", vector(USTRING)),)


class ErrorTxn(Record):
    fields = (("err", INT),)


class Txn(Record):
    """One op of a L{MultiTxn}: its txn type and the encoded txn record."""

    fields = (("type", INT), ("data", BUFFER))


class MultiTxn(Record):
    fields = (("txns", vector(Txn)),)


#: Every record class of this module, by jute name.
ALL_RECORDS: dict[str, type[Record]] = {
    name: value
    for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, Record) and value is not Record
}
