"""
Reads answered by the session server from its read view, with watch registration.

The data tier's L{zkreg.data.reads.answer_read} computes the answer (ACL checks,
NoNode, stats); this module adds what only the session server knows: which watches
a successful read leaves behind (ZooKeeper's rules: getData and getChildren watch only
an existing node, exists watches a missing node too, and multiRead registers nothing
because ZooKeeper rebuilds its ops with C{Op.getData(path)}, dropping the watch flag).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from zkreg.proto.consts import Err, OpCode

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_OK = 0
_NONODE = int(Err.NONODE)
_NOAUTH = int(Err.NOAUTH)
_GET_DATA = int(OpCode.getData)
_PERM_READ = 1
_LENGTH = struct.Struct(">i")
#: A null jute buffer: length -1.
_NULL_BUFFER = _LENGTH.pack(-1)


def make_reader(factory: SessionServerFactory) -> Any:
    """
    @return: C{read(connection, opcode, record) -> (err, response)} for C{factory}.
    """
    from zkreg.data.reads import answer_read
    from zkreg.data.tree import OPEN_ACL

    view = factory.read_view
    watches = factory.watches
    acl_checker = factory.acl_checker
    allowed = acl_checker.allowed
    namespace_stats = factory.namespace_stats
    extended_types = factory.config.extended_types
    pack_length = _LENGTH.pack

    def read(connection: Any, opcode: int, record: Any) -> tuple[int, Any]:
        if opcode == _GET_DATA and record.path:
            # The hot read, answered as bytes: the data with its length, then the
            # node's cached Stat encoding (Node.stat_bytes), with no response record
            # built and serialized.  The same checks as answer_read's getData.
            path = record.path
            node = view.get(path)
            if node is None:
                return _NONODE, None
            acl = node.acl
            if acl is not OPEN_ACL and not allowed(acl, _PERM_READ, connection.auth):
                return _NOAUTH, None
            data = node.data
            if record.watch:
                watches.add_data_watch(path, connection)
            if data is None:
                namespace_stats.read(path, 0)
                return _OK, _NULL_BUFFER + node.stat_bytes(extended_types)
            namespace_stats.read(path, len(data))
            return _OK, pack_length(len(data)) + data + node.stat_bytes(extended_types)
        err, response = answer_read(
            view, opcode, record, connection.auth, connection.session_id, acl_checker
        )
        if err == _OK:
            if opcode == OpCode.getData:
                namespace_stats.read(record.path, len(response.data or b""))
            elif opcode == OpCode.exists:
                namespace_stats.read(record.path, 0)
            elif opcode == OpCode.getChildren or opcode == OpCode.getChildren2:
                namespace_stats.read(record.path, sum(map(len, response.children or ())))
        if opcode == OpCode.getData or opcode == OpCode.exists:
            if record.watch and (err == _OK or (err == _NONODE and opcode == OpCode.exists)):
                watches.add_data_watch(record.path, connection)
        elif opcode == OpCode.getChildren or opcode == OpCode.getChildren2:
            if record.watch and err == _OK:
                watches.add_child_watch(record.path, connection)
        return err, response

    return read
