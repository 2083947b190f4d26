"""
Waiting inside a recipe: for a watch to fire, for the connection to change state, or
for a deadline, whichever comes first.

Curator's recipes wait on a Java monitor that their watchers notify; here a recipe
awaits a L{Wakeup}, a one-shot Deferred fired by a watcher (L{Wakeup.watcher}) or by any
connection state change.  The state changes matter: after a session expiry the server
no longer has the watches of the old session, so a recipe that only waited for its
watch could wait forever; woken on C{LOST}/C{RECONNECTED} it reads again (its reads
wait for the new session through the client's retry loop).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from curatorish.framework import CuratorFramework
from curatorish.state import ConnectionState


def reactor_seconds() -> float:
    """@return: the reactor's clock (the recipes' deadlines are on it)."""
    from twisted.internet import reactor

    return reactor.seconds()  # type: ignore[attr-defined, no-any-return]


class Deadline:
    """
    A point on the reactor's clock (or none).

    @ivar at: the reactor time of the deadline, or None for "wait forever".
    """

    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else reactor_seconds() + max(timeout, 0.0)

    def remaining(self) -> float | None:
        """@return: seconds left (never negative), or None for no deadline."""
        if self.at is None:
            return None
        return max(self.at - reactor_seconds(), 0.0)

    def passed(self) -> bool:
        """@return: whether the deadline has passed."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0


class Wakeup:
    """
    A one-shot wake-up for a waiting recipe: fired by L{watcher} (pass it as a read's
    watcher), by L{wake}, or by a connection state change of C{client}.
    """

    def __init__(self, client: CuratorFramework) -> None:
        self._client = client
        self._fired: defer.Deferred[bool] = defer.Deferred()
        self._listening = False

    def wake(self, *_ignored: Any) -> None:
        """Fire the wake-up (idempotent)."""
        if not self._fired.called:
            self._fired.callback(True)

    def watcher(self, event: Any) -> None:
        """A watcher that fires the wake-up on any event."""
        self.wake()

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if state is not ConnectionState.SUSPENDED:
            self.wake()

    def __enter__(self) -> Wakeup:
        self._client.add_connection_state_listener(self._state_changed)
        self._listening = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._listening:
            self._client.remove_connection_state_listener(self._state_changed)
            self._listening = False

    async def wait(self, deadline: Deadline) -> bool:
        """
        Wait until woken or until the deadline.

        @return: True when woken, False when the deadline came first.
        """
        if self._fired.called:
            return True
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0:
            return False
        outcome: defer.Deferred[bool] = defer.Deferred()

        def finish(value: bool) -> bool:
            if not outcome.called:
                outcome.callback(value)
            return value

        self._fired.addCallback(finish)
        timer = None
        if remaining is not None:
            from twisted.internet import reactor

            timer = reactor.callLater(remaining, finish, False)  # type: ignore[attr-defined]
        try:
            return await outcome
        finally:
            if timer is not None and timer.active():
                timer.cancel()
