"""
The znode tree, changed only by applying committed transactions.

L{DataTree.apply} follows ZooKeeper's C{DataTree.processTxn}: the same stat fields
move in the same way (create bumps the parent's stored cversion and pzxid; delete moves
only the parent's pzxid; setData moves mzxid, mtime and version; setACL only aversion),
a failed multi applies nothing and reports OK for the ops before the failing one and
RuntimeInconsistency after it, and a closeSession removes the session's ephemerals.
Zxid and time come from the txn header, never from a clock, so the same log rebuilds
the same tree.  No I/O and no Twisted here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Any

from zope.interface import implementer

from zkreg.data import codes
from zkreg.data.acl import OPEN_ACL
from zkreg.data.codes import (
    EPHEMERAL_CONTAINER,
    EPHEMERAL_NORMAL,
    EPHEMERAL_TTL,
    ephemeral_type,
    ttl_ephemeral_owner,
)
from zkreg.data.node import Node
from zkreg.data.quotas import QuotaTracker
from zkreg.data.txncodec import decode_sub_txn
from zkreg.interfaces import IReadView
from zkreg.proto.records import ACL, Id, Stat, TxnHeader

_CREATED = codes.EVENT_NODE_CREATED
_DELETED = codes.EVENT_NODE_DELETED
_DATA_CHANGED = codes.EVENT_NODE_DATA_CHANGED
_CHILDREN_CHANGED = codes.EVENT_NODE_CHILDREN_CHANGED

_OP_CREATE = codes.OP_CREATE
_OP_CREATE2 = codes.OP_CREATE2
_OP_CREATE_TTL = codes.OP_CREATE_TTL
_OP_CREATE_CONTAINER = codes.OP_CREATE_CONTAINER
_OP_DELETE = codes.OP_DELETE
_OP_DELETE_CONTAINER = codes.OP_DELETE_CONTAINER
_OP_SET_DATA = codes.OP_SET_DATA
_OP_RECONFIG = codes.OP_RECONFIG
_OP_SET_ACL = codes.OP_SET_ACL
_OP_CHECK = codes.OP_CHECK
_OP_MULTI = codes.OP_MULTI
_OP_ERROR = codes.OP_ERROR
_OP_CREATE_SESSION = codes.OP_CREATE_SESSION
_OP_CLOSE_SESSION = codes.OP_CLOSE_SESSION

_PERM_ALL = codes.PERM_ALL
_ANYONE = Id(scheme="world", id="anyone")
#: The open ACL, shared by identity (see L{zkreg.data.acl.OPEN_ACL}).
_OPEN_ACL = OPEN_ACL
#: The ACL of /zookeeper/config (ZOOKEEPER-2014: readable by anyone, nothing more).
_READ_ACL = (ACL(perms=codes.PERM_READ, id=_ANYONE),)


#: Paths whose descendant count L{DataTree.count_descendants} keeps up to date.
_DESCENDANT_COUNTS_KEPT = 256


class ApplyResult:
    """
    What applying one txn did (ZooKeeper's C{ProcessTxnResult}).

    @ivar type: the txn type applied (for a multi op turned into an error, C{-1}).
    @ivar err: 0, or the error code (from an ErrorTxn, or the failing multi op's).
    @ivar path: the path the txn was about, or L{None}.
    @ivar stat: the node's L{Stat} after create2/createTTL/createContainer, setData and
        setACL, else L{None}.
    @ivar multi: for a multi, the L{ApplyResult} of each op, else L{None}.
    @ivar events: on the top-level result only, the C{(event type, path)} pairs the txn
        triggers, in order (see L{zkreg.data.messages.Commit.events}).
    @ivar closed_session: the session a closeSession txn closed, else 0.
    """

    __slots__ = ("type", "err", "path", "stat", "multi", "events", "closed_session")

    def __init__(self, txn_type: int, err: int = 0, path: str | None = None) -> None:
        self.type = txn_type
        self.err = err
        self.path = path
        self.stat: Stat | None = None
        self.multi: list[ApplyResult] | None = None
        #: L{DataTree.apply} gives the top-level result its list
        self.events: list[tuple[int, str]] | tuple = ()
        self.closed_session = 0

    def __repr__(self) -> str:
        return f"<ApplyResult type={self.type} err={self.err} path={self.path!r}>"


@implementer(IReadView)
class DataTree:
    """
    The znodes, the ephemerals of each session, the containers and TTL nodes, the
    sessions of the log, and the zxid of the last applied txn.

    Provides L{zkreg.interfaces.IReadView} (C{get}, C{last_zxid}).

    @ivar nodes: every node by path (the root is C{"/"}).
    @ivar ephemerals: session id -> its ephemeral paths (ordered).
    @ivar containers: paths of container nodes (ordered set).
    @ivar ttls: paths of TTL nodes (ordered set).
    @ivar sessions: session id -> timeout in ms, for every session created and not
        closed in the log (what a restart must re-track).
    @ivar last_zxid: zxid of the last transaction applied.
    @ivar extended_types: whether TTL nodes are enabled (changes how ephemeralOwner
        values are read, as in ZooKeeper).
    """

    def __init__(self, extended_types: bool = False) -> None:
        self.extended_types = extended_types
        self.nodes: dict[str, Node] = {}
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, None] = {}
        self.sessions: dict[int, int] = {}
        self.last_zxid = 0
        self._acls: dict[tuple, tuple] = {}
        #: path and data bytes of every node, counted at the first ask (a tree may be
        #: filled directly by recovery or a replica load) and kept up to date by apply
        self._data_size: int | None = None
        #: path -> number of nodes below it, for the paths getAllChildrenNumber was
        #: asked about: counted once, then kept up to date by creates and deletes
        self._descendants: dict[str, int] = {}
        self.quotas = QuotaTracker(self)
        self._add_system_nodes()

    def _add_system_nodes(self) -> None:
        # As DataTree's constructor: every stat field 0, empty data; the config node's
        # ACL is set with setACL(version -1), which leaves its aversion at -1.
        root = Node("/", b"", self.intern_acl(_OPEN_ACL), 0, 0, 0)
        root.pzxid = 0
        proc = Node("/zookeeper", b"", root.acl, 0, 0, 0)
        quota = Node("/zookeeper/quota", b"", root.acl, 0, 0, 0)
        config = Node("/zookeeper/config", b"", self.intern_acl(_READ_ACL), 0, 0, 0)
        config.aversion = -1
        root.add_child(proc.path)
        proc.add_child(quota.path)
        proc.add_child(config.path)
        for node in (root, proc, quota, config):
            self.nodes[node.path] = node

    # -- IReadView ---------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        """@return: the node at C{path}, or L{None}."""
        return self.nodes.get(path)

    # -- queries -------------------------------------------------------------------

    def stat_of(self, node: Node) -> Stat:
        """@return: the client-visible L{Stat} of C{node}."""
        return node.stat(self.extended_types)

    def ephemerals_of(self, session_id: int) -> list[str]:
        """@return: the paths of the session's ephemeral nodes, oldest first."""
        paths = self.ephemerals.get(session_id)
        return [] if paths is None else list(paths)

    def count_descendants(self, path: str) -> int:
        """
        The number of nodes below C{path} (C{DataTree.getAllChildrenNumber}); for the
        root, every node but the root itself, the system nodes included.
        """
        if path == "/":
            return len(self.nodes) - 1
        known = self._descendants.get(path)
        if known is not None:
            return known
        node = self.nodes.get(path)
        if node is None:
            return 0
        count = self._count_below(path, node)
        if len(self._descendants) >= _DESCENDANT_COUNTS_KEPT:
            self._descendants.clear()
        self._descendants[path] = count
        return count

    def _count_below(self, path: str, node: Node) -> int:
        count = 0
        stack = [(path, node)]
        nodes = self.nodes
        while stack:
            base, current = stack.pop()
            if current.children:
                for child_path in current.children:
                    child = nodes.get(child_path)
                    if child is not None:
                        count += 1
                        stack.append((child_path, child))
        return count

    def _descendants_changed(self, parent_path: str, delta: int) -> None:
        """A node under C{parent_path} came or went: update the kept counts above it."""
        counts = self._descendants
        path = parent_path
        while len(path) > 1:
            count = counts.get(path)
            if count is not None:
                counts[path] = count + delta
            path = path[: path.rfind("/")] or "/"

    def node_count(self) -> int:
        """@return: the number of nodes, the root and the system nodes included."""
        return len(self.nodes)

    def approximate_data_size(self) -> int:
        """
        ZooKeeper's C{approximateDataSize}: the path and data bytes of every node.
        Counted once (a scan), then kept up to date by L{apply}, so that monitoring
        reads it in constant time.
        """
        if self._data_size is None:
            self._data_size = sum(
                len(path) + len(node.data or b"") for path, node in self.nodes.items()
            )
        return self._data_size

    def data_size_changed(self, delta: int) -> None:
        """A node's data (or a node) grew by C{delta} bytes outside L{apply}."""
        if self._data_size is not None:
            self._data_size += delta

    def intern_acl(self, acl: Any) -> tuple:
        """
        One shared tuple per distinct ACL (ZooKeeper's ACL cache, without reference
        counting: distinct ACLs are few); the open ACL is always L{OPEN_ACL}.
        """
        if acl is _OPEN_ACL:
            return acl
        key = tuple(acl)
        if len(key) == 1:
            # The open ACL, by far the most common, is always the one L{OPEN_ACL}
            # tuple (in every tree), found without hashing the records.
            entry = key[0]
            entry_id = entry.id
            if entry.perms == _PERM_ALL and entry_id.id == "anyone" and entry_id.scheme == "world":
                return _OPEN_ACL
        shared = self._acls.get(key)
        if shared is None:
            shared = self._acls[key] = key
        return shared

    def digest(self) -> str:
        """
        A hash of everything the log determines: every node (path, data, ACL, stat
        fields, children), the sessions and the last zxid.  Two trees built from the
        same log have the same digest.
        """
        sha = hashlib.sha256()
        update = sha.update
        pack = struct.Struct(">qqqqiiiqq").pack
        acl_bytes: dict[int, bytes] = {}  # id(ACL tuple) -> its bytes: ACLs are shared
        nodes = self.nodes
        # One update per node with the bytes the hash has always been fed (so digests
        # stored in older snapshots still match), built with few calls: the check
        # runs over every node at each restart.
        for path in sorted(nodes):
            node = nodes[path]
            data = node.data
            acl = node.acl
            acl_encoded = acl_bytes.get(id(acl))
            if acl_encoded is None:
                acl_encoded = acl_bytes[id(acl)] = "".join(
                    f"{entry.perms}|{entry.id.scheme}|{entry.id.id};" for entry in acl
                ).encode()
            update(
                b"".join(
                    (
                        path.encode("utf-8", "surrogatepass"),
                        b"\x00N" if data is None else b"\x00D%d:" % len(data),
                        b"" if data is None else data,
                        acl_encoded,
                        pack(*node.persisted_fields()),
                        "/".join(node.child_names()).encode("utf-8", "surrogatepass")
                        if node.children
                        else b"",
                    )
                )
            )
        for session_id in sorted(self.sessions):
            sha.update(b"S%d:%d" % (session_id, self.sessions[session_id]))
        sha.update(b"Z%d" % self.last_zxid)
        return sha.hexdigest()

    def iter_nodes(self) -> Iterator[tuple[str, Node]]:
        """@return: C{(path, node)} for every node, parents before children."""
        stack = ["/"]
        nodes = self.nodes
        while stack:
            path = stack.pop()
            node = nodes[path]
            yield path, node
            if node.children:
                stack.extend(reversed(node.children))

    # -- apply -----------------------------------------------------------------------

    def apply(self, hdr: TxnHeader, txn: Any) -> ApplyResult:
        """
        Apply one committed transaction.

        @param hdr: its header: C{type}, C{zxid}, C{time} and C{clientId} are used.
        @param txn: its record (L{None} only for a closeSession logged without one).
        @return: an L{ApplyResult} with the watch events in C{events}.
        """
        events: list[tuple[int, str]] = []
        result = self._apply_one(hdr.type, hdr, txn, events)
        result.events = events
        if hdr.zxid > self.last_zxid:
            self.last_zxid = hdr.zxid
        return result

    def _apply_one(
        self, txn_type: int, hdr: TxnHeader, txn: Any, events: list[tuple[int, str]]
    ) -> ApplyResult:
        if txn_type == _OP_CREATE or txn_type == _OP_CREATE2:
            owner = hdr.clientId if txn.ephemeral else 0
            return self._create(txn_type, txn, owner, hdr, events)
        if txn_type == _OP_SET_DATA or txn_type == _OP_RECONFIG:
            result = ApplyResult(txn_type, 0, txn.path)
            node = self.nodes.get(txn.path)
            if node is None:
                result.err = codes.NO_NODE
                return result
            if self._data_size is not None:
                self._data_size += len(txn.data or b"") - node.data_length
            old_data = node.data if self.quotas.paths else None
            node.set_data(txn.data, hdr.zxid, hdr.time, txn.version)
            result.stat = node.stat(self.extended_types)
            if self.quotas.paths:
                self.quotas.data_changed(txn.path, old_data, txn.data)
            events.append((_DATA_CHANGED, txn.path))
            return result
        if txn_type == _OP_DELETE or txn_type == _OP_DELETE_CONTAINER:
            result = ApplyResult(txn_type, 0, txn.path)
            result.err = self._delete(txn.path, hdr.zxid, events)
            return result
        if txn_type == _OP_ERROR:
            return ApplyResult(_OP_ERROR, txn.err)
        if txn_type == _OP_MULTI:
            return self._multi(hdr, txn, events)
        if txn_type == _OP_SET_ACL:
            result = ApplyResult(txn_type, 0, txn.path)
            node = self.nodes.get(txn.path)
            if node is None:
                result.err = codes.NO_NODE
                return result
            node.acl = self.intern_acl(txn.acl)
            node.aversion = txn.version
            result.stat = node.stat(self.extended_types)
            return result
        if txn_type == _OP_CREATE_CONTAINER:
            return self._create(txn_type, txn, codes.CONTAINER_EPHEMERAL_OWNER, hdr, events)
        if txn_type == _OP_CREATE_TTL:
            return self._create(txn_type, txn, ttl_ephemeral_owner(txn.ttl), hdr, events)
        if txn_type == _OP_CHECK:
            return ApplyResult(txn_type, 0, txn.path)
        if txn_type == _OP_CREATE_SESSION:
            self.sessions[hdr.clientId] = txn.timeOut
            return ApplyResult(txn_type)
        if txn_type == _OP_CLOSE_SESSION:
            return self._close_session(hdr, txn, events)
        raise ValueError(f"cannot apply a txn of type {txn_type}")

    def _create(
        self,
        txn_type: int,
        txn: Any,
        owner: int,
        hdr: TxnHeader,
        events: list[tuple[int, str]],
    ) -> ApplyResult:
        path = txn.path
        result = ApplyResult(txn_type, 0, path)
        cut = path.rfind("/")
        parent_path = path[:cut] if cut > 0 else "/"
        nodes = self.nodes
        parent = nodes.get(parent_path)
        if parent is None:
            result.err = codes.NO_NODE
            return result
        children = parent.children
        if children is None:
            children = parent.extras()
        elif path in children:
            result.err = codes.NODE_EXISTS
            # A replayed create of a node a fuzzy snapshot already holds: ZooKeeper
            # still moves the parent's cversion and pzxid forward.
            if txn_type == _OP_CREATE:
                self._set_cversion_pzxid(parent, txn.parentCVersion, hdr.zxid)
            return result
        zxid = hdr.zxid
        parent_cversion = txn.parentCVersion
        if parent_cversion == -1:
            parent_cversion = children.cversion + 1
        if parent_cversion > children.cversion:
            children.cversion = parent_cversion
            children.pzxid = zxid
        node = Node(path, txn.data, self.intern_acl(txn.acl), zxid, hdr.time, owner)
        # The same string object keys the index and the parent's children.
        children[path] = None
        nodes[path] = node
        if self._descendants:
            self._descendants_changed(parent_path, 1)
        if self._data_size is not None:
            self._data_size += len(path) + len(txn.data or b"")
        if owner:
            kind = ephemeral_type(owner, self.extended_types)
            if kind == EPHEMERAL_NORMAL:
                paths = self.ephemerals.get(owner)
                if paths is None:
                    paths = self.ephemerals[owner] = {}
                paths[path] = None
            elif kind == EPHEMERAL_CONTAINER:
                self.containers[path] = None
            elif kind == EPHEMERAL_TTL:
                self.ttls[path] = None
        if txn_type != _OP_CREATE:
            result.stat = node.stat(self.extended_types)
        if self.quotas.paths or parent_path.startswith("/zookeeper/quota"):
            self.quotas.created(parent_path, path[cut + 1 :], path, txn.data)
        events.append((_CREATED, path))
        events.append((_CHILDREN_CHANGED, parent_path))
        return result

    @staticmethod
    def _set_cversion_pzxid(node: Node, cversion: int, zxid: int) -> None:
        if cversion == -1:
            cversion = node.cversion + 1
        if cversion > node.cversion:
            node.cversion = cversion
            node.pzxid = zxid

    def _delete(self, path: str, zxid: int, events: list[tuple[int, str]]) -> int:
        cut = path.rfind("/")
        parent_path = path[:cut] if cut > 0 else "/"
        nodes = self.nodes
        parent = nodes.get(parent_path)
        if parent is None:
            return codes.NO_NODE
        # As ZooKeeper: the parent's pzxid moves even if the child is already gone.
        extras = parent.children
        if extras is None:
            if zxid > parent.czxid:
                parent.pzxid = zxid
        else:
            extras.pop(path, None)
            if zxid > extras.pzxid:
                extras.pzxid = zxid
        node = nodes.pop(path, None)
        if node is None:
            return codes.NO_NODE
        if self._descendants:
            self._descendants.pop(path, None)
            self._descendants_changed(parent_path, -1)
        if self._data_size is not None:
            self._data_size -= len(path) + node.data_length
        owner = node.ephemeral_owner
        if owner:
            kind = ephemeral_type(owner, self.extended_types)
            if kind == EPHEMERAL_NORMAL:
                paths = self.ephemerals.get(owner)
                if paths is not None:
                    paths.pop(path, None)
                    if not paths:
                        del self.ephemerals[owner]
            elif kind == EPHEMERAL_CONTAINER:
                self.containers.pop(path, None)
            elif kind == EPHEMERAL_TTL:
                self.ttls.pop(path, None)
        if self.quotas.paths or parent_path.startswith("/zookeeper/quota"):
            self.quotas.deleted(parent_path, path[cut + 1 :], path, node.data)
        events.append((_DELETED, path))
        events.append((_CHILDREN_CHANGED, parent_path))
        return 0

    def _close_session(
        self, hdr: TxnHeader, txn: Any, events: list[tuple[int, str]]
    ) -> ApplyResult:
        session_id = hdr.clientId
        result = ApplyResult(_OP_CLOSE_SESSION)
        result.closed_session = session_id
        self.sessions.pop(session_id, None)
        local = self.ephemerals.pop(session_id, None)
        zxid = hdr.zxid
        listed = txn.paths2Delete if txn is not None else None
        if listed:
            for path in listed:
                self._delete(path, zxid, events)
                if local is not None:
                    local.pop(path, None)
        if local:
            # Ephemerals the txn did not list (ZooKeeper logs a warning and deletes
            # them too); sorted so replicas delete in the same order.
            for path in sorted(local):
                self._delete(path, zxid, events)
        return result

    def _multi(self, hdr: TxnHeader, txn: Any, events: list[tuple[int, str]]) -> ApplyResult:
        result = ApplyResult(_OP_MULTI)
        results: list[ApplyResult] = []
        result.multi = results
        sub_txns = txn.txns or ()
        failed = False
        for sub in sub_txns:
            if sub.type == _OP_ERROR:
                failed = True
                break
        post_failed = False
        for sub in sub_txns:
            sub_type = sub.type
            if failed:
                if sub_type == _OP_ERROR:
                    post_failed = True
                    sub_result = ApplyResult(_OP_ERROR, decode_sub_txn(_OP_ERROR, sub.data).err)
                else:
                    err = codes.RUNTIME_INCONSISTENCY if post_failed else codes.OK
                    sub_result = ApplyResult(_OP_ERROR, err)
            else:
                sub_result = self._apply_one(
                    sub_type, hdr, decode_sub_txn(sub_type, sub.data), events
                )
            results.append(sub_result)
            if sub_result.err and not result.err:
                result.err = sub_result.err
        return result
