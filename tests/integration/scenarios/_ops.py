"""Short builders for raw-protocol records used by the scenarios."""

from __future__ import annotations

from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

OPEN = [R.ACL(31, R.Id("world", "anyone"))]


def acl(perms: int, scheme: str = "world", ident: str = "anyone") -> R.ACL:
    """@return: one ACL entry."""
    return R.ACL(perms, R.Id(scheme, ident))


def op_create(path: str, data: bytes | None = b"", flags: int = 0, acl_list=None):
    return (OpCode.create, R.CreateRequest(path, data, list(acl_list or OPEN), flags))


def op_create2(path: str, data: bytes | None = b"", flags: int = 0):
    return (OpCode.create2, R.CreateRequest(path, data, list(OPEN), flags))


def op_container(path: str, data: bytes | None = b""):
    return (OpCode.createContainer, R.CreateRequest(path, data, list(OPEN), 4))


def op_ttl(path: str, ttl: int, flags: int = 5):
    return (OpCode.createTTL, R.CreateTTLRequest(path, b"", list(OPEN), flags, ttl))


def op_delete(path: str, version: int = -1):
    return (OpCode.delete, R.DeleteRequest(path, version))


def op_set(path: str, data: bytes | None, version: int = -1):
    return (OpCode.setData, R.SetDataRequest(path, data, version))


def op_check(path: str, version: int):
    return (OpCode.check, R.CheckVersionRequest(path, version))


def op_get(path: str):
    return (OpCode.getData, R.GetDataRequest(path, False))


def op_children(path: str):
    return (OpCode.getChildren, R.GetChildrenRequest(path, False))
