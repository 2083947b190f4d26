"""
Helpers for the state-machine tests: run requests through prep and apply, no server.
"""

from __future__ import annotations

from typing import Any

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.messages import Request
from zkreg.data.prep import Prep
from zkreg.data.tree import ApplyResult, DataTree
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import (
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    Id,
    SetACLRequest,
    SetDataRequest,
    TxnHeader,
)

IP_AUTH = (Id("ip", "127.0.0.1"),)
OPEN = list(OPEN_ACL_UNSAFE)


class Harness:
    """
    Prep then apply each request at once (a log that is always immediately durable).

    @ivar log: every C{(hdr, txn)} applied, to replay into another tree.
    """

    def __init__(
        self, extended_types: bool = False, super_digest: str | None = None, sessions: Any = None
    ) -> None:
        self.tree = DataTree(extended_types)
        self.acl = AclChecker(super_digest)
        self.prep = Prep(self.tree, self.acl, extended_types, sessions)
        self.zxid = 0
        self.time = 1_000_000
        self.log: list[tuple[TxnHeader, Any]] = []

    def prep_only(
        self, opcode: int, record: Any, session_id: int = 1, auth: tuple = IP_AUTH
    ) -> tuple[TxnHeader, Any]:
        """Prep without applying (a write left in flight)."""
        self.zxid += 1
        self.time += 10
        return self.prep.prep(
            Request(session_id, self.zxid, opcode, record, auth), self.zxid, self.time
        )

    def apply(self, hdr: TxnHeader, txn: Any) -> ApplyResult:
        result = self.tree.apply(hdr, txn)
        self.prep.committed(hdr.zxid)
        self.log.append((hdr, txn))
        return result

    def run(
        self, opcode: int, record: Any, session_id: int = 1, auth: tuple = IP_AUTH
    ) -> ApplyResult:
        return self.apply(*self.prep_only(opcode, record, session_id, auth))

    # Shorthands returning the ApplyResult.

    def create(
        self,
        path: str,
        data: bytes | None = b"",
        flags: int = 0,
        acl: Any = None,
        session_id: int = 1,
        auth: tuple = IP_AUTH,
        opcode: int = codes.OP_CREATE2,
        ttl: int | None = None,
    ) -> ApplyResult:
        acl = OPEN if acl is None else acl
        if ttl is not None:
            record: Any = CreateTTLRequest(path, data, acl, flags, ttl)
            opcode = codes.OP_CREATE_TTL
        else:
            record = CreateRequest(path, data, acl, flags)
        return self.run(opcode, record, session_id, auth)

    def delete(self, path: str, version: int = -1, auth: tuple = IP_AUTH) -> ApplyResult:
        return self.run(codes.OP_DELETE, DeleteRequest(path, version), auth=auth)

    def set_data(
        self, path: str, data: bytes, version: int = -1, auth: tuple = IP_AUTH
    ) -> ApplyResult:
        return self.run(codes.OP_SET_DATA, SetDataRequest(path, data, version), auth=auth)

    def set_acl(self, path: str, acl: Any, version: int = -1, auth: tuple = IP_AUTH) -> ApplyResult:
        return self.run(codes.OP_SET_ACL, SetACLRequest(path, acl, version), auth=auth)

    def check(self, path: str, version: int) -> ApplyResult:
        return self.run(codes.OP_CHECK, CheckVersionRequest(path, version))

    def multi(self, ops: list[tuple[int, Any]], auth: tuple = IP_AUTH) -> ApplyResult:
        return self.run(codes.OP_MULTI, ops, auth=auth)

    def create_session(self, session_id: int, timeout_ms: int = 10000) -> ApplyResult:
        return self.run(codes.OP_CREATE_SESSION, timeout_ms, session_id=session_id)

    def close_session(self, session_id: int) -> ApplyResult:
        return self.run(codes.OP_CLOSE_SESSION, None, session_id=session_id)

    def stat(self, path: str) -> Any:
        node = self.tree.get(path)
        assert node is not None, path
        return self.tree.stat_of(node)


def replay(log: list[tuple[TxnHeader, Any]], extended_types: bool = False) -> DataTree:
    """A fresh tree with every txn of C{log} applied."""
    tree = DataTree(extended_types)
    for hdr, txn in log:
        tree.apply(hdr, txn)
    return tree
