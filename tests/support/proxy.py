"""
A TCP proxy in front of a server, so a test can cut a client's connection and keep
it from reconnecting for a while, without touching the client's internals.
"""

from __future__ import annotations

import socket
import threading

from tests.support.ports import free_port


class TcpProxy:
    """
    Forwards 127.0.0.1:C{port} to 127.0.0.1:C{target_port}, one pair of pump threads
    per connection.

    @ivar port: where clients connect.
    @ivar blocked: while true, new connections are accepted and closed at once.
    @ivar stalled: while true, bytes are read and dropped in both directions, and no
        connection is closed: a partition as both ends see it until their timeouts.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.blocked = False
        self.stalled = False
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._running = False

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and forward in background threads."""
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._running = True
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()  # type: ignore[union-attr]
            except TimeoutError:
                continue
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not self.stalled:
                    sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Close every forwarded connection (both ends)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def block(self) -> None:
        """Refuse new connections (accept and close) until L{unblock}."""
        self.blocked = True

    def unblock(self) -> None:
        self.blocked = False

    def stall(self) -> None:
        """Drop every byte from now on, closing nothing, until L{unstall}."""
        self.stalled = True

    def unstall(self) -> None:
        self.stalled = False

    def stop(self) -> None:
        """Stop listening and cut everything."""
        self._running = False
        if self._listener is not None:
            self._listener.close()
        self.cut()
