"""
The rules of each write operation: how prep checks one create, delete, setData, setACL,
check, closeSession, deleteContainer (or refuses reconfig) against the tree plus the
writes in flight, and which txn it makes of it.

Check order per operation follows ZooKeeper (it decides which error a request that is
wrong in two ways gets): e.g. delete checks the parent's DELETE permission before it
looks for the node, setACL validates the new ACL before it looks for the node.

Differences, on purpose:

  - a closeSession in flight lowers its ephemerals' parents' child counts (ZooKeeper
    leaves them stale until applied), so a pipelined delete of such a parent succeeds
    as it would one by one;
  - a created node's owner as prep remembers it follows the txn type, as applying it
    will (ZooKeeper's change record follows the flags: createContainer with ephemeral
    flags, or create with the container flag, looked different to pipelined writes);
  - quotas are not enforced (ZooKeeper's default, C{zookeeper.enforceQuota=false});
  - session ownership (SessionMoved) is not checked: one data server owns all sessions.

It is separate from the entry point (L{zkreg.data.prep}, which turns a failure into an
error txn) and from a multi (L{zkreg.data.prep_multi}, which stages the ops of one
request) because these rules are the same wherever the op comes from.  The per-op
functions are tuned for speed (C{bench.data_cpu} measures them): constants are
module-level names, the common checks inlined.
"""

from __future__ import annotations

from typing import Any, Protocol

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.codes import EPHEMERAL_NORMAL, ephemeral_type
from zkreg.data.paths import SPECIAL_PATHS, checked_parent_of, is_valid_path, parent_of
from zkreg.data.prep_outstanding import Change as _Change
from zkreg.data.prep_outstanding import OutstandingChanges
from zkreg.data.tree import OPEN_ACL as _OPEN_ACL
from zkreg.proto.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    SetACLTxn,
    SetDataTxn,
)

_PERM_READ = codes.PERM_READ
_PERM_WRITE = codes.PERM_WRITE
_PERM_CREATE = codes.PERM_CREATE
_PERM_DELETE = codes.PERM_DELETE
_PERM_ADMIN = codes.PERM_ADMIN
_PERM_ALL = codes.PERM_ALL

_OP_CREATE_CONTAINER = codes.OP_CREATE_CONTAINER
_OP_CREATE_TTL = codes.OP_CREATE_TTL
_OP_DELETE = codes.OP_DELETE
_OP_DELETE_CONTAINER = codes.OP_DELETE_CONTAINER
_OP_SET_DATA = codes.OP_SET_DATA
_OP_SET_ACL = codes.OP_SET_ACL
_OP_CHECK = codes.OP_CHECK

_CREATE_OPS = codes.CREATE_OPS
_SEQUENTIAL_FLAGS = frozenset(
    {
        codes.FLAG_PERSISTENT_SEQUENTIAL,
        codes.FLAG_EPHEMERAL_SEQUENTIAL,
        codes.FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL,
    }
)
_EPHEMERAL_FLAGS = frozenset({codes.FLAG_EPHEMERAL, codes.FLAG_EPHEMERAL_SEQUENTIAL})
#: The create flags of the TTL modes: public because a multi types its create ops by
#: them too (L{zkreg.data.prep_multi}).
TTL_FLAGS = frozenset({codes.FLAG_PERSISTENT_WITH_TTL, codes.FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL})


def _i32(value: int) -> int:
    """Java int overflow: versions and cversions wrap at 2**31."""
    if value > 0x7FFFFFFF:
        return value - 0x100000000
    return value


def _open_acl_copy(acl: Any) -> Any:
    """
    What L{AclChecker.fixup} returns for the usual one-entry C{world:anyone} ACL
    without its general work: with every permission, the tree's shared L{_OPEN_ACL}
    tuple (which the tree and later preps recognise by identity), else the entry in
    a new list; L{None} for any other ACL.
    """
    if acl is _OPEN_ACL:
        # As the session server decodes the usual create.
        return acl
    if acl and len(acl) == 1:
        entry = acl[0]
        if entry is not None:
            entry_id = entry.id
            if entry_id is not None and entry_id.scheme == "world" and entry_id.id == "anyone":
                return _OPEN_ACL if entry.perms == _PERM_ALL else [entry]
    return None


class PrepError(Exception):
    """A request fails with a ZooKeeper error code."""

    def __init__(self, code: int) -> None:
        Exception.__init__(self, code)
        self.code = code


class ISessionChecker(Protocol):
    """What prep asks of the session table (L{zkreg.data.sessions.SessionTable})."""

    def check(self, session_id: int) -> int: ...


def _copy(zxid: int, path: str, node: Any) -> _Change:
    return _Change(
        zxid,
        path,
        False,
        node.version,
        node.cversion,
        node.aversion,
        node.ephemeral_owner,
        node.num_children,
        node.acl,
    )


def _deleted(zxid: int, path: str) -> _Change:
    return _Change(zxid, path, True, 0, 0, 0, 0, 0, ())


class OperationPrep(OutstandingChanges):
    """
    The prep of one write operation: C{_prep_op} dispatches by opcode (for each op of
    a multi, and for the ops L{zkreg.data.prep.Prep} does not call directly), then one
    method per operation, with the session and ACL checks they share.

    A base of L{zkreg.data.prep.Prep}, which sets the attributes declared here (their
    meaning is given there); nodes are looked up and changes recorded through
    L{OutstandingChanges}.
    """

    acl: AclChecker
    extended_types: bool
    sessions: ISessionChecker | None

    def _prep_op(self, opcode: int, record: Any, request: Any, zxid: int) -> Any:
        if opcode in _CREATE_OPS:
            return self._create(opcode, record, request, zxid)
        if opcode == _OP_SET_DATA:
            return self._set_data(opcode, record, request, zxid)
        if opcode == _OP_DELETE:
            return self._delete(opcode, record, request, zxid)
        if opcode == _OP_SET_ACL:
            return self._set_acl(record, request, zxid)
        if opcode == _OP_CHECK:
            return self._check(record, request)
        if opcode == codes.OP_CREATE_SESSION:
            return CreateSessionTxn(int(record))
        if opcode == codes.OP_CLOSE_SESSION:
            return self._close_session(request.session_id, zxid)
        if opcode == _OP_DELETE_CONTAINER:
            return self._delete_container(record, zxid)
        if opcode == codes.OP_RECONFIG:
            # A standalone ZooKeeper 3.8 runs with reconfigEnabled=false.
            raise PrepError(codes.RECONFIG_DISABLED)
        raise PrepError(codes.UNIMPLEMENTED)

    def _check_session(self, session_id: int) -> None:
        sessions = self.sessions
        if sessions is not None:
            err = sessions.check(session_id)
            if err:
                raise PrepError(err)

    def _check_acl(self, node: Any, perm: int, request: Any) -> None:
        acl = node.acl
        if acl is not _OPEN_ACL and not self.acl.allowed(acl, perm, request.auth):
            raise PrepError(codes.NO_AUTH)

    # -- operations ----------------------------------------------------------------------

    def _create(self, opcode: int, record: Any, request: Any, zxid: int) -> Any:
        flags = record.flags
        if not 0 <= flags <= 6:
            raise PrepError(codes.BAD_ARGUMENTS)
        ttl = record.ttl if opcode == _OP_CREATE_TTL else -1
        # validateCreateRequest
        if flags in TTL_FLAGS:
            if not self.extended_types:
                raise PrepError(codes.UNIMPLEMENTED)
            if ttl <= 0 or ttl > codes.TTL_MAX_MS:
                raise PrepError(codes.BAD_ARGUMENTS)
        elif ttl >= 0 or opcode == _OP_CREATE_TTL:
            # ZooKeeper refuses a TTL for a non-TTL mode; a createTTL whose flags are
            # not a TTL mode would fail when applied, so it is refused here too.
            raise PrepError(codes.BAD_ARGUMENTS)
        ephemeral = flags in _EPHEMERAL_FLAGS
        if ephemeral:
            # checkGlobalSession: an unknown session is an expired one here.
            sessions = self.sessions
            if sessions is not None:
                err = sessions.check(request.session_id)
                if err:
                    raise PrepError(codes.SESSION_EXPIRED)
        else:
            self._check_session(request.session_id)
        path = record.path
        parent_path = checked_parent_of(path)
        if parent_path is None:
            raise PrepError(codes.BAD_ARGUMENTS)
        acl = _open_acl_copy(record.acl)
        if acl is None:
            acl = self.acl.fixup(record.acl, request.auth, request.schemes)
            if acl is None:
                raise PrepError(codes.INVALID_ACL)
        parent = self._lookup(parent_path)
        if parent is None:
            raise PrepError(codes.NO_NODE)
        parent_acl = parent.acl
        if parent_acl is not _OPEN_ACL and not self.acl.allowed(
            parent_acl, _PERM_CREATE, request.auth
        ):
            raise PrepError(codes.NO_AUTH)
        parent_cversion = parent.cversion
        if flags in _SEQUENTIAL_FLAGS:
            path = "%s%010d" % (path, parent_cversion)
        if not is_valid_path(path):
            raise PrepError(codes.BAD_ARGUMENTS)
        if self._lookup(path) is not None:
            raise PrepError(codes.NODE_EXISTS)
        parent_owner = parent.ephemeral_owner
        if parent_owner and ephemeral_type(parent_owner, self.extended_types) == EPHEMERAL_NORMAL:
            raise PrepError(codes.NO_CHILDREN_FOR_EPHEMERALS)
        new_cversion = parent_cversion + 1 if parent_cversion < 0x7FFFFFFF else -0x80000000
        data = record.data
        if opcode == _OP_CREATE_CONTAINER:
            txn: Any = CreateContainerTxn(path, data, acl, new_cversion)
        elif opcode == _OP_CREATE_TTL:
            txn = CreateTTLTxn(path, data, acl, new_cversion, ttl)
        else:
            txn = CreateTxn(path, data, acl, ephemeral, new_cversion)
        # The owner prep remembers is the one applying the txn will give (its type
        # decides).  ZooKeeper's change record follows the flags instead, so for a
        # createContainer with ephemeral flags (or create with the container flag) its
        # pipelined writes could see a different node than the tree will hold.
        if opcode == _OP_CREATE_CONTAINER:
            owner = codes.CONTAINER_EPHEMERAL_OWNER
        elif opcode == _OP_CREATE_TTL:
            owner = codes.ttl_ephemeral_owner(ttl)
        elif ephemeral:
            owner = request.session_id
        else:
            owner = 0
        add = self._add
        add(
            _Change(
                zxid,
                parent_path,
                False,
                parent.version,
                new_cversion,
                parent.aversion,
                parent_owner,
                parent.num_children + 1,
                parent_acl,
            )
        )
        add(_Change(zxid, path, False, 0, 0, 0, owner, 0, acl))
        return txn

    def _delete(self, opcode: int, record: Any, request: Any, zxid: int) -> Any:
        self._check_session(request.session_id)
        path = record.path
        parent_path = checked_parent_of(path)
        if parent_path is None or path in SPECIAL_PATHS:
            raise PrepError(codes.BAD_ARGUMENTS)
        parent = self._lookup(parent_path)
        if parent is None:
            raise PrepError(codes.NO_NODE)
        self._check_acl(parent, _PERM_DELETE, request)
        node = self._lookup(path)
        if node is None:
            raise PrepError(codes.NO_NODE)
        version = record.version
        if version != -1 and version != node.version:
            raise PrepError(codes.BAD_VERSION)
        if node.num_children > 0:
            raise PrepError(codes.NOT_EMPTY)
        add = self._add
        add(
            _Change(
                zxid,
                parent_path,
                False,
                parent.version,
                parent.cversion,
                parent.aversion,
                parent.ephemeral_owner,
                parent.num_children - 1,
                parent.acl,
            )
        )
        add(_Change(zxid, path, True, 0, 0, 0, 0, 0, ()))
        return DeleteTxn(path)

    def _delete_container(self, path: Any, zxid: int) -> Any:
        if not isinstance(path, str):
            # Sent by a client: ZooKeeper reads the raw body as the path, and the
            # body's length prefix puts a NUL in it, so it is always BadArguments.
            raise PrepError(codes.BAD_ARGUMENTS)
        parent_path = checked_parent_of(path)
        if parent_path is None or path in SPECIAL_PATHS:
            raise PrepError(codes.BAD_ARGUMENTS)
        node = self._lookup(path)
        if node is None:
            raise PrepError(codes.NO_NODE)
        if node.num_children > 0:
            raise PrepError(codes.NOT_EMPTY)
        owner = node.ephemeral_owner
        if owner and ephemeral_type(owner, self.extended_types) == EPHEMERAL_NORMAL:
            raise PrepError(codes.BAD_VERSION)
        parent = self._lookup(parent_path)
        if parent is None:
            raise PrepError(codes.NO_NODE)
        parent_change = _copy(zxid, parent_path, parent)
        parent_change.num_children -= 1
        self._add(parent_change)
        self._add(_deleted(zxid, path))
        return DeleteTxn(path)

    def _set_data(self, opcode: int, record: Any, request: Any, zxid: int) -> Any:
        sessions = self.sessions
        if sessions is not None:
            err = sessions.check(request.session_id)
            if err:
                raise PrepError(err)
        path = record.path
        node = self._lookup(path)
        if node is None:
            # A node's path was checked when it was created: only a path naming no
            # node can be invalid, and ZooKeeper checks that first.
            if not is_valid_path(path):
                raise PrepError(codes.BAD_ARGUMENTS)
            raise PrepError(codes.NO_NODE)
        acl = node.acl
        if acl is not _OPEN_ACL and not self.acl.allowed(acl, _PERM_WRITE, request.auth):
            raise PrepError(codes.NO_AUTH)
        version = record.version
        current = node.version
        if version != -1 and version != current:
            raise PrepError(codes.BAD_VERSION)
        new_version = current + 1 if current < 0x7FFFFFFF else -0x80000000
        self._add(
            _Change(
                zxid,
                path,
                False,
                new_version,
                node.cversion,
                node.aversion,
                node.ephemeral_owner,
                node.num_children,
                acl,
            )
        )
        return SetDataTxn(path, record.data, new_version)

    def _set_acl(self, record: Any, request: Any, zxid: int) -> Any:
        self._check_session(request.session_id)
        path = record.path
        if not is_valid_path(path):
            raise PrepError(codes.BAD_ARGUMENTS)
        acl = self.acl.fixup(record.acl, request.auth, request.schemes)
        if acl is None:
            raise PrepError(codes.INVALID_ACL)
        node = self._lookup(path)
        if node is None:
            raise PrepError(codes.NO_NODE)
        self._check_acl(node, _PERM_ADMIN, request)
        version = record.version
        current = node.aversion
        if version != -1 and version != current:
            raise PrepError(codes.BAD_VERSION)
        new_version = _i32(current + 1)
        change = _copy(zxid, path, node)
        change.aversion = new_version
        change.acl = acl
        self._add(change)
        return SetACLTxn(path, acl, new_version)

    def _check(self, record: Any, request: Any) -> Any:
        self._check_session(request.session_id)
        path = record.path
        if not is_valid_path(path):
            raise PrepError(codes.BAD_ARGUMENTS)
        node = self._lookup(path)
        if node is None:
            raise PrepError(codes.NO_NODE)
        self._check_acl(node, _PERM_READ, request)
        version = record.version
        current = node.version
        if version != -1 and version != current:
            raise PrepError(codes.BAD_VERSION)
        # ZooKeeper logs the version a setData would give, not the checked one.
        return CheckVersionTxn(path, _i32(current + 1))

    def _close_session(self, session_id: int, zxid: int) -> Any:
        """
        Delete the session's ephemerals as the writes in flight leave them.

        Linear in the session's ephemerals and its own changes in flight: the
        candidates are the tree's ephemerals of the session plus the paths of changes
        in flight naming it as owner, each kept if, as the writes in flight leave it,
        it still exists with this owner (closing 10,000 sessions at once must not scan
        every outstanding change for each).
        """
        candidates = dict.fromkeys(self.tree.ephemerals.get(session_id, ()))
        owned = self._owned_in_flight.get(session_id)
        if owned:
            candidates.update(dict.fromkeys(owned))
        paths = []
        for path in candidates:
            node = self._lookup(path)
            if node is not None and node.ephemeral_owner == session_id:
                paths.append(path)
        for path in paths:
            parent_path = parent_of(path)
            parent = self._lookup(parent_path)
            if parent is not None:
                parent_change = _copy(zxid, parent_path, parent)
                parent_change.num_children -= 1
                self._add(parent_change)
            self._add(_deleted(zxid, path))
        return CloseSessionTxn(paths)
