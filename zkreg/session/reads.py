"""
Reads answered by the session server from its read view, with watch registration.

The data tier's L{zkreg.data.reads.answer_read} computes the answer (ACL checks,
NoNode, stats); this module adds what only the session server knows: which watches
a successful read leaves behind (ZooKeeper's rules: getData and getChildren watch only
an existing node, exists watches a missing node too, and multiRead registers nothing
because ZooKeeper rebuilds its ops with C{Op.getData(path)}, dropping the watch flag).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkreg.proto.consts import Err, OpCode

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_OK = 0
_NONODE = int(Err.NONODE)


def make_reader(factory: SessionServerFactory) -> Any:
    """
    @return: C{read(connection, opcode, record) -> (err, response)} for C{factory}.
    """
    from zkreg.data.reads import answer_read

    view = factory.read_view
    watches = factory.watches
    acl_checker = factory.acl_checker
    namespace_stats = factory.namespace_stats

    def read(connection: Any, opcode: int, record: Any) -> tuple[int, Any]:
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
