"""
Turn a write request into a transaction, or an error, as ZooKeeper's
C{PrepRequestProcessor} does.

Prep validates against the tree I{plus} the changes of the writes already prepped but
not yet applied (ZooKeeper's outstanding change records), so pipelined writes see each
other exactly as if each had been applied before the next arrived: versions, sequence
numbers, existence, child counts and ACLs.  It mutates nothing in the tree.

Like ZooKeeper, every write gets a zxid and a txn, even a failing one: its header type
becomes C{error} and its txn an L{ErrorTxn} with the code, which is logged and applied
(applying it only advances the tree's zxid), so the reply carries that zxid.  A multi
stays a multi txn whose ops before the failing one keep their txns, the failing one an
ErrorTxn with its code and the ones after ErrorTxn(RuntimeInconsistency); applying it
changes nothing (see L{zkreg.data.tree.DataTree.apply}).

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
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.codes import EPHEMERAL_NORMAL, ephemeral_type
from zkreg.data.paths import SPECIAL_PATHS, checked_parent_of, is_valid_path, parent_of
from zkreg.data.tree import OPEN_ACL as _OPEN_ACL
from zkreg.data.tree import DataTree
from zkreg.proto.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

_PERM_READ = codes.PERM_READ
_PERM_WRITE = codes.PERM_WRITE
_PERM_CREATE = codes.PERM_CREATE
_PERM_DELETE = codes.PERM_DELETE
_PERM_ADMIN = codes.PERM_ADMIN
_PERM_ALL = codes.PERM_ALL

_OP_CREATE = codes.OP_CREATE
_OP_CREATE2 = codes.OP_CREATE2
_OP_CREATE_CONTAINER = codes.OP_CREATE_CONTAINER
_OP_CREATE_TTL = codes.OP_CREATE_TTL
_OP_DELETE = codes.OP_DELETE
_OP_DELETE_CONTAINER = codes.OP_DELETE_CONTAINER
_OP_SET_DATA = codes.OP_SET_DATA
_OP_SET_ACL = codes.OP_SET_ACL
_OP_CHECK = codes.OP_CHECK
_OP_MULTI = codes.OP_MULTI
_OP_ERROR = codes.OP_ERROR

_CREATE_OPS = codes.CREATE_OPS
_SEQUENTIAL_FLAGS = frozenset(
    {
        codes.FLAG_PERSISTENT_SEQUENTIAL,
        codes.FLAG_EPHEMERAL_SEQUENTIAL,
        codes.FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL,
    }
)
_EPHEMERAL_FLAGS = frozenset({codes.FLAG_EPHEMERAL, codes.FLAG_EPHEMERAL_SEQUENTIAL})
_TTL_FLAGS = frozenset({codes.FLAG_PERSISTENT_WITH_TTL, codes.FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL})
#: Write ops a multi may hold (after its create ops are typed by their flags).
_MULTI_WRITE_OPS = frozenset(
    {_OP_CREATE, _OP_CREATE_CONTAINER, _OP_CREATE_TTL, _OP_DELETE, _OP_SET_DATA, _OP_CHECK}
)


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


class _Change:
    """
    A node as the writes in flight leave it (ZooKeeper's C{ChangeRecord}).

    Has the attributes of L{zkreg.data.node.Node} that prep reads, so lookups return
    either without copying.  C{deleted} marks a node a write in flight removes.
    """

    __slots__ = (
        "zxid",
        "path",
        "deleted",
        "version",
        "cversion",
        "aversion",
        "ephemeral_owner",
        "num_children",
        "acl",
    )

    def __init__(
        self,
        zxid: int,
        path: str,
        deleted: bool,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        num_children: int,
        acl: Any,
    ) -> None:
        self.zxid = zxid
        self.path = path
        self.deleted = deleted
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.num_children = num_children
        self.acl = acl


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


class Prep:
    """
    The prep stage of one data server.

    @ivar tree: the applied state.
    @ivar acl: the L{AclChecker}.
    @ivar extended_types: TTL nodes allowed (else createTTL is Unimplemented).
    @ivar sessions: answers C{check(session_id) -> 0 or error code}; L{None} skips
        session checks (state-machine tests).
    """

    def __init__(
        self,
        tree: DataTree,
        acl: AclChecker,
        extended_types: bool = False,
        sessions: ISessionChecker | None = None,
    ) -> None:
        self.tree = tree
        self.acl = acl
        self.extended_types = extended_types
        self.sessions = sessions
        self._outstanding: deque[_Change] = deque()
        self._latest: dict[str, _Change] = {}
        self._staged: dict[str, _Change] | None = None
        self._staged_order: list[_Change] = []
        #: session id -> {path: number of outstanding changes of that path naming the
        #: session as ephemeral owner}: the candidates a closeSession must add to the
        #: tree's ephemerals, found without scanning every outstanding change.
        self._owned_in_flight: dict[int, dict[str, int]] = {}
        #: The prep of each common opcode, all called C{(opcode, record, request,
        #: zxid)}: one dict lookup instead of a chain of tests per write.
        self._handlers: dict[int, Any] = dict.fromkeys(_CREATE_OPS, self._create)
        self._handlers[_OP_SET_DATA] = self._set_data
        self._handlers[_OP_DELETE] = self._delete

    # -- outstanding changes ---------------------------------------------------------

    def committed(self, zxid: int) -> None:
        """
        Forget the changes of every txn up to C{zxid}: the tree now holds them.
        """
        outstanding = self._outstanding
        latest = self._latest
        owned_in_flight = self._owned_in_flight
        while outstanding and outstanding[0].zxid <= zxid:
            change = outstanding.popleft()
            path = change.path
            if latest.get(path) is change:
                del latest[path]
            owner = change.ephemeral_owner
            if owner and not change.deleted:
                owned = owned_in_flight.get(owner)
                if owned is not None:
                    left = owned.get(path, 0) - 1
                    if left > 0:
                        owned[path] = left
                    else:
                        owned.pop(path, None)
                        if not owned:
                            del owned_in_flight[owner]

    def reset(self) -> None:
        """Drop every outstanding change (the writes in flight were abandoned)."""
        self._outstanding.clear()
        self._latest.clear()
        self._owned_in_flight.clear()

    @property
    def outstanding_count(self) -> int:
        """Number of change records not yet applied."""
        return len(self._outstanding)

    def _lookup(self, path: str) -> Any:
        """The node at C{path} as the writes in flight leave it, or L{None}."""
        staged = self._staged
        if staged is not None:
            change = staged.get(path)
            if change is not None:
                return None if change.deleted else change
        change = self._latest.get(path)
        if change is not None:
            return None if change.deleted else change
        return self.tree.nodes.get(path)

    def _add(self, change: _Change) -> None:
        staged = self._staged
        if staged is not None:
            staged[change.path] = change
            self._staged_order.append(change)
        else:
            self._outstanding.append(change)
            self._latest[change.path] = change
            owner = change.ephemeral_owner
            if owner and not change.deleted:
                owned = self._owned_in_flight.get(owner)
                if owned is None:
                    owned = self._owned_in_flight[owner] = {}
                owned[change.path] = owned.get(change.path, 0) + 1

    # -- entry point -------------------------------------------------------------------

    def prep(self, request: Any, zxid: int, time_ms: int) -> tuple[TxnHeader, Any]:
        """
        Turn a write request into its transaction.

        @param request: a L{zkreg.data.messages.Request} for a write op (create,
            create2, createContainer, createTTL, delete, setData, setACL, check, multi,
            reconfig, createSession with C{record} the timeout in ms, closeSession,
            deleteContainer with C{record} the path as a C{str}; from a client, with
            any other record, it is BadArguments as in ZooKeeper).  A record that is L{None} or of
            the wrong shape (a body that did not decode) gives MarshallingError, with
            the zxid taken, as in ZooKeeper.
        @param zxid: the zxid the sequencer assigned.
        @param time_ms: the txn time (wall clock ms) to stamp in the header.
        @return: C{(TxnHeader, txn)}; a failed request has header type C{-1} (error)
            and an L{ErrorTxn}.
        """
        opcode = txn_type = request.opcode
        try:
            handler = self._handlers.get(opcode)
            if handler is not None:
                txn = handler(opcode, request.record, request, zxid)
            elif opcode == _OP_MULTI:
                txn = self._multi(request, zxid)
            else:
                txn = self._prep_op(opcode, request.record, request, zxid)
        except PrepError as failure:
            txn_type = _OP_ERROR
            txn = ErrorTxn(failure.code)
        except Exception:
            # A record of the wrong shape (or none, for a body that did not decode):
            # ZooKeeper's catch-all answers MarshallingError with the zxid taken.  No
            # change was recorded (records are added only after every check passed).
            txn_type = _OP_ERROR
            txn = ErrorTxn(codes.MARSHALLING_ERROR)
        return TxnHeader(request.session_id, request.cxid, zxid, time_ms, txn_type), txn

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
        if flags in _TTL_FLAGS:
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

    def _multi(self, request: Any, zxid: int) -> Any:
        ops = request.record
        # Type each op as ZooKeeper's MultiOperationRecord does: create ops by their
        # flags; a read op, or a create whose flags ask for a TTL without one, makes
        # the whole request a MarshallingError.
        typed: list[tuple[int, Any]] = []
        for opcode, record in ops:
            if opcode in _CREATE_OPS:
                flags = record.flags
                if flags in _TTL_FLAGS:
                    if opcode != _OP_CREATE_TTL:
                        raise PrepError(codes.MARSHALLING_ERROR)
                    opcode = _OP_CREATE_TTL
                elif flags == codes.FLAG_CONTAINER:
                    opcode = _OP_CREATE_CONTAINER
                else:
                    if opcode == _OP_CREATE_TTL:
                        # Op.create(..., flags, ttl) drops the ttl of a non-TTL mode.
                        record = _CreateView(record)
                    opcode = _OP_CREATE
            elif opcode not in _MULTI_WRITE_OPS:
                raise PrepError(codes.MARSHALLING_ERROR)
            typed.append((opcode, record))

        self._staged = {}
        self._staged_order = []
        txns: list[Any] = []
        failed = False
        try:
            for opcode, record in typed:
                if failed:
                    txns.append(Txn(_OP_ERROR, _RUNTIME_INCONSISTENCY_TXN))
                    continue
                try:
                    txn = self._prep_op(opcode, record, request, zxid)
                except PrepError as failure:
                    failed = True
                    txns.append(Txn(_OP_ERROR, ErrorTxn(failure.code).serialize()))
                    continue
                txns.append(Txn(opcode, txn.serialize()))
            staged_order = self._staged_order
        finally:
            self._staged = None
            self._staged_order = []
        if not failed:
            for change in staged_order:
                self._add(change)
        return MultiTxn(txns)


_RUNTIME_INCONSISTENCY_TXN = ErrorTxn(codes.RUNTIME_INCONSISTENCY).serialize()


class _CreateView:
    """A createTTL op of a non-TTL mode read as the plain create ZooKeeper makes of it."""

    __slots__ = ("path", "data", "acl", "flags")

    def __init__(self, record: Any) -> None:
        self.path = record.path
        self.data = record.data
        self.acl = record.acl
        self.flags = record.flags
