"""
One znode: its data, ACL, persisted stat fields and child names.

Fields mirror ZooKeeper's C{DataNode} with its C{StatPersisted}; in particular
C{cversion} is the I{stored} child version, which counts child creations only (it is
what sequential names are numbered from), while the client-visible C{Stat.cversion}
is C{2 * cversion - numChildren} (DataNode.copyStat: every create but the live
children was followed by a delete).
"""

from __future__ import annotations

from zkreg.data.codes import EPHEMERAL_NORMAL, ephemeral_type
from zkreg.proto.records import Stat


class Node:
    """
    A znode.  Kept small with C{__slots__}: a registry holds many of them.

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
    @ivar children: child names in creation order (a dict used as an ordered set), or
        L{None} while the node has never had a child, which saves memory on leaves.
    """

    __slots__ = (
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
        "_stat",
        "_stat_bytes",
    )

    def __init__(
        self,
        data: bytes | None,
        acl: tuple,
        czxid: int,
        ctime: int,
        ephemeral_owner: int,
    ) -> None:
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
        self._stat: Stat | None = None
        self._stat_bytes: tuple[Stat, bytes] | None = None

    @property
    def num_children(self) -> int:
        """Number of live children."""
        children = self.children
        return 0 if children is None else len(children)

    def child_names(self) -> list[str]:
        """@return: a new list of the child names, in creation order."""
        children = self.children
        return [] if children is None else list(children)

    def changed(self) -> None:
        """
        Forget the cached L{Stat}: call after changing any field (the tree does).
        """
        self._stat = None

    def stat(self, extended_types: bool = False) -> Stat:
        """
        The client-visible L{Stat}, as C{DataNode.copyStat} fills it.

        The record is cached until L{changed} and shared by every caller: treat it as
        read-only.  (Reads build one per request otherwise.)

        @param extended_types: whether TTL owners are recognised (they and containers
            show an ephemeralOwner of 0 to clients); constant for one tree.
        """
        cached = self._stat
        if cached is not None:
            return cached
        children = self.children
        num_children = 0 if children is None else len(children)
        owner = self.ephemeral_owner
        if owner and ephemeral_type(owner, extended_types) != EPHEMERAL_NORMAL:
            owner = 0
        cversion = self.cversion * 2 - num_children
        if not -0x80000000 <= cversion <= 0x7FFFFFFF:
            cversion = (cversion + 0x80000000) % 0x100000000 - 0x80000000  # Java int
        stat = self._stat = Stat(
            czxid=self.czxid,
            mzxid=self.mzxid,
            ctime=self.ctime,
            mtime=self.mtime,
            version=self.version,
            cversion=cversion,
            aversion=self.aversion,
            ephemeralOwner=owner,
            dataLength=0 if self.data is None else len(self.data),
            numChildren=num_children,
            pzxid=self.pzxid,
        )
        return stat

    def stat_bytes(self, extended_types: bool = False) -> bytes:
        """
        The jute encoding of L{stat}, cached with it: a reply can append it without
        serializing the record again (a getData reply is header, data, stat).

        The bytes are kept with the very L{Stat} they encode and reused only while
        L{stat} returns that same record, so whatever invalidates the record
        invalidates them too.
        """
        stat = self.stat(extended_types)
        cached = self._stat_bytes
        if cached is not None and cached[0] is stat:
            return cached[1]
        encoded = stat.serialize()
        self._stat_bytes = (stat, encoded)
        return encoded

    def __repr__(self) -> str:
        return (
            f"<Node czxid={self.czxid:#x} mzxid={self.mzxid:#x} version={self.version}"
            f" cversion={self.cversion} children={self.num_children}>"
        )
