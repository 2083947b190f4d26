"""
The numbers the state machine compares on its hot path, as plain ints.

They are ZooKeeper's opcodes, error codes, event types, create-mode flags and
permission bits (the same values as L{zkreg.proto.consts}; a test checks they agree).
Plain ints rather than enum members because prep and apply compare them for every
request, and an IntEnum comparison costs several times an int comparison.
"""

# Opcodes (ZooDefs.OpCode).
OP_NOTIFICATION = 0
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_ACL = 6
OP_SET_ACL = 7
OP_GET_CHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GET_CHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_RECONFIG = 16
OP_CREATE_CONTAINER = 19
OP_DELETE_CONTAINER = 20
OP_CREATE_TTL = 21
OP_MULTI_READ = 22
OP_GET_EPHEMERALS = 103
OP_GET_ALL_CHILDREN_NUMBER = 104
OP_CREATE_SESSION = -10
OP_CLOSE_SESSION = -11
OP_ERROR = -1

#: Opcodes whose txn creates a node.
CREATE_OPS = frozenset({OP_CREATE, OP_CREATE2, OP_CREATE_CONTAINER, OP_CREATE_TTL})

# Error codes (KeeperException.Code).
OK = 0
SYSTEM_ERROR = -1
RUNTIME_INCONSISTENCY = -2
MARSHALLING_ERROR = -5
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
UNKNOWN_SESSION = -12
NO_NODE = -101
NO_AUTH = -102
BAD_VERSION = -103
NO_CHILDREN_FOR_EPHEMERALS = -108
NODE_EXISTS = -110
NOT_EMPTY = -111
SESSION_EXPIRED = -112
INVALID_ACL = -114
AUTH_FAILED = -115
RECONFIG_DISABLED = -123

# Watch event types (Watcher.Event.EventType).
EVENT_NODE_CREATED = 1
EVENT_NODE_DELETED = 2
EVENT_NODE_DATA_CHANGED = 3
EVENT_NODE_CHILDREN_CHANGED = 4

# Permission bits (ZooDefs.Perms).
PERM_READ = 1
PERM_WRITE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_ADMIN = 16
PERM_ALL = 31

# Create-mode flags (CreateMode.toFlag).
FLAG_PERSISTENT = 0
FLAG_EPHEMERAL = 1
FLAG_PERSISTENT_SEQUENTIAL = 2
FLAG_EPHEMERAL_SEQUENTIAL = 3
FLAG_CONTAINER = 4
FLAG_PERSISTENT_WITH_TTL = 5
FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# Ephemeral owner encodings (EphemeralType).
#: The ephemeralOwner ZooKeeper stores for a container (Long.MIN_VALUE).
CONTAINER_EPHEMERAL_OWNER = -(1 << 63)
#: Largest TTL in milliseconds (the bits left below the extended-type byte and the
#: reserved 16 bits).
TTL_MAX_MS = (1 << 40) - 1
_EXTENDED_MASK = 0xFF00000000000000
_RESERVED_MASK = 0x00FFFF0000000000

EPHEMERAL_VOID = 0
EPHEMERAL_NORMAL = 1
EPHEMERAL_CONTAINER = 2
EPHEMERAL_TTL = 3


def ttl_ephemeral_owner(ttl_ms: int) -> int:
    """
    The signed 64-bit ephemeralOwner ZooKeeper stores for a TTL node.

    @raise ValueError: for a TTL outside 1..L{TTL_MAX_MS} (ZooKeeper's
        IllegalArgumentException, reported to clients as BadArguments).
    """
    if ttl_ms <= 0 or ttl_ms > TTL_MAX_MS:
        raise ValueError(f"ttl must be in 1..{TTL_MAX_MS}: {ttl_ms}")
    return (_EXTENDED_MASK | ttl_ms) - (1 << 64)


def ephemeral_type(owner: int, extended_types: bool) -> int:
    """
    Classify an ephemeralOwner as C{EphemeralType.get} does.

    With extended types disabled, a TTL-encoded owner reads as an ordinary session id,
    exactly as in ZooKeeper.
    """
    if owner == 0:
        return EPHEMERAL_VOID
    if extended_types and (owner & _EXTENDED_MASK) == _EXTENDED_MASK:
        # ZooKeeper throws for an unknown extended-type bit; such owners only come from
        # a server id of 255, which extended types forbid, so it reads as a session.
        if owner & _RESERVED_MASK == 0:
            return EPHEMERAL_TTL
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return EPHEMERAL_CONTAINER
    return EPHEMERAL_NORMAL


def ttl_of(owner: int) -> int:
    """@return: the TTL in milliseconds encoded in a TTL node's ephemeralOwner."""
    return owner & TTL_MAX_MS
