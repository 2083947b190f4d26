"""
Reads answered by the session server from its read view, with watch registration.

The data tier's L{zkreg.data.reads.answer_read} computes the answer (ACL checks,
NoNode, stats); this module adds what only the session server knows: which watches
a successful read leaves behind (ZooKeeper's rules: getData and getChildren watch only
an existing node, exists watches a missing node too, and multiRead registers nothing
because ZooKeeper rebuilds its ops with C{Op.getData(path)}, dropping the watch flag).

Two limits keep one client from making the server build huge replies: a node's data
of L{zkreg.data.node.LARGE_DATA} bytes or more is answered as pieces around the tree's
own bytes object (every reply of that node shares one buffer, none copies it), and a multiRead
or getChildren whose reply would pass C{max_reply_size} is refused with
MarshallingError before anything is built (ZooKeeper 3.8 builds it: a 2,000-op
multiRead of a 1 MB node makes a 2 GB reply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from zkreg.proto.consts import Err, OpCode

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_OK = 0
_NONODE = int(Err.NONODE)
_NOAUTH = int(Err.NOAUTH)
_GET_DATA = int(OpCode.getData)
_PERM_READ = 1
_MARSHALLING_ERROR = int(Err.MARSHALLINGERROR)
_GET_CHILDREN = int(OpCode.getChildren)
_GET_CHILDREN2 = int(OpCode.getChildren2)
_MULTI_READ = int(OpCode.multiRead)
#: Bytes a reply adds around each item (lengths, a Stat, a multi header), at most.
_ITEM_OVERHEAD = 96


def reply_size_bound(view: Any, opcode: int, record: Any, limit: int) -> int:
    """
    How large the reply of a getChildren, getChildren2 or multiRead would be, without
    building it (for other opcodes, 0).  Counted up to just past C{limit}.

    @return: an upper estimate of the reply's bytes.
    """
    if opcode == _GET_CHILDREN or opcode == _GET_CHILDREN2:
        return _children_size(view, record.path)
    if opcode != _MULTI_READ:
        return 0
    total = 0
    for op_code, op in record:
        path = getattr(op, "path", None)
        if path is None:
            continue
        if op_code == _GET_DATA:
            node = view.get(path or "/")
            if node is not None and node.data:
                total += len(node.data)
        else:
            total += _children_size(view, path)
        total += _ITEM_OVERHEAD
        if total > limit:
            break
    return total


def _children_size(view: Any, path: Any) -> int:
    node = view.get(path or "/") if path is not None else None
    children = getattr(node, "children", None) if node is not None else None
    if not children:
        return _ITEM_OVERHEAD
    return _ITEM_OVERHEAD + 4 * len(children) + sum(map(len, children))


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
    stats = factory.stats
    max_reply_size = factory.max_reply_size
    log = Logger()

    def read(connection: Any, opcode: int, record: Any) -> tuple[int, Any]:
        if opcode == _GET_DATA and record.path:
            # The hot read, answered as bytes (Node.data_reply: the data with its
            # length cut from the node's record, then its Stat packed), with no response
            # record built and serialized.  The same checks as answer_read's getData.
            path = record.path
            node = view.get(path)
            if node is None:
                return _NONODE, None
            acl = node.acl
            if acl is not OPEN_ACL and not allowed(acl, _PERM_READ, connection.auth):
                return _NOAUTH, None
            if record.watch:
                watches.add_data_watch(path, connection)
            size, body = node.data_reply(extended_types)
            namespace_stats.read(path, size)
            return _OK, body
        if opcode == _MULTI_READ or opcode == _GET_CHILDREN or opcode == _GET_CHILDREN2:
            size = reply_size_bound(view, opcode, record, max_reply_size)
            if size > max_reply_size:
                stats.replies_refused += 1
                log.warn(
                    "refused a reply of about {size} bytes (opcode {opcode}) to session "
                    "0x{session_id:x}: max_reply_size is {limit}",
                    size=size,
                    opcode=opcode,
                    session_id=connection.session_id,
                    limit=max_reply_size,
                )
                return _MARSHALLING_ERROR, None
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
