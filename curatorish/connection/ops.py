"""
The operations of a C{multi} (transaction) or C{multiRead}, and their results.

Application-level values: paths are the application's (the connection adds the chroot
when it encodes them and removes it from the results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zkreg.proto.consts import OPEN_ACL_UNSAFE, CreateMode


@dataclass(frozen=True)
class CreateOp:
    """
    Create a node (mode CONTAINER uses createContainer, a TTL mode createTTL).
    """

    path: str
    data: bytes = b""
    acl: tuple = OPEN_ACL_UNSAFE
    mode: CreateMode = CreateMode.PERSISTENT
    ttl: int | None = None


@dataclass(frozen=True)
class DeleteOp:
    path: str
    version: int = -1


@dataclass(frozen=True)
class SetDataOp:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class CheckOp:
    """
    Fail the transaction unless the node's version is C{version}.
    """

    path: str
    version: int


@dataclass(frozen=True)
class GetDataOp:
    """A multiRead read of data (no watch)."""

    path: str


@dataclass(frozen=True)
class GetChildrenOp:
    """A multiRead read of children (no watch)."""

    path: str


@dataclass(frozen=True)
class CreateResult:
    path: str
    stat: Any = None


@dataclass(frozen=True)
class DeleteResult:
    pass


@dataclass(frozen=True)
class SetDataResult:
    stat: Any


@dataclass(frozen=True)
class CheckResult:
    pass


@dataclass(frozen=True)
class GetDataResult:
    data: bytes | None
    stat: Any


@dataclass(frozen=True)
class GetChildrenResult:
    children: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorResult:
    """
    An op that did not happen: C{err} is its code (0 for ops of a failed transaction
    that were fine themselves, RUNTIMEINCONSISTENCY for those after the failure).
    """

    err: int


MultiOp = CreateOp | DeleteOp | SetDataOp | CheckOp | GetDataOp | GetChildrenOp
