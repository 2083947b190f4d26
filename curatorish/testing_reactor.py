"""
zkreg for Twisted tests: L{ReactorTestingServer} runs zkreg's service on the
caller's reactor and never blocks it.

Kept apart from L{curatorish.testing}, whose L{curatorish.testing.TestingServer}
serves threaded code (a subprocess, or a service on the shared reactor thread, waited
for from another thread): this one is for code that runs on the reactor thread.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curatorish.zkreg_launch import free_port, start_zkreg_service, zkreg_options


class ReactorTestingServer:
    """
    zkreg as a service on the caller's (running) reactor, for Twisted tests: every
    method is called on the reactor thread and never blocks it.

        server = ReactorTestingServer()
        server.start()
        client = CuratorFramework(server.connect_string)
        ...
        await server.expire_session(client.zookeeper.session_id, ...)
        await server.close()

    @ivar port: the client port (kept across restarts).
    @ivar data_dir: the data directory (kept across restarts).
    """

    name = "zkreg"

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | None = None,
        *,
        reactor: Any = None,
        tick_time_ms: int = 2000,
        extra_args: Sequence[str] = (),
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.port = port or free_port()
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="zkreg-testing-"))
        self.tick_time_ms = tick_time_ms
        self.extra_args = list(extra_args)
        self._service: Any = None

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    hosts = connect_string

    @property
    def is_running(self) -> bool:
        return self._service is not None

    def start(self) -> None:
        """
        Start the service now (it listens before this returns).
        """
        if self._service is None:
            options = zkreg_options(
                "127.0.0.1", self.port, self.data_dir, self.tick_time_ms, self.extra_args
            )
            self._service = start_zkreg_service(options)

    def stop(self) -> Any:
        """
        @return: a Deferred firing once the service has stopped (data is kept).
        """
        from twisted.internet import defer

        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        return defer.maybeDeferred(service.stopService)

    async def restart(self) -> None:
        await self.stop()
        self.start()

    def drop_connections(self) -> int:
        """
        Abort every client connection (sessions survive).

        @return: how many were dropped.
        """
        dropped = 0
        for child in list(self._service or ()):
            factory = getattr(child, "factory", None)
            for connection in list(getattr(factory, "connections", ())):
                connection.transport.abortConnection()
                dropped += 1
        return dropped

    async def expire_session(
        self, session_id: int, password: bytes, timeout_s: float = 10.0, attempts: int = 10
    ) -> bool:
        """
        Expire a session as L{expire_session} does, with a curatorish connection on
        this reactor instead of a blocking socket.

        @return: C{True} if the session is now gone because we closed it.
        """
        from curatorish.connection import ZooKeeperConnection

        closed_once = False
        for _ in range(attempts):
            joiner = ZooKeeperConnection(
                self.connect_string,
                self.reactor,
                session_timeout_ms=30_000,
                renew_expired_session=False,
                reconnect_jitter_ms=0,
                session_id=session_id,
                session_password=password,
            )
            joiner.start()
            joined = await joiner.wait_connected(timeout_s)
            if not joined:
                await joiner.close()
                return closed_once
            await joiner.close()
            closed_once = True
        return False

    async def close(self) -> None:
        """
        Stop and remove the data directory (if this server made it).
        """
        await self.stop()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


__all__ = ["ReactorTestingServer"]
