"""
The ZooKeeper client session over Twisted, on the shared codec L{zkreg.proto}.

L{ZooKeeperConnection} is the session (Java's C{ZooKeeper} handle); the framework
(L{curatorish.framework}) adds retries, Curator's connection states, namespaces and
the rest on top of it.
"""

from curatorish.connection.client_state import ClientState
from curatorish.connection.hosts import ConnectString, HostRotation, parse_connect_string
from curatorish.connection.multi_requests import (
    CheckOp,
    CheckResult,
    CreateOp,
    CreateResult,
    DeleteOp,
    DeleteResult,
    ErrorResult,
    GetChildrenOp,
    GetChildrenResult,
    GetDataOp,
    GetDataResult,
    MultiOp,
    SetDataOp,
    SetDataResult,
)
from curatorish.connection.paths import Chroot, validate_path
from curatorish.connection.session import ZooKeeperConnection
from curatorish.connection.watches import WatchedEvent, Watcher, WatchManager

__all__ = [
    "CheckOp",
    "CheckResult",
    "Chroot",
    "ClientState",
    "ConnectString",
    "CreateOp",
    "CreateResult",
    "DeleteOp",
    "DeleteResult",
    "ErrorResult",
    "GetChildrenOp",
    "GetChildrenResult",
    "GetDataOp",
    "GetDataResult",
    "HostRotation",
    "MultiOp",
    "SetDataOp",
    "SetDataResult",
    "WatchManager",
    "WatchedEvent",
    "Watcher",
    "ZooKeeperConnection",
    "parse_connect_string",
    "validate_path",
]
