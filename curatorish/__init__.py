"""
curatorish: a Curator-style ZooKeeper client for Python, Twisted-native, with a
blocking face for threaded programs.

    from curatorish import CuratorFramework, ExponentialBackoffRetry   # Twisted
    from curatorish import BlockingCuratorFramework                      # threads

See L{curatorish.framework} (the client), L{curatorish.retry} (retry policies),
L{curatorish.state} (connection states), L{curatorish.connection} (the session),
L{curatorish.blocking} and L{curatorish.testing} (a real zkreg for tests).

curatorish's log events go to the standard C{logging} module too, under
C{curatorish.*} logger names (L{curatorish.logbridge}).
"""

from curatorish import errors, logbridge
from curatorish.blocking import BlockingCuratorFramework
from curatorish.client_core import ACLProvider
from curatorish.connection import ClientState, WatchedEvent, ZooKeeperConnection
from curatorish.connection.sasl import SASLConfig
from curatorish.connection.tls import TLSConfig
from curatorish.creates import Created
from curatorish.framework import CuratorFramework, new_client
from curatorish.retry import (
    BoundedExponentialBackoffRetry,
    ExponentialBackoffRetry,
    RetryForever,
    RetryNTimes,
    RetryOneTime,
    RetryPolicy,
    RetryUntilElapsed,
    SessionFailedRetryPolicy,
)
from curatorish.state import (
    ConnectionState,
    SessionConnectionStateErrorPolicy,
    StandardConnectionStateErrorPolicy,
)
from curatorish.transactions import TransactionResult
from zkreg import __version__
from zkreg.proto.consts import (
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    CreateMode,
    EventType,
    KeeperState,
    Perms,
    WatcherType,
)
from zkreg.proto.records import ACL, Id, Stat

logbridge.install()

__all__ = [
    "__version__",
    "ACL",
    "ACLProvider",
    "BlockingCuratorFramework",
    "BoundedExponentialBackoffRetry",
    "CREATOR_ALL_ACL",
    "ClientState",
    "ConnectionState",
    "CreateMode",
    "Created",
    "CuratorFramework",
    "EventType",
    "ExponentialBackoffRetry",
    "Id",
    "TLSConfig",
    "KeeperState",
    "OPEN_ACL_UNSAFE",
    "Perms",
    "READ_ACL_UNSAFE",
    "RetryForever",
    "RetryNTimes",
    "RetryOneTime",
    "RetryPolicy",
    "RetryUntilElapsed",
    "SASLConfig",
    "SessionConnectionStateErrorPolicy",
    "SessionFailedRetryPolicy",
    "StandardConnectionStateErrorPolicy",
    "Stat",
    "TransactionResult",
    "WatchedEvent",
    "WatcherType",
    "ZooKeeperConnection",
    "errors",
    "new_client",
]
