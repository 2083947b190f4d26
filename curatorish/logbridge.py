"""
curatorish's log events, handed to Python's standard C{logging}.

curatorish logs with C{twisted.logger}, as the rest of the project does, so that a
Twisted program sees its events with its own.  Most programs that use a ZooKeeper
client are not Twisted programs, though: they configure C{logging} and would see
nothing (an unreachable server meant a minute of silence).  So every event of a
C{curatorish.*} namespace is also given to C{logging.getLogger(namespace)}, at the
matching level, with the traceback of a logged failure.

No handler is installed: a program that configures logging (C{logging.basicConfig})
gets curatorish's records like any library's; one that does not still sees warnings
and errors on stderr through Python's last-resort handler, as with kazoo.  Silence it
with C{logging.getLogger("curatorish").setLevel(logging.ERROR)}.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from zope.interface import provider

#: The namespace (and stdlib logger name) of every curatorish event.
ROOT_NAMESPACE = "curatorish"

#: The namespace of the client framework's events (retries, giving up, background
#: work), whichever of its modules logs them: programs configure this logger name.
FRAMEWORK_NAMESPACE = ROOT_NAMESPACE + ".framework"

#: The namespace of one session's events (connecting, handshakes, expiry, auth, request
#: timeouts), whichever part of the session logs them: docs/security.md tells
#: programs to configure this logger name.
SESSION_NAMESPACE = ROOT_NAMESPACE + ".connection.session"

_LEVELS = {
    LogLevel.debug: logging.DEBUG,
    LogLevel.info: logging.INFO,
    LogLevel.warn: logging.WARNING,
    LogLevel.error: logging.ERROR,
    LogLevel.critical: logging.CRITICAL,
}

_forwarding = threading.local()


@provider(ILogObserver)
def forward_to_logging(event: dict[str, Any]) -> None:
    """
    A C{twisted.logger} observer: give a C{curatorish.*} event to the standard
    logger of the same name; ignore every other event.  Never raises (an observer
    that raises is disabled by Twisted).
    """
    namespace = event.get("log_namespace")
    if not isinstance(namespace, str) or not (
        namespace == ROOT_NAMESPACE or namespace.startswith(ROOT_NAMESPACE + ".")
    ):
        return
    if getattr(_forwarding, "active", False):
        return  # a handler that logs back into Twisted: do not loop
    _forwarding.active = True
    try:
        level = _LEVELS.get(event.get("log_level"), logging.INFO)  # type: ignore[arg-type]
        logger = logging.getLogger(namespace)
        if not logger.isEnabledFor(level):
            return
        failure = event.get("log_failure")
        exc_info = None
        if failure is not None:
            exc_info = (failure.type, failure.value, failure.getTracebackObject())
        logger.log(level, "%s", formatEvent(event), exc_info=exc_info)
    except Exception:
        pass
    finally:
        _forwarding.active = False


def install() -> None:
    """
    Add L{forward_to_logging} to Twisted's global log publisher (done when curatorish
    is imported; adding it again does nothing).
    """
    globalLogPublisher.addObserver(forward_to_logging)


def uninstall() -> None:
    """
    Stop forwarding: for a Twisted program that prefers curatorish's events only in
    its Twisted log observers.
    """
    globalLogPublisher.removeObserver(forward_to_logging)


__all__ = [
    "FRAMEWORK_NAMESPACE",
    "ROOT_NAMESPACE",
    "SESSION_NAMESPACE",
    "forward_to_logging",
    "install",
    "uninstall",
]
