"""
ZooKeeper errors as Python exceptions: one class per error code.

The connection raises these (inside Deferred failures) for every non-zero C{err} in a
reply header, so callers catch what they mean (C{except NoNodeError}) instead of
comparing numbers.  Each instance carries the code and, where one applies, the path
the operation was about (with the chroot and namespace already taken off).

They print the Python way: the class names the error and the message is the path
(and any detail), so a traceback ends with C{NodeExistsError: /app/config}; an error
about no path reads as the class's one-line description.

This module imports nothing from curatorish (or Twisted): C{from curatorish import
errors} works first, last, or alone.
"""

from __future__ import annotations

#: Every class for a protocol code, filled as the classes are defined.
_BY_CODE: dict[int, type[ZooKeeperError]] = {}


class ZooKeeperError(Exception):
    """
    Base of every error the ZooKeeper protocol can report.

    @cvar code: the protocol error code (C{KeeperException.Code} in Java).
    @cvar code_name: the code's name in ZooKeeper (C{NODEEXISTS}).
    @cvar description: what the error means, in a few words (from the docstring).
    @ivar path: the client-visible path the failed operation named, or L{None}.
    @ivar message: more detail, or L{None}.
    """

    code: int = -1
    code_name: str = "SYSTEMERROR"
    description: str = "A ZooKeeper error."

    def __init_subclass__(cls, **kwargs: object) -> None:
        """
        Register a class that declares its own protocol C{code} (subclasses that only
        refine one, as L{ConnectionClosedError}, and code 0 are not wire codes).
        """
        super().__init_subclass__(**kwargs)
        if cls.__doc__:
            cls.description = " ".join(cls.__doc__.split())
        if "code" in cls.__dict__ and cls.code != 0:
            _BY_CODE.setdefault(cls.code, cls)

    def __init__(self, path: str | None = None, message: str | None = None) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        parts = [part for part in (self.path, self.message) if part]
        return ": ".join(parts) if parts else self.description

    def __repr__(self) -> str:
        if self.message:
            return f"{type(self).__name__}({self.path!r}, {self.message!r})"
        if self.path is not None:
            return f"{type(self).__name__}({self.path!r})"
        return f"{type(self).__name__}()"


class SystemZookeeperError(ZooKeeperError):
    """
    A server error.
    """

    code = -1
    code_name = "SYSTEMERROR"


class RuntimeInconsistencyError(ZooKeeperError):
    """
    A runtime inconsistency.
    """

    code = -2
    code_name = "RUNTIMEINCONSISTENCY"


class DataInconsistencyError(ZooKeeperError):
    """
    A data inconsistency.
    """

    code = -3
    code_name = "DATAINCONSISTENCY"


class MarshallingError(ZooKeeperError):
    """
    A marshalling error.
    """

    code = -5
    code_name = "MARSHALLINGERROR"


class UnimplementedError(ZooKeeperError):
    """
    The server does not implement the operation.
    """

    code = -6
    code_name = "UNIMPLEMENTED"


class OperationTimeoutError(ZooKeeperError):
    """
    The operation timed out.
    """

    code = -7
    code_name = "OPERATIONTIMEOUT"


class BadArgumentsError(ZooKeeperError):
    """
    Invalid arguments.
    """

    code = -8
    code_name = "BADARGUMENTS"


class UnknownSessionError(ZooKeeperError):
    """
    Unknown session.
    """

    code = -12
    code_name = "UNKNOWNSESSION"


class NewConfigNoQuorumError(ZooKeeperError):
    """
    No quorum for the new config.
    """

    code = -13
    code_name = "NEWCONFIGNOQUORUM"


class ReconfigInProgressError(ZooKeeperError):
    """
    A reconfiguration is in progress.
    """

    code = -14
    code_name = "RECONFIGINPROGRESS"


class APIError(ZooKeeperError):
    """
    An API error.
    """

    code = -100
    code_name = "APIERROR"


class NoNodeError(ZooKeeperError):
    """
    The node does not exist.
    """

    code = -101
    code_name = "NONODE"


class NoAuthError(ZooKeeperError):
    """
    Not authorized by the node's ACL.
    """

    code = -102
    code_name = "NOAUTH"


class BadVersionError(ZooKeeperError):
    """
    The version did not match.
    """

    code = -103
    code_name = "BADVERSION"


class NodeExistsError(ZooKeeperError):
    """
    The node already exists.
    """

    code = -110
    code_name = "NODEEXISTS"


class NotEmptyError(ZooKeeperError):
    """
    The node has children.
    """

    code = -111
    code_name = "NOTEMPTY"


class SessionExpiredError(ZooKeeperError):
    """
    The session has expired.
    """

    code = -112
    code_name = "SESSIONEXPIRED"


class InvalidCallbackError(ZooKeeperError):
    """
    Invalid callback.
    """

    code = -113
    code_name = "INVALIDCALLBACK"


class InvalidACLError(ZooKeeperError):
    """
    Invalid ACL.
    """

    code = -114
    code_name = "INVALIDACL"


class AuthFailedError(ZooKeeperError):
    """
    Authentication failed.
    """

    code = -115
    code_name = "AUTHFAILED"


class SessionMovedError(ZooKeeperError):
    """
    The session moved to another server.
    """

    code = -118
    code_name = "SESSIONMOVED"


class NotReadOnlyError(ZooKeeperError):
    """
    A write was sent to a read-only server.
    """

    code = -119
    code_name = "NOTREADONLY"


class NoWatcherError(ZooKeeperError):
    """
    No such watcher.
    """

    code = -121
    code_name = "NOWATCHER"


class ReconfigDisabledError(ZooKeeperError):
    """
    Reconfiguration is disabled.
    """

    code = -123
    code_name = "RECONFIGDISABLED"


class QuotaExceededError(ZooKeeperError):
    """
    Quota exceeded.
    """

    code = -125
    code_name = "QUOTAEXCEEDED"


class ThrottledOpError(ZooKeeperError):
    """
    The server throttled us.
    """

    code = -127
    code_name = "THROTTLEDOP"


class ConnectionLossError(ZooKeeperError):
    """
    The connection was lost before the reply came: the operation may or may not have
    been applied.
    """

    code = -4
    code_name = "CONNECTIONLOSS"


class NoChildrenForEphemeralsError(ZooKeeperError):
    """
    Ephemeral nodes may not have children.
    """

    code = -108
    code_name = "NOCHILDRENFOREPHEMERALS"


class EphemeralOnLocalSessionError(ZooKeeperError):
    """
    Ephemeral nodes need a global session.
    """

    code = -120
    code_name = "EPHEMERALONLOCALSESSION"


class RequestTimeoutError(ZooKeeperError):
    """
    No reply within the request timeout (the connection is then dropped and
    re-established, as ZooKeeper's Java client does).
    """

    code = -122
    code_name = "REQUESTTIMEOUT"


class SessionClosedRequireSaslError(ZooKeeperError):
    """
    The session was closed: SASL authentication is required.
    """

    code = -124
    code_name = "SESSIONCLOSEDREQUIRESASLAUTH"


class ConnectionClosedError(ConnectionLossError):
    """
    The client was closed (by the application): nothing more will be sent.
    """

    code_name = "CONNECTIONLOSS (client closed)"


class CancelledError(ZooKeeperError):
    """
    Not a protocol error: an operation or wait was abandoned (a deadline passed).
    """

    code = 0
    code_name = "CANCELLED"


def error_for_code(code: int, path: str | None = None) -> ZooKeeperError:
    """
    Build the exception for a reply's error code.

    @param code: a non-zero protocol error code.
    @param path: the client-visible path of the operation, if any.
    @return: an instance of the code's class (L{ZooKeeperError} itself for an unknown code,
        with that code set on the instance).
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        error = ZooKeeperError(path, f"unknown error code {code}")
        error.code = code
        return error
    return cls(path)


def error_class_for_code(code: int) -> type[ZooKeeperError]:
    """
    @return: the exception class for C{code} (L{ZooKeeperError} when unknown).
    """
    return _BY_CODE.get(code, ZooKeeperError)


__all__ = [
    "APIError",
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "CancelledError",
    "ConnectionClosedError",
    "ConnectionLossError",
    "DataInconsistencyError",
    "EphemeralOnLocalSessionError",
    "InvalidACLError",
    "InvalidCallbackError",
    "MarshallingError",
    "NewConfigNoQuorumError",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NoWatcherError",
    "NodeExistsError",
    "NotEmptyError",
    "NotReadOnlyError",
    "OperationTimeoutError",
    "QuotaExceededError",
    "ReconfigDisabledError",
    "ReconfigInProgressError",
    "RequestTimeoutError",
    "RuntimeInconsistencyError",
    "SessionClosedRequireSaslError",
    "SessionExpiredError",
    "SessionMovedError",
    "SystemZookeeperError",
    "ThrottledOpError",
    "UnimplementedError",
    "UnknownSessionError",
    "ZooKeeperError",
    "error_class_for_code",
    "error_for_code",
]
