"""
Sending on a Twisted TCP transport without a reactor turn, shared by both ends of
the client protocol (zkreg's client connections, curatorish's connection).

Twisted's C{write} always queues and registers the socket for writing, then
unregisters it after the reactor's next write pass: two C{epoll_ctl} calls and a
loop turn per write.  A request-reply protocol writes one small frame per turn and
the socket's buffer is almost always empty, so sending at once is one C{send}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp


def sends_directly(transport: Any) -> bool:
    """
    @return: whether L{send_now} may send on C{transport} itself (a plain TCP
        connection; TLS and other transports keep Twisted's C{write}).
    """
    return isinstance(transport, tcp.Connection) and not transport.TLS


def send_now(transport: tcp.Connection, data: bytes) -> None:
    """
    Send C{data} at once when nothing is queued on C{transport}, else queue it.

    Anything not sent (a full socket buffer, an error) goes through Twisted's
    C{write}, which keeps order and reports errors the usual way.  Only for a
    transport L{sends_directly} accepts: this reads the transport's own buffer
    state, which Twisted does not publish.
    """
    if (
        transport.connected
        and not transport.disconnecting
        and not transport._tempDataBuffer
        and transport.offset == len(transport.dataBuffer)
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
