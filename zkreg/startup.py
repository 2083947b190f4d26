"""
Stopping startup on an operator's mistake with one line, never a traceback.

A port already in use, an endpoint that cannot be, a data directory that is a file or
cannot be written, a bad option value: the operator needs to read what is wrong and
what to do, on stderr, and a non-zero exit status for the supervisor.  Twisted would
print the whole usage text for a bad option and a traceback for a failed listen;
L{StartupError} replaces both, and L{GuardedStartup} turns the listen failures raised
while twistd starts the services into one.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from twisted.application import service
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

__all__ = ["GuardedStartup", "StartupError", "fail_startup", "stop_running_startup"]


class StartupError(SystemExit):
    """
    zkreg cannot start, for a reason the operator can fix; the message is one line.

    A L{SystemExit} (status 1) so that nothing between the raise and the interpreter
    (twistd catches every L{Exception} of a failed start to log it) turns it into a
    traceback; L{fail_startup} has already written the message to stderr.

    @ivar message: what is wrong and what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


def fail_startup(message: str) -> NoReturn:
    """
    Write C{zkreg: message} to the process's real stderr and stop with status 1.

    The real stderr (C{sys.__stderr__}), because once twistd's logging has begun
    C{sys.stderr} feeds the log, which C{twistd -n} prints on stdout with a timestamp.

    @raise StartupError: always.
    """
    stream = sys.__stderr__
    if stream is not None:
        stream.write(f"zkreg: {message}\n")
        stream.flush()
    raise StartupError(message)


def stop_running_startup(reactor: Any, message: str) -> None:
    """
    Stop a process whose start failed after the reactor began running (a session
    server that cannot reach its data server): C{zkreg: message} on the real stderr
    and in the log, then the reactor stops and the process exits with status 1.

    twistd exits 0 once its reactor stops, so the status is set by ending the process
    at the very end of the shutdown, after every service stopped (a pid file left
    behind is stale, and twistd removes stale ones when it next starts).
    """
    _log.error("zkreg: {message}", message=message)
    stream = sys.__stderr__
    if stream is not None:
        stream.write(f"zkreg: {message}\n")
        stream.flush()

    def exit_failed() -> None:
        for output in (sys.stdout, sys.stderr):
            try:
                output.flush()
            except (OSError, ValueError):
                pass
        os._exit(1)

    reactor.addSystemEventTrigger("after", "shutdown", exit_failed)
    reactor.stop()


def describe_listen_failure(error: BaseException) -> str:
    """
    @return: one line for a failed listen: the address, the reason, and the remedy.
    """
    if isinstance(error, CannotListenError):
        interface = error.interface or "*"
        reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
        return (
            f"cannot listen on {interface}:{error.port}: {reason}; is another server "
            f"(zkreg or ZooKeeper) using that port? Stop it or choose another port"
        )
    return f"cannot listen: {error}"


class ListenFailed(Exception):
    """A daemonized zkreg could not listen (see L{GuardedStartup})."""


class GuardedStartup(service.MultiService):
    """
    The top service of a zkreg process: starts its children like a L{MultiService},
    but a listen that fails (twistd binds ports in C{privilegedStartService}) stops the
    process with one line instead of a traceback.

    A daemonized twistd (no C{-n}) has already detached from the terminal then, and
    its waiting parent learns of a failed start only from an L{Exception} (which it
    prints, cut to 100 bytes, and exits 1); so there the line is raised as
    L{ListenFailed} instead, and logged whole.

    @ivar detached: twistd daemonized this process.
    """

    def __init__(self, detached: bool = False) -> None:
        super().__init__()
        self.detached = detached

    def _listen_failed(self, error: BaseException) -> NoReturn:
        message = describe_listen_failure(error)
        if self.detached:
            _log.error("zkreg: {message}", message=message)
            raise ListenFailed(message) from None
        fail_startup(message)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except (CannotListenError, OverflowError) as error:
            self._listen_failed(error)

    def startService(self) -> None:
        try:
            super().startService()
        except (CannotListenError, OverflowError) as error:
            self._listen_failed(error)


_log = Logger()
