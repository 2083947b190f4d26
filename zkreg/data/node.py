"""
One znode: its data, ACL, persisted stat fields and child names.

Fields mirror ZooKeeper's C{DataNode} with its C{StatPersisted}; in particular
C{cversion} is the I{stored} child version, which counts child creations only (it is
what sequential names are numbered from), while the client-visible C{Stat.cversion}
is C{2 * cversion - numChildren} (DataNode.copyStat: every create but the live
children was followed by a delete).
"""

from __future__ import annotations

import struct

from zkreg.data.codes import EPHEMERAL_NORMAL, ephemeral_type
from zkreg.proto.records import Stat

#: The jute encoding of a Stat: czxid, mzxid, ctime, mtime, version, cversion,
#: aversion, ephemeralOwner, dataLength, numChildren, pzxid.
_STAT_ENCODING = struct.Struct(">qqqqiiiqiiq")
_pack_stat = _STAT_ENCODING.pack


class Node:
    """
    A znode.  Kept small (C{__slots__}, no cached records, children keyed by the very
    path strings the tree's index holds): a registry holds a million of them.

    @ivar path: the node's path, the very string object that keys the tree's index
        (and the parent's children): a watch on the node keys its table with it too,
        so the watch costs no string of its own.

    @ivar data: the node's bytes, or L{None} when created with null data (a Java
        client may; it reads back as null, and the system nodes hold C{b""}).
    @ivar acl: the node's ACL, a tuple of L{zkreg.proto.records.ACL}, shared between
        nodes with equal ACLs (see L{zkreg.data.tree.DataTree.intern_acl}).
    @ivar czxid: zxid of the create.
    @ivar mzxid: zxid of the last setData (or the create).
    @ivar ctime: create time, ms since the epoch, from the txn header.
    @ivar mtime: last setData time.
    @ivar version: data version.
    @ivar cversion: stored child version (number of child creates).
    @ivar aversion: ACL version.
    @ivar ephemeral_owner: session id for an ephemeral, the container marker, a TTL
        encoding, or 0.
    @ivar pzxid: zxid of the last child create or delete.
    @ivar children: the children's I{full paths} in creation order (a dict used as an
        ordered set), or L{None} while the node has never had a child, which saves
        memory on leaves.  Full paths, not names: the tree stores the same string
        object as its index key, so a child costs no string of its own (names are
        cut off on demand, L{child_names}).  Change it with L{add_child} and
        L{remove_child}.
    """

    __slots__ = (
        "path",
        "data",
        "acl",
        "czxid",
        "mzxid",
        "ctime",
        "mtime",
        "version",
        "cversion",
        "aversion",
        "ephemeral_owner",
        "pzxid",
        "children",
    )

    def __init__(
        self,
        path: str,
        data: bytes | None,
        acl: tuple,
        czxid: int,
        ctime: int,
        ephemeral_owner: int,
    ) -> None:
        self.path = path
        self.data = data
        self.acl = acl
        self.czxid = czxid
        self.mzxid = czxid
        self.ctime = ctime
        self.mtime = ctime
        self.version = 0
        self.cversion = 0
        self.aversion = 0
        self.ephemeral_owner = ephemeral_owner
        self.pzxid = czxid
        self.children: dict[str, None] | None = None

    @classmethod
    def restored(
        cls,
        path: str,
        data: bytes | None,
        acl: tuple,
        czxid: int,
        mzxid: int,
        ctime: int,
        mtime: int,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        pzxid: int,
    ) -> Node:
        """
        A node with every persisted field given (a snapshot load, a replica copy).
        """
        node = cls.__new__(cls)
        node.path = path
        node.data = data
        node.acl = acl
        node.czxid = czxid
        node.mzxid = mzxid
        node.ctime = ctime
        node.mtime = mtime
        node.version = version
        node.cversion = cversion
        node.aversion = aversion
        node.ephemeral_owner = ephemeral_owner
        node.pzxid = pzxid
        node.children = None
        return node

    @property
    def num_children(self) -> int:
        """Number of live children."""
        children = self.children
        return 0 if children is None else len(children)

    def add_child(self, path: str) -> None:
        """Add the child at C{path} (the full path, as the tree's index keys it)."""
        children = self.children
        if children is None:
            self.children = {path: None}
        else:
            children[path] = None

    def remove_child(self, path: str) -> None:
        """Drop the child at C{path}, if there."""
        children = self.children
        if children is not None:
            children.pop(path, None)

    def has_child(self, path: str) -> bool:
        """@return: whether the child at C{path} is there."""
        children = self.children
        return children is not None and path in children

    def child_paths(self) -> list[str]:
        """@return: a new list of the children's full paths, in creation order."""
        children = self.children
        return [] if children is None else list(children)

    def child_names(self) -> list[str]:
        """@return: a new list of the child names, in creation order."""
        children = self.children
        if not children:
            return []
        # Every child path is this node's path, a "/" (none more under the root) and
        # the name, so one cut serves them all.
        cut = next(iter(children)).rfind("/") + 1
        return [path[cut:] for path in children]

    def stat_fields(self, extended_types: bool = False) -> tuple[int, ...]:
        """
        The client-visible stat's fields, as C{DataNode.copyStat} fills them, in the
        record's order (czxid, mzxid, ctime, mtime, version, cversion, aversion,
        ephemeralOwner, dataLength, numChildren, pzxid): L{stat} builds the record
        from them, L{stat_bytes} packs them.

        @param extended_types: whether TTL owners are recognised (they and containers
            show an ephemeralOwner of 0 to clients); constant for one tree.
        """
        children = self.children
        num_children = 0 if children is None else len(children)
        owner = self.ephemeral_owner
        if owner and ephemeral_type(owner, extended_types) != EPHEMERAL_NORMAL:
            owner = 0
        cversion = self.cversion * 2 - num_children
        if not -0x80000000 <= cversion <= 0x7FFFFFFF:
            cversion = (cversion + 0x80000000) % 0x100000000 - 0x80000000  # Java int
        data = self.data
        return (
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            cversion,
            self.aversion,
            owner,
            0 if data is None else len(data),
            num_children,
            self.pzxid,
        )

    def stat(self, extended_types: bool = False) -> Stat:
        """
        The client-visible L{Stat}: a new record on every call, built positionally
        (eleven keywords cost four times as much, once per setData and create2).
        """
        return Stat(*self.stat_fields(extended_types))

    def stat_bytes(self, extended_types: bool = False) -> bytes:
        """
        The jute encoding of L{stat}, packed straight from the fields with no record
        built: a getData reply appends it (header, data, stat).  Packing costs about
        as much as a cache lookup did, and keeps no bytes on the node.
        """
        return _pack_stat(*self.stat_fields(extended_types))

    def __repr__(self) -> str:
        return (
            f"<Node czxid={self.czxid:#x} mzxid={self.mzxid:#x} version={self.version}"
            f" cversion={self.cversion} children={self.num_children}>"
        )
