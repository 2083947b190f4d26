"""
Session expiry as a small service of the data server.

It wakes at each tick boundary where session deadlines fall, as ZooKeeper's expirer
thread sleeps until the next bucket's time, so a session expires when its rounded
deadline passes, not up to a tick later; each expired session gets a closeSession txn.
The deadlines themselves live in the L{zkreg.data.sessions.SessionTable}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.logger import Logger

from zkreg.data.sessions import SessionTable

__all__ = ["SessionExpiry"]


class SessionExpiry(service.Service):
    """Closes the sessions whose deadline passed, each tick, while running."""

    log = Logger()

    def __init__(
        self,
        sessions: SessionTable,
        clock: Any,
        now_ms: Callable[[], int],
        close_session: Callable[[int], Any],
        refusing_writes: Callable[[], bool],
    ) -> None:
        """
        @param close_session: submits a closeSession txn for a session id.
        @param refusing_writes: true once the data server takes no more writes (then
            nothing expires: a closeSession could not be logged).
        """
        self._sessions = sessions
        self._clock = clock
        self._now_ms = now_ms
        self._close_session = close_session
        self._refusing_writes = refusing_writes
        self._call: Any = None

    def expire(self) -> list[int]:
        """
        Close every session whose deadline has passed.

        @return: the expired session ids.
        """
        if self._refusing_writes():
            return []
        expired = self._sessions.expired(self._now_ms())
        for session_id in expired:
            self.log.info("expiring session {session:#x}", session=session_id)
            self._close_session(session_id)
        return expired

    def startService(self) -> None:
        service.Service.startService(self)
        self._schedule()

    def stopService(self) -> None:
        service.Service.stopService(self)
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        delay_ms = max(0, self._sessions.next_expiration_ms() - self._now_ms())
        self._call = self._clock.callLater(delay_ms / 1000.0, self._tick)

    def _tick(self) -> None:
        self._call = None
        try:
            self.expire()
        except Exception:
            self.log.failure("session expiry failed")
        if self.running:
            self._schedule()
