"""
Curator's connection states, their manager, and the two error policies.

The connection (L{curatorish.connection}) reports wire-level keeper states: connected,
connected read-only, disconnected, expired.  Curator folds those into five states that
say what an application may rely on:

  - C{CONNECTED}: the first successful connection of this client.
  - C{SUSPENDED}: the connection dropped; the session may still be alive on the server
    (ephemerals, locks and watches may still be there), so pause, don't give up.
  - C{RECONNECTED}: connected again after C{SUSPENDED}, C{LOST} or C{READ_ONLY} (on the
    same session, or on a new one after an expiry).
  - C{LOST}: the session is gone: the server said it expired, or (simulated expiration)
    the session timeout, times C{session_expiration_percent}/100, passed while
    C{SUSPENDED}, after which the client gives the session up and starts a new one.
  - C{READ_ONLY}: connected to a server in read-only mode.

Listeners are called in order, one state at a time, from a queue drained by
C{reactor.callLater(0, ...)}: never inside the connection's own event handling, so a
slow or failing listener cannot break the connection; one that raises is logged.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_log = Logger()


class ConnectionState(enum.Enum):
    """
    Curator's C{ConnectionState}.
    """

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    RECONNECTED = "RECONNECTED"
    LOST = "LOST"
    READ_ONLY = "READ_ONLY"

    @property
    def is_connected(self) -> bool:
        """
        C{True} for the states in which operations can be sent (Curator's C{isConnected}).
        """
        return self in (
            ConnectionState.CONNECTED,
            ConnectionState.RECONNECTED,
            ConnectionState.READ_ONLY,
        )


class ConnectionStateErrorPolicy:
    """
    Which states recipes (locks, leader election) must treat as losing what they hold.
    """

    def is_error_state(self, state: ConnectionState) -> bool:
        raise NotImplementedError


class StandardConnectionStateErrorPolicy(ConnectionStateErrorPolicy):
    """
    Curator's default: C{SUSPENDED} and C{LOST} are errors (safe: give up on a mere
    disconnection, because the session might be lost without us knowing).
    """

    def is_error_state(self, state: ConnectionState) -> bool:
        return state in (ConnectionState.SUSPENDED, ConnectionState.LOST)


class SessionConnectionStateErrorPolicy(ConnectionStateErrorPolicy):
    """
    Only C{LOST} is an error: hold on through a disconnection while the session lives.
    """

    def is_error_state(self, state: ConnectionState) -> bool:
        return state is ConnectionState.LOST


ConnectionStateListener = Callable[[Any, ConnectionState], Any]
"""C{listener(client, new_state)}; its return value is ignored (a Deferred is watched
only so that its failure gets logged)."""


class ConnectionStateManager:
    """
    Curator's C{ConnectionStateManager} on a reactor.

    @ivar current_state: the last state posted (C{CONNECTED} after the first
        connection, not the C{RECONNECTED} Curator keeps internally), L{None} before
        the first connection, and C{LOST} after L{close} (the session is gone).
    """

    def __init__(
        self,
        client: Any,
        reactor: IReactorTime,
        session_timeout_ms: int,
        session_expiration_percent: int = 100,
        negotiated_timeout_ms: Callable[[], int] = lambda: 0,
        inject_session_expiration: Callable[[], Any] | None = None,
    ) -> None:
        """
        @param client: passed as the first argument to every listener (until
            L{set_client} names another).
        @param session_timeout_ms: the requested session timeout, used until one is
            negotiated.
        @param session_expiration_percent: simulated expiration after this percentage of
            the session timeout spent C{SUSPENDED}; 0 turns it off (Curator's
            C{simulatedSessionExpirationPercent}, default 100).
        @param negotiated_timeout_ms: returns the last negotiated timeout (0 if none).
        @param inject_session_expiration: called when the simulated expiration is due;
            it must make the connection treat its session as expired (which posts
            C{LOST} through L{add_state_change}).
        """
        if not 0 <= session_expiration_percent <= 100:
            raise ValueError("session_expiration_percent must be between 0 and 100")
        self._client = client
        self._reactor = reactor
        self._session_timeout_ms = session_timeout_ms
        self._session_expiration_percent = session_expiration_percent
        self._negotiated_timeout_ms = negotiated_timeout_ms
        self._inject_session_expiration = inject_session_expiration
        self._listeners: list[ConnectionStateListener] = []
        self._queue: deque[ConnectionState] = deque()
        self._drain_call: IDelayedCall | None = None
        self._expiration_call: IDelayedCall | None = None
        self._initial_connect_posted = False
        self._started = False
        self._closed = False
        self._connected_waiters: list[defer.Deferred[bool]] = []
        self.current_state: ConnectionState | None = None

    # lifecycle

    def start(self) -> None:
        """
        Start accepting state changes (Curator rejects a second start; so do we).
        """
        if self._started:
            raise RuntimeError("Cannot be started more than once")
        self._started = True

    def close(self) -> None:
        """
        Stop: no more states are posted, pending ones are dropped, listeners cleared.
        """
        if self._closed:
            return
        self._closed = True
        self.current_state = ConnectionState.LOST
        self._cancel_expiration()
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None
        self._queue.clear()
        self._listeners.clear()
        self.release_waiters()

    def set_client(self, client: Any) -> None:
        """
        Pass C{client} to listeners from now on, instead of the one given to the
        constructor: the framework client is built around a core that already made
        this manager, so it introduces itself here.
        """
        self._client = client

    @property
    def _accepting(self) -> bool:
        return self._started and not self._closed

    # listeners

    def add_listener(self, listener: ConnectionStateListener) -> None:
        """
        Call C{listener(client, state)} for every state posted from now on.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: ConnectionStateListener) -> None:
        """
        Stop calling C{listener}; removing one that is not there is not an error.
        """
        if listener in self._listeners:
            self._listeners.remove(listener)

    # state changes (from the connection's event handling)

    def set_to_suspended(self) -> bool:
        """
        Post C{SUSPENDED}, unless already C{SUSPENDED} or C{LOST}.

        @return: C{True} if posted.
        """
        if not self._accepting:
            return False
        if self.current_state in (ConnectionState.SUSPENDED, ConnectionState.LOST):
            return False
        self._set_current(ConnectionState.SUSPENDED)
        self._post(ConnectionState.SUSPENDED)
        return True

    def add_state_change(self, new_state: ConnectionState) -> bool:
        """
        Post C{new_state} unless it is the current one.  The first positive state ever
        posted is reported as C{CONNECTED}, whatever was asked.

        @return: C{True} if posted.
        """
        if not self._accepting:
            return False
        current = self.current_state
        if current is new_state or (
            current is ConnectionState.CONNECTED and new_state is ConnectionState.RECONNECTED
        ):
            return False
        posted = new_state
        negative = new_state in (
            ConnectionState.LOST,
            ConnectionState.SUSPENDED,
            ConnectionState.READ_ONLY,
        )
        if not negative and not self._initial_connect_posted:
            self._initial_connect_posted = True
            posted = ConnectionState.CONNECTED
        # The state reported is the one posted: CONNECTED after the first connection.
        self._set_current(posted)
        self._post(posted)
        return True

    @property
    def is_connected(self) -> bool:
        return self.current_state is not None and self.current_state.is_connected

    def wait_until_connected(self, timeout_s: float | None = None) -> defer.Deferred[bool]:
        """
        @return: a Deferred firing with C{True} once connected, or C{False} if
            C{timeout_s} passes first (or the manager closes).
        """
        if self.is_connected:
            return defer.succeed(True)
        waiter: defer.Deferred[bool] = defer.Deferred()
        self._connected_waiters.append(waiter)
        if timeout_s is not None:
            timer = self._reactor.callLater(timeout_s, self._give_up_waiting, waiter)

            def cancel_timer(result: bool) -> bool:
                if timer.active():
                    timer.cancel()
                return result

            waiter.addBoth(cancel_timer)
        return waiter

    def release_waiters(self) -> None:
        """
        Answer every L{wait_until_connected} caller C{False} now: the connection
        ended for good (refused credentials), so none of them would ever be answered.
        """
        waiters, self._connected_waiters = self._connected_waiters, []
        for waiter in waiters:
            waiter.callback(False)

    def _give_up_waiting(self, waiter: defer.Deferred[bool]) -> None:
        if waiter in self._connected_waiters:
            self._connected_waiters.remove(waiter)
            waiter.callback(False)

    # internals

    def _set_current(self, state: ConnectionState) -> None:
        self.current_state = state
        self._cancel_expiration()
        if state is ConnectionState.SUSPENDED and self._session_expiration_percent > 0:
            self._arm_expiration()
        if state.is_connected:
            waiters, self._connected_waiters = self._connected_waiters, []
            for waiter in waiters:
                waiter.callback(True)

    def use_session_timeout_ms(self) -> int:
        """
        @return: how long C{SUSPENDED} may last before the simulated expiration: the
            negotiated timeout (the requested one until negotiated) times the percentage.
        """
        negotiated = self._negotiated_timeout_ms()
        timeout_ms = negotiated if negotiated > 0 else self._session_timeout_ms
        return timeout_ms * self._session_expiration_percent // 100

    def _arm_expiration(self) -> None:
        delay_s = self.use_session_timeout_ms() / 1000.0
        self._expiration_call = self._reactor.callLater(delay_s, self._expiration_due)

    def _cancel_expiration(self) -> None:
        if self._expiration_call is not None and self._expiration_call.active():
            self._expiration_call.cancel()
        self._expiration_call = None

    def _expiration_due(self) -> None:
        self._expiration_call = None
        if not self._accepting or self.current_state is not ConnectionState.SUSPENDED:
            return
        _log.warn(
            "Session timeout has elapsed while SUSPENDED. Injecting a session expiration. "
            "Adjusted session timeout ms: {timeout_ms}",
            timeout_ms=self.use_session_timeout_ms(),
        )
        # Re-arm first, as Curator resets the start of SUSPENDED: if the injection
        # does not lead to LOST we try again a session timeout later.
        self._arm_expiration()
        if self._inject_session_expiration is None:
            self.add_state_change(ConnectionState.LOST)
            return
        try:
            self._inject_session_expiration()
        except Exception:
            _log.failure("Could not inject session expiration")

    def _post(self, state: ConnectionState) -> None:
        if state in (ConnectionState.SUSPENDED, ConnectionState.LOST):
            _log.warn("State change: {state}", state=state.value)
        else:
            _log.info("State change: {state}", state=state.value)
        self._queue.append(state)
        if self._drain_call is None:
            self._drain_call = self._reactor.callLater(0, self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        while self._queue and not self._closed:
            state = self._queue.popleft()
            if not self._listeners:
                _log.debug("There are no ConnectionStateListeners registered.")
            for listener in list(self._listeners):
                self._call_listener(listener, state)

    def _call_listener(self, listener: ConnectionStateListener, state: ConnectionState) -> None:
        try:
            result = listener(self._client, state)
        except Exception:
            _log.failure(
                "Connection state listener {listener!r} raised for {state}",
                listener=listener,
                state=state.value,
            )
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(
                lambda failure: _log.failure(
                    "Connection state listener {listener!r} failed for {state}",
                    failure=failure,
                    listener=listener,
                    state=state.value,
                )
            )


__all__ = [
    "ConnectionState",
    "ConnectionStateErrorPolicy",
    "ConnectionStateListener",
    "ConnectionStateManager",
    "SessionConnectionStateErrorPolicy",
    "StandardConnectionStateErrorPolicy",
]
