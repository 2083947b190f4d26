"""
One znode: its data, ACL, persisted stat fields and child names.

Fields mirror ZooKeeper's C{DataNode} with its C{StatPersisted}; in particular
C{cversion} is the I{stored} child version, which counts child creations only (it is
what sequential names are numbered from), while the client-visible C{Stat.cversion}
is C{2 * cversion - numChildren} (DataNode.copyStat: every create but the live
children was followed by a delete).

A registry holds a million nodes, so a node is laid out for memory:

  - the stat fields every node has (czxid, mzxid, ctime, mtime, version, aversion,
    ephemeralOwner) are packed with the data's length and the data into I{one}
    bytes object, the node's record: one object header for all of them, and no int
    object per zxid or time (a large int costs 32 bytes);
  - what only some nodes have lives in a L{NodeExtras}, made on first need: the
    children with the stored cversion and the pzxid (a leaf that never had a child
    reads cversion 0 and its czxid as pzxid, as ZooKeeper's fresh node does), and
    data of L{LARGE_DATA} bytes or more, kept out of the record so that every reply
    of the node shares that one bytes object instead of copying it.

A leaf of 100 bytes costs a 64-byte node and a 192-byte record, where separate
fields cost a 144-byte node, a 144-byte data object and a 32-byte zxid.  Changing a
field rewrites the record (a setData makes a new data object anyway); L{set_data}
moves the four fields of a setData in one rewrite.
"""

from __future__ import annotations

import struct

from zkreg.data.codes import EPHEMERAL_NORMAL, ephemeral_type
from zkreg.proto.records import Stat

#: The jute encoding of a Stat: czxid, mzxid, ctime, mtime, version, cversion,
#: aversion, ephemeralOwner, dataLength, numChildren, pzxid.
_STAT_ENCODING = struct.Struct(">qqqqiiiqiiq")
_pack_stat = _STAT_ENCODING.pack

#: The head of a node's record: czxid, mzxid, ctime, mtime, version, aversion,
#: ephemeralOwner, and the data's length, -1 for null data (which a Java client may
#: create).  Data under L{LARGE_DATA} bytes follows, so from the length on the
#: record is the data as jute encodes a buffer (L{Node.data_reply}).
_HEAD = struct.Struct(">qqqqiiqi")
_pack_head = _HEAD.pack
_unpack_head = _HEAD.unpack_from
_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")
_LENGTH_AT = 48
_DATA_AT = _HEAD.size
_NULL_LENGTH = _I32.pack(-1)

#: Data this large or larger is kept in its own bytes object (L{NodeExtras}).
LARGE_DATA = 16384


class NodeExtras(dict):
    """
    What only some nodes have.  The dict itself is the node's children, I{full
    paths} in creation order (used as an ordered set): the tree keys its index with
    the same string objects, so a child costs no string of its own.

    @ivar cversion: the stored child version (number of child creates).
    @ivar pzxid: zxid of the last child create or delete.
    @ivar large_data: the node's data when it is L{LARGE_DATA} bytes or more, else
        L{None}.
    """

    __slots__ = ("cversion", "pzxid", "large_data")

    def __init__(self, cversion: int, pzxid: int) -> None:
        super().__init__()
        self.cversion = cversion
        self.pzxid = pzxid
        self.large_data: bytes | None = None


def _field(at: int, encoding: struct.Struct, writable: bool) -> property:
    """A property reading (and, if C{writable}, rewriting) one field of the head."""
    unpack = encoding.unpack_from
    pack = encoding.pack
    end = at + encoding.size

    def get(node: Node) -> int:
        return unpack(node.record, at)[0]

    def set_(node: Node, value: int) -> None:
        record = node.record
        node.record = record[:at] + pack(value) + record[end:]

    return property(get, set_ if writable else None)


def _client_stat(
    head: tuple[int, ...], extras: NodeExtras | None, extended_types: bool
) -> tuple[int, ...]:
    """
    L{Node.stat_fields} from the record's unpacked head and the node's extras.
    """
    czxid, mzxid, ctime, mtime, version, aversion, owner, length = head
    if owner and ephemeral_type(owner, extended_types) != EPHEMERAL_NORMAL:
        owner = 0
    if length < 0:
        length = 0
    if extras is None:
        return (czxid, mzxid, ctime, mtime, version, 0, aversion, owner, length, 0, czxid)
    num_children = len(extras)
    cversion = extras.cversion * 2 - num_children
    if not -0x80000000 <= cversion <= 0x7FFFFFFF:
        cversion = (cversion + 0x80000000) % 0x100000000 - 0x80000000  # Java int
    return (
        czxid,
        mzxid,
        ctime,
        mtime,
        version,
        cversion,
        aversion,
        owner,
        length,
        num_children,
        extras.pzxid,
    )


class Node:
    """
    A znode.

    @ivar path: the node's path, the very string object that keys the tree's index
        (and the parent's children): a watch on the node keys its table with it too,
        so the watch costs no string of its own.
    @ivar record: the packed head (see the module docstring), then the data unless
        it is large.
    @ivar acl: the node's ACL, a tuple of L{zkreg.proto.records.ACL}, shared between
        nodes with equal ACLs (see L{zkreg.data.tree.DataTree.intern_acl}).
    @ivar children: the node's L{NodeExtras} (a dict of its children), or L{None}
        while it never had a child, a cversion or pzxid of its own, or large data.
        Change the children with L{add_child} and L{remove_child}.

    The stat fields read as attributes: C{czxid} (zxid of the create), C{mzxid}
    (of the last setData, or the create), C{ctime} and C{mtime} (ms since the
    epoch, from the txn header), C{version} (data version), C{cversion} (stored
    child version), C{aversion} (ACL version), C{ephemeral_owner} (session id for an
    ephemeral, the container marker, a TTL encoding, or 0), C{pzxid} (zxid of the
    last child create or delete); C{data} is the node's bytes, or L{None} when it
    was created with null data.  C{czxid}, C{ctime} and C{ephemeral_owner} never
    change.
    """

    __slots__ = ("path", "record", "acl", "children")

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
        self.acl = acl
        self.children: NodeExtras | None = None
        self._store(czxid, czxid, ctime, ctime, 0, 0, ephemeral_owner, data)

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
        node.acl = acl
        node.children = None if cversion == 0 and pzxid == czxid else NodeExtras(cversion, pzxid)
        node._store(czxid, mzxid, ctime, mtime, version, aversion, ephemeral_owner, data)
        return node

    def _store(
        self,
        czxid: int,
        mzxid: int,
        ctime: int,
        mtime: int,
        version: int,
        aversion: int,
        owner: int,
        data: bytes | None,
    ) -> None:
        """Write the record (and the large data, if any) from every field."""
        if data is None:
            self.record = _pack_head(czxid, mzxid, ctime, mtime, version, aversion, owner, -1)
            large = None
        elif len(data) < LARGE_DATA:
            self.record = (
                _pack_head(czxid, mzxid, ctime, mtime, version, aversion, owner, len(data)) + data
            )
            large = None
        else:
            self.record = _pack_head(
                czxid, mzxid, ctime, mtime, version, aversion, owner, len(data)
            )
            large = data
        extras = self.children
        if extras is not None:
            extras.large_data = large
        elif large is not None:
            self.extras().large_data = large

    # -- the record's fields ------------------------------------------------------

    czxid = _field(0, _I64, writable=False)
    mzxid = _field(8, _I64, writable=True)
    ctime = _field(16, _I64, writable=False)
    mtime = _field(24, _I64, writable=True)
    version = _field(32, _I32, writable=True)
    aversion = _field(36, _I32, writable=True)
    ephemeral_owner = _field(40, _I64, writable=False)

    @property
    def data(self) -> bytes | None:
        """The node's bytes (small data is a copy cut from the record), or L{None}."""
        record = self.record
        if len(record) > _DATA_AT:
            return record[_DATA_AT:]
        if record[_LENGTH_AT] == 0xFF:  # -1: only a length of -1 starts with 0xff
            return None
        extras = self.children
        if extras is not None and extras.large_data is not None:
            return extras.large_data
        return b""

    @data.setter
    def data(self, data: bytes | None) -> None:
        czxid, mzxid, ctime, mtime, version, aversion, owner, _ = _unpack_head(self.record)
        self._store(czxid, mzxid, ctime, mtime, version, aversion, owner, data)

    @property
    def data_length(self) -> int:
        """The data's length (0 for null data), without a copy of the data."""
        length = _I32.unpack_from(self.record, _LENGTH_AT)[0]
        return 0 if length < 0 else length

    def set_data(self, data: bytes | None, zxid: int, time: int, version: int) -> None:
        """A setData: the new data, mzxid, mtime and version, in one rewrite."""
        czxid, _, ctime, _, _, aversion, owner, _ = _unpack_head(self.record)
        self._store(czxid, zxid, ctime, time, version, aversion, owner, data)

    # -- the child bookkeeping ----------------------------------------------------

    def extras(self) -> NodeExtras:
        """@return: the node's L{NodeExtras}, made empty on first need."""
        extras = self.children
        if extras is None:
            extras = self.children = NodeExtras(0, _I64.unpack_from(self.record, 0)[0])
        return extras

    @property
    def cversion(self) -> int:
        extras = self.children
        return 0 if extras is None else extras.cversion

    @cversion.setter
    def cversion(self, cversion: int) -> None:
        self.extras().cversion = cversion

    @property
    def pzxid(self) -> int:
        extras = self.children
        return _I64.unpack_from(self.record, 0)[0] if extras is None else extras.pzxid

    @pzxid.setter
    def pzxid(self, pzxid: int) -> None:
        self.extras().pzxid = pzxid

    @property
    def num_children(self) -> int:
        """Number of live children."""
        children = self.children
        return 0 if children is None else len(children)

    def add_child(self, path: str) -> None:
        """Add the child at C{path} (the full path, as the tree's index keys it)."""
        children = self.children
        if children is None:
            children = self.extras()
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

    # -- stat --------------------------------------------------------------------

    def persisted_fields(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """
        The persisted stat fields in a snapshot's order: czxid, mzxid, ctime, mtime,
        version, cversion (stored), aversion, ephemeralOwner, pzxid; one unpack.
        """
        czxid, mzxid, ctime, mtime, version, aversion, owner, _ = _unpack_head(self.record)
        extras = self.children
        if extras is None:
            return (czxid, mzxid, ctime, mtime, version, 0, aversion, owner, czxid)
        return (czxid, mzxid, ctime, mtime, version, extras.cversion, aversion, owner, extras.pzxid)

    def stat_fields(self, extended_types: bool = False) -> tuple[int, ...]:
        """
        The client-visible stat's fields, as C{DataNode.copyStat} fills them, in the
        record's order (czxid, mzxid, ctime, mtime, version, cversion, aversion,
        ephemeralOwner, dataLength, numChildren, pzxid): L{stat} builds the record
        from them, L{stat_bytes} packs them.

        @param extended_types: whether TTL owners are recognised (they and containers
            show an ephemeralOwner of 0 to clients); constant for one tree.
        """
        return _client_stat(_unpack_head(self.record), self.children, extended_types)

    def data_reply(self, extended_types: bool = False) -> tuple[int, bytes | tuple[bytes, ...]]:
        """
        The body of a getData reply, the data as a jute buffer then the stat, from
        one read of the record: bytes, or for large data the pieces around its one
        shared bytes object (so replies never copy it).

        @return: the data's length (0 for null data) and the body.
        """
        record = self.record
        head = _unpack_head(record)
        extras = self.children
        stat = _pack_stat(*_client_stat(head, extras, extended_types))
        length = head[7]
        if length < LARGE_DATA:
            return (length if length > 0 else 0), record[_LENGTH_AT:] + stat
        assert extras is not None and extras.large_data is not None
        return length, (record[_LENGTH_AT:], extras.large_data, stat)

    def stat(self, extended_types: bool = False) -> Stat:
        """
        The client-visible L{Stat}: a new record on every call, built positionally
        (eleven keywords cost four times as much, once per setData and create2).
        """
        return Stat(*self.stat_fields(extended_types))

    def stat_bytes(self, extended_types: bool = False) -> bytes:
        """
        The jute encoding of L{stat}, packed straight from the fields with no record
        built: a getData reply appends it (header, data, stat).
        """
        return _pack_stat(*self.stat_fields(extended_types))

    def __repr__(self) -> str:
        return (
            f"<Node czxid={self.czxid:#x} mzxid={self.mzxid:#x} version={self.version}"
            f" cversion={self.cversion} children={self.num_children}>"
        )
