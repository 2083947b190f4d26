"""
The client port shared by the session processes of one zkreg (C{--session-processes}).

Every session process opens its own listening socket on the same address with
C{SO_REUSEPORT}, and the kernel spreads new connections over them by a hash of each
connection's addresses (Linux's reuseport groups).  One listening socket inherited by
every child would share one accept queue instead; with epoll every child wakes for
each connection and whichever runs first takes it (with Twisted's accept loop, often
several), which piles connections onto one process (see docs/processes.md for the
measurement).

The parent process binds the same address with C{SO_REUSEPORT} but never listens on
it (L{reserve}): the port is taken from other programs before any child starts, a
port already in use fails the start with one line, and C{tcp:0} is resolved to one
port that every child then shares.  A bound socket that does not listen receives no
connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from twisted.application import service
from twisted.internet.error import CannotListenError

__all__ = ["ReusePortListener", "StreamAddress", "parse_stream_endpoint", "reserve"]

#: Twisted's default listen backlog for TCP endpoints.
DEFAULT_BACKLOG = 50


@dataclass(frozen=True)
class StreamAddress:
    """
    A TCP listening address read from a C{tcp:} or C{tcp6:} endpoint string.

    @ivar family: C{socket.AF_INET} or C{socket.AF_INET6}.
    @ivar port: the port (0 until resolved by L{reserve}).
    @ivar interface: the address to bind, C{""} for every interface.
    @ivar backlog: the listen backlog.
    """

    family: int
    port: int
    interface: str
    backlog: int

    def describe(self) -> str:
        """@return: the endpoint string of this address (colons escaped as Twisted's)."""
        kind = "tcp6" if self.family == socket.AF_INET6 else "tcp"
        text = f"{kind}:{self.port}"
        if self.interface:
            text += ":interface=" + self.interface.replace(":", "\\:")
        if self.backlog != DEFAULT_BACKLOG:
            text += f":backlog={self.backlog}"
        return text


def _split_escaped(description: str) -> list[str]:
    """Split an endpoint string on the colons not escaped with a backslash."""
    parts, current, escaped = [], "", False
    for char in description:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_stream_endpoint(description: str) -> StreamAddress:
    """
    Read a C{tcp:PORT[:interface=ADDR][:backlog=N]} (or C{tcp6:}) endpoint string.

    @raise ValueError: for another kind of endpoint (C{unix:}, C{ssl:}, ...), which
        session processes cannot share, or a malformed one.
    """
    kind, *rest = _split_escaped(description)
    if kind not in ("tcp", "tcp6"):
        raise ValueError(
            f"session processes share a tcp: or tcp6: port, not {kind or description!r}"
        )
    positional = [part for part in rest if "=" not in part]
    named = dict(part.split("=", 1) for part in rest if "=" in part)
    unknown = sorted(set(named) - {"port", "interface", "backlog"})
    if unknown or len(positional) > 1:
        raise ValueError(f"unsupported parameters {', '.join(unknown) or positional[1:]}")
    port_text = named.get("port", positional[0] if positional else "")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"port {port_text!r} is not in 0-65535")
    backlog_text = named.get("backlog", str(DEFAULT_BACKLOG))
    if not backlog_text.isdigit():
        raise ValueError(f"backlog {backlog_text!r} is not a whole number")
    family = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
    interface = named.get("interface", "::" if family == socket.AF_INET6 else "")
    return StreamAddress(family, int(port_text), interface, int(backlog_text))


def _bound_socket(address: StreamAddress) -> socket.socket:
    """
    A socket bound to C{address} with C{SO_REUSEPORT} (and C{SO_REUSEADDR}, as
    Twisted's listening sockets).

    @raise CannotListenError: when the address cannot be bound.
    """
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address.interface, address.port))
    except OSError as error:
        sock.close()
        raise CannotListenError(address.interface, address.port, error) from error
    return sock


def reserve(address: StreamAddress) -> tuple[socket.socket, StreamAddress]:
    """
    Bind C{address} without listening, for the parent to hold while its children
    listen on it.

    @return: the bound socket (keep it open) and the address with its port resolved.
    @raise CannotListenError: when the port is used by a program without
        C{SO_REUSEPORT} (or by another user).
    """
    sock = _bound_socket(address)
    port = sock.getsockname()[1]
    return sock, StreamAddress(address.family, port, address.interface, address.backlog)


class ReusePortListener(service.Service):
    """
    Listen on a shared address with C{SO_REUSEPORT} while running, with the factory
    given (a child's client or TLS listener).

    @ivar port: the listening port (L{None} while stopped).
    """

    def __init__(self, reactor: Any, address: StreamAddress, factory: Any) -> None:
        self.reactor = reactor
        self.address = address
        self.factory = factory
        self.port: Any = None

    def startService(self) -> None:
        """
        @raise CannotListenError: when the address cannot be bound.
        """
        sock = _bound_socket(self.address)
        try:
            sock.listen(self.address.backlog)
            sock.setblocking(False)
            self.port = self.reactor.adoptStreamPort(sock.fileno(), sock.family, self.factory)
        finally:
            # adoptStreamPort listens on a duplicate of the descriptor.
            sock.close()
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()
        return None
