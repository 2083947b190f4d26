"""
The requests that change one node: create, delete, set data, set ACL.

L{WriteRequests}, a part of L{curatorish.connection.session.ZooKeeperConnection}
(over L{curatorish.connection.operations.ZooKeeperOperations}), checks what is written
(node data, ACLs, the create mode and TTL), encodes the request, submits it and reads
the reply.  Separate from the reads (L{curatorish.connection.read_requests}), which
check nothing but the path and leave watches; a create's encoding is in
L{curatorish.connection.operations}, because a transaction's creates share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.operations import ZooKeeperOperations, check_data
from zkreg.proto.consts import OPEN_ACL_UNSAFE, CreateMode, OpCode
from zkreg.proto.records import (
    Create2Response,
    DeleteRequest,
    SetACLRequest,
    SetACLResponse,
    SetDataRequest,
    SetDataResponse,
    Stat,
)


class WriteRequests(ZooKeeperOperations):
    """
    The single-node writes, for the session: over C{_submit}, the reply readers,
    C{_to_server}, C{_create_record} and the chroot (L{ZooKeeperOperations}).
    """

    # -- writes -----------------------------------------------------------------------

    def create(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Sequence[Any] = OPEN_ACL_UNSAFE,
        mode: CreateMode = CreateMode.PERSISTENT,
        ttl: int | None = None,
    ) -> defer.Deferred[tuple[str, Stat]]:
        """
        Create a node (create2, or createContainer / createTTL for those modes).

        @param ttl: milliseconds, required for and only allowed with the TTL modes.
        @return: Deferred firing with C{(created path, stat)}; the path carries the
            sequence number of a sequential node.
        """
        try:
            opcode, record = self._create_record(path, data, acl, mode, ttl)
        except (ValueError, TypeError, errors.ZooKeeperError) as error:
            return defer.fail(error)

        def complete(err: int, frame: bytes, offset: int) -> tuple[str, Stat]:
            self._check(err, path)
            response, _ = Create2Response.deserialize(frame, offset)
            return self.chroot.to_client(response.path), response.stat

        return self._submit(opcode, record, complete, path)

    def delete(self, path: str, version: int = -1) -> defer.Deferred[None]:
        """
        Delete a node (if its version is C{version}, unless -1).
        """
        try:
            record = DeleteRequest(self._to_server(path), version)
        except ValueError as error:
            return defer.fail(error)
        return self._submit(OpCode.delete, record, self._reader(path, None), path)

    def set_data(self, path: str, data: bytes | None, version: int = -1) -> defer.Deferred[Stat]:
        """
        @return: Deferred firing with the node's new L{Stat}.
        """
        try:
            check_data(data, path)
            record = SetDataRequest(self._to_server(path), data, version)
        except (ValueError, TypeError) as error:
            return defer.fail(error)
        reader = self._reader(path, SetDataResponse)
        return self._submit(OpCode.setData, record, reader, path).addCallback(
            lambda response: response.stat
        )

    def set_acl(self, path: str, acl: Sequence[Any], version: int = -1) -> defer.Deferred[Stat]:
        """
        @param version: the expected ACL version (C{aversion}), -1 for any.
        """
        if not acl:
            return defer.fail(errors.InvalidACLError(path))
        try:
            record = SetACLRequest(self._to_server(path), list(acl), version)
        except ValueError as error:
            return defer.fail(error)
        reader = self._reader(path, SetACLResponse)
        return self._submit(OpCode.setACL, record, reader, path).addCallback(
            lambda response: response.stat
        )
