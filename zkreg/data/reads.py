"""
The read operations, answered from a read view as ZooKeeper's
C{FinalRequestProcessor} answers them.

Pure: no watch is registered here.  The session server registers watches from the
outcome, exactly where ZooKeeper does:

  - C{getData} with C{watch}: a data watch, only when C{err == 0} (NoNode and NoAuth
    register nothing);
  - C{exists} with C{watch}: a data ("exist") watch when C{err} is 0 B{or NoNode} (an
    exists watch on a missing node fires NodeCreated); nothing for BadArguments;
  - C{getChildren} / C{getChildren2} with C{watch}: a child watch, only when
    C{err == 0};
  - C{multiRead}: never (its ops carry no watch flag);
  - C{getConfig} is C{getData} of C{/zookeeper/config} (the Java client sends exactly
    that), so it follows the getData rule.

ACLs are checked exactly where ZooKeeper checks them: READ for getData, getChildren,
getChildren2, getAllChildrenNumber and the ops of a multiRead; READ or ADMIN for
getACL (without ADMIN the digest ids come back as C{user:x}); nothing for exists and
getEphemerals.  Paths are not validated (ZooKeeper does not on reads; the client
does), except exists, which refuses a NUL character; as in ZooKeeper the empty path
reads the root (its DataTree keeps the root under "" too) and a null path is a
MarshallingError (for a multiRead, of the whole request).

Every outcome carries the view's C{last_zxid}, as ZooKeeper puts its last processed
zxid in every reply header.
"""

from __future__ import annotations

import re
from typing import Any

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.messages import Outcome
from zkreg.data.tree import OPEN_ACL as _OPEN_ACL
from zkreg.proto.records import (
    ACL,
    ErrorResponse,
    ExistsResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    Id,
)

#: The path ZooKeeper's client reads for getConfig (C{ZooDefs.CONFIG_NODE}).
CONFIG_NODE = "/zookeeper/config"

_PERM_READ = codes.PERM_READ
_PERM_ADMIN = codes.PERM_ADMIN
_OP_GET_DATA = codes.OP_GET_DATA
_OP_EXISTS = codes.OP_EXISTS
_OP_GET_CHILDREN = codes.OP_GET_CHILDREN
_OP_GET_CHILDREN2 = codes.OP_GET_CHILDREN2
_OP_ERROR = codes.OP_ERROR
_DIGEST_SECRET = re.compile(":.*")
_NO_NODE = codes.NO_NODE
_NO_AUTH = codes.NO_AUTH


class ReadError(Exception):
    """A read fails with a ZooKeeper error code."""

    def __init__(self, code: int) -> None:
        Exception.__init__(self, code)
        self.code = code


class _Malformed(ReadError):
    """ZooKeeper fails with an exception that is not a KeeperException: MarshallingError
    for the whole request, even inside a multiRead."""

    def __init__(self) -> None:
        ReadError.__init__(self, codes.MARSHALLING_ERROR)


def _node_at(view: Any, path: Any) -> Any:
    if not path:
        if path is None:
            # ZooKeeper's node map throws on a null key.
            raise _Malformed()
        # ZooKeeper's DataTree keeps the root under "" as well as "/".
        path = "/"
    return view.get(path)


def _readable_node(view: Any, path: str, auth: Any, acl_checker: AclChecker) -> Any:
    node = _node_at(view, path)
    if node is None:
        raise ReadError(codes.NO_NODE)
    if not acl_checker.allowed(node.acl, _PERM_READ, auth):
        raise ReadError(codes.NO_AUTH)
    return node


def _get_data(view: Any, path: str, auth: Any, acl_checker: AclChecker) -> GetDataResponse:
    node = _readable_node(view, path, auth, acl_checker)
    return GetDataResponse(node.data, node.stat(view.extended_types))


def _get_children(view: Any, path: str, auth: Any, acl_checker: AclChecker) -> GetChildrenResponse:
    node = _readable_node(view, path, auth, acl_checker)
    return GetChildrenResponse(node.child_names())


def _exists(view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker) -> Any:
    path = record.path
    if path is None:
        raise _Malformed()
    if "\x00" in path:
        raise ReadError(codes.BAD_ARGUMENTS)
    node = _node_at(view, path)
    if node is None:
        raise ReadError(codes.NO_NODE)
    return ExistsResponse(node.stat(view.extended_types))


def _get_children2(
    view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> Any:
    node = _readable_node(view, record.path, auth, acl_checker)
    return GetChildren2Response(node.child_names(), node.stat(view.extended_types))


def _get_all_children_number(
    view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> Any:
    path = record.path
    _readable_node(view, path, auth, acl_checker)
    if path == "":
        # Every key of ZooKeeper's node map that starts with "/": all nodes, the root
        # included (the "" alias is the only key left out).
        return GetAllChildrenNumberResponse(view.node_count())
    return GetAllChildrenNumberResponse(view.count_descendants(path))


def _get_acl(view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker) -> Any:
    node = _node_at(view, record.path)
    if node is None:
        raise ReadError(codes.NO_NODE)
    if not acl_checker.allowed(node.acl, _PERM_READ | _PERM_ADMIN, auth):
        raise ReadError(codes.NO_AUTH)
    stat = node.stat(view.extended_types)
    if acl_checker.allowed(node.acl, _PERM_ADMIN, auth):
        return GetACLResponse(list(node.acl), stat)
    redacted = []
    for entry in node.acl:
        entry_id = entry.id
        if entry_id.scheme == "digest":
            masked = Id(entry_id.scheme, _DIGEST_SECRET.sub(":x", entry_id.id))
            redacted.append(ACL(entry.perms, masked))
        else:
            redacted.append(entry)
    return GetACLResponse(redacted, stat)


def _get_ephemerals(
    view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> Any:
    paths = view.ephemerals_of(session_id)
    prefix = record.prefixPath
    if prefix is None or prefix.strip() in ("", "/"):
        return GetEphemeralsResponse(paths)
    return GetEphemeralsResponse([p for p in paths if p.startswith(prefix)])


def _multi_read(view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker) -> Any:
    results: list[tuple[int, int, Any]] = []
    for opcode, _op in record:
        if opcode != _OP_GET_DATA and opcode != _OP_GET_CHILDREN:
            raise ReadError(codes.MARSHALLING_ERROR)
    for opcode, op in record:
        try:
            if opcode == _OP_GET_DATA:
                results.append((_OP_GET_DATA, 0, _get_data(view, op.path, auth, acl_checker)))
            else:
                response = _get_children(view, op.path, auth, acl_checker)
                results.append((_OP_GET_CHILDREN, 0, response))
        except _Malformed:
            raise
        except ReadError as failure:
            results.append((_OP_ERROR, failure.code, ErrorResponse(failure.code)))
    return results


def _get_data_op(
    view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> Any:
    return _get_data(view, record.path, auth, acl_checker)


def _get_children_op(
    view: Any, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> Any:
    return _get_children(view, record.path, auth, acl_checker)


_HANDLERS = {
    codes.OP_GET_DATA: _get_data_op,
    codes.OP_EXISTS: _exists,
    codes.OP_GET_CHILDREN: _get_children_op,
    codes.OP_GET_CHILDREN2: _get_children2,
    codes.OP_GET_ALL_CHILDREN_NUMBER: _get_all_children_number,
    codes.OP_GET_ACL: _get_acl,
    codes.OP_GET_EPHEMERALS: _get_ephemerals,
    codes.OP_MULTI_READ: _multi_read,
}

#: The opcodes L{perform_read} answers.
READ_OPS = frozenset(_HANDLERS)


def perform_read(view: Any, request: Any, acl_checker: AclChecker) -> Outcome:
    """
    Answer one read request.

    @param view: the L{zkreg.data.tree.DataTree} to read (the data server's own, or a
        session server's replica); besides C{get} and C{last_zxid} it provides
        C{extended_types}, C{ephemerals_of} and C{count_descendants}.
    @param request: a L{zkreg.data.messages.Request} with a read opcode; C{record}
        is the decoded request record (for multiRead, C{[(opcode, record), ...]});
        C{auth} are the session's ids; C{session_id} matters for getEphemerals.
    @param acl_checker: the server's L{AclChecker}.
    @return: an L{Outcome}: C{zxid} the view's last zxid, C{err} 0 or the error code,
        C{response} the reply record (for multiRead, C{[(type, err, record), ...]} as
        L{zkreg.proto.multi.encode_response} takes it), L{None} on error.  An opcode
        that is not a read gets Unimplemented.
    """
    err, response = answer_read(
        view, request.opcode, request.record, request.auth, request.session_id, acl_checker
    )
    return Outcome(view.last_zxid, err, response)


def answer_read(
    view: Any, opcode: int, record: Any, auth: Any, session_id: int, acl_checker: AclChecker
) -> tuple[int, Any]:
    """
    L{perform_read} without the L{Request} and L{Outcome} records, for a caller that
    answers many reads (the session server's local reads): the same answers.

    @param auth: the session's ids (a tuple of L{Id}).
    @param session_id: the reading session (matters for getEphemerals).
    @return: C{(err, response)}: 0 and the reply record, or the error code and
        L{None}.  The reply header's zxid is the view's C{last_zxid}, read by the
        caller.
    """
    if opcode == _OP_GET_DATA:
        # The common read, inlined: the same steps as _get_data.
        path = record.path
        if path:
            node = view.get(path)
            if node is None:
                return _NO_NODE, None
            acl = node.acl
            # An open ACL (the usual one) passes without asking the checker.
            if acl is not _OPEN_ACL and not acl_checker.allowed(acl, _PERM_READ, auth):
                return _NO_AUTH, None
            return 0, GetDataResponse(node.data, node.stat(view.extended_types))
    handler = _HANDLERS.get(opcode)
    if handler is None:
        return codes.UNIMPLEMENTED, None
    try:
        return 0, handler(view, record, auth, session_id, acl_checker)
    except ReadError as failure:
        return failure.code, None


def get_config(view: Any, request: Any, acl_checker: AclChecker) -> Outcome:
    """
    getConfig: C{getData} of L{CONFIG_NODE} (in a standalone server, empty data and
    the node's stat).
    """
    return perform_read(
        view,
        _ConfigRequest(request),
        acl_checker,
    )


class _ConfigRequest:
    __slots__ = ("opcode", "record", "auth", "session_id")

    def __init__(self, request: Any) -> None:
        self.opcode = codes.OP_GET_DATA
        self.record = _ConfigPath()
        self.auth = request.auth
        self.session_id = request.session_id


class _ConfigPath:
    __slots__ = ()
    path = CONFIG_NODE
    watch = False
