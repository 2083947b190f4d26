"""
The numbers of the ZooKeeper client protocol: opcodes, error codes, watch event types
and keeper states, create modes, permissions, watcher types, the special xids, and the
well-known ids and ACLs.

Values are those of ZooKeeper 3.9 (C{ZooDefs}, C{KeeperException.Code},
C{Watcher.Event}, C{CreateMode}, C{ClientCnxn}).  The enums are C{IntEnum}s: members
are ints, so they go straight into records and compare with decoded ints; only
C{Enum(value)} lookups (for names in logs) cost more.  Member names are ZooKeeper's own
spelling so they can be searched for in its sources.
"""

from enum import IntEnum, IntFlag

from zkreg.proto.records import ACL, Id


class OpCode(IntEnum):
    """C{ZooDefs.OpCode}: the C{type} of a RequestHeader, TxnHeader or MultiHeader."""

    notification = 0
    create = 1
    delete = 2
    exists = 3
    getData = 4
    setData = 5
    getACL = 6
    setACL = 7
    getChildren = 8
    sync = 9
    ping = 11
    getChildren2 = 12
    check = 13
    multi = 14
    create2 = 15
    reconfig = 16
    checkWatches = 17
    removeWatches = 18
    createContainer = 19
    deleteContainer = 20
    createTTL = 21
    multiRead = 22
    auth = 100
    setWatches = 101
    sasl = 102
    getEphemerals = 103
    getAllChildrenNumber = 104
    setWatches2 = 105
    addWatch = 106
    whoAmI = 107
    createSession = -10
    closeSession = -11
    error = -1


class Err(IntEnum):
    """C{KeeperException.Code}: the C{err} of a ReplyHeader, MultiHeader or ErrorTxn."""

    OK = 0
    SYSTEMERROR = -1
    RUNTIMEINCONSISTENCY = -2
    DATAINCONSISTENCY = -3
    CONNECTIONLOSS = -4
    MARSHALLINGERROR = -5
    UNIMPLEMENTED = -6
    OPERATIONTIMEOUT = -7
    BADARGUMENTS = -8
    UNKNOWNSESSION = -12
    NEWCONFIGNOQUORUM = -13
    RECONFIGINPROGRESS = -14
    APIERROR = -100
    NONODE = -101
    NOAUTH = -102
    BADVERSION = -103
    NOCHILDRENFOREPHEMERALS = -108
    NODEEXISTS = -110
    NOTEMPTY = -111
    SESSIONEXPIRED = -112
    INVALIDCALLBACK = -113
    INVALIDACL = -114
    AUTHFAILED = -115
    SESSIONMOVED = -118
    NOTREADONLY = -119
    EPHEMERALONLOCALSESSION = -120
    NOWATCHER = -121
    REQUESTTIMEOUT = -122
    RECONFIGDISABLED = -123
    SESSIONCLOSEDREQUIRESASLAUTH = -124
    QUOTAEXCEEDED = -125
    THROTTLEDOP = -127


class EventType(IntEnum):
    """C{Watcher.Event.EventType}: the C{type} of a WatcherEvent."""

    NONE = -1  # ZooKeeper spells it None, a Python keyword; session events carry it
    NodeCreated = 1
    NodeDeleted = 2
    NodeDataChanged = 3
    NodeChildrenChanged = 4
    DataWatchRemoved = 5
    ChildWatchRemoved = 6
    PersistentWatchRemoved = 7


class KeeperState(IntEnum):
    """C{Watcher.Event.KeeperState}: the C{state} of a WatcherEvent."""

    Unknown = -1
    Disconnected = 0
    NoSyncConnected = 1
    SyncConnected = 3
    AuthFailed = 4
    ConnectedReadOnly = 5
    SaslAuthenticated = 6
    Expired = -112
    Closed = 7


class CreateMode(IntEnum):
    """C{CreateMode}: the C{flags} of a CreateRequest or CreateTTLRequest."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    @property
    def is_ephemeral(self) -> bool:
        return self in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)

    @property
    def is_sequential(self) -> bool:
        return self in (
            CreateMode.PERSISTENT_SEQUENTIAL,
            CreateMode.EPHEMERAL_SEQUENTIAL,
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
        )

    @property
    def is_container(self) -> bool:
        return self is CreateMode.CONTAINER

    @property
    def is_ttl(self) -> bool:
        return self in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)


class Perms(IntFlag):
    """C{ZooDefs.Perms}: the bits of C{ACL.perms}."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class WatcherType(IntEnum):
    """
    C{Watcher.WatcherType}: the C{type} of CheckWatchesRequest and RemoveWatchesRequest.

    The Java client sends only Children, Data and Any on the wire; Persistent and
    PersistentRecursive exist in the enum (3.9) for removing persistent watches.
    """

    Children = 1
    Data = 2
    Any = 3
    Persistent = 4
    PersistentRecursive = 5


class AddWatchMode(IntEnum):
    """C{AddWatchMode} (C{ZooDefs.AddWatchModes}): the C{mode} of an AddWatchRequest."""

    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class Xid(IntEnum):
    """
    The reserved xids (C{ClientCnxn}): a reply or request with one of these is not an
    answer to a numbered request.

    SASL packets use ordinary xids (C{ZooKeeperSaslClient} sends them with
    C{sendPacket}), so there is no SASL xid.
    """

    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8


#: The version of the session protocol clients send in ConnectRequest (always 0).
PROTOCOL_VERSION = 0

#: Anyone at all: C{ZooDefs.Ids.ANYONE_ID_UNSAFE}.
ANYONE_ID_UNSAFE = Id("world", "anyone")
#: Placeholder in an ACL for the creator's authenticated ids: C{ZooDefs.Ids.AUTH_IDS}.
AUTH_IDS = Id("auth", "")
#: Everyone may do everything.  Tuples, so they cannot be changed by accident; a
#: decoded ACL vector is a list, and records compare lists and tuples equal.
OPEN_ACL_UNSAFE = (ACL(int(Perms.ALL), ANYONE_ID_UNSAFE),)
#: The creator's authenticated ids may do everything.
CREATOR_ALL_ACL = (ACL(int(Perms.ALL), AUTH_IDS),)
#: Everyone may read.
READ_ACL_UNSAFE = (ACL(int(Perms.READ), ANYONE_ID_UNSAFE),)
