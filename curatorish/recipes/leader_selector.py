"""
Curator's C{LeaderSelector}: participants queue on an L{InterProcessMutex}
(C{_c_<uuid>-lock-<seq>}, data the id); the holder's C{take_leadership} runs, and
leadership ends when it returns (see L{curatorish.recipes.leader} for why there are
never two leaders).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from curatorish.connection.paths import validate_path
from curatorish.recipes.election import (
    LEADER_NAMESPACE,
    Participant,
    State,
    SuspendedDeadline,
    find_leader,
    id_bytes,
    list_participants,
    log_failure,
)
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.locks import AnyClient, InterProcessMutex
from curatorish.state import ConnectionState

_log = Logger(namespace=LEADER_NAMESPACE)

#: Curator's C{LeaderSelector} node name (its mutex's).
SELECTOR_LOCK_NAME = "lock-"


class CancelLeadershipException(Exception):
    """
    Raised by a L{LeaderSelector} listener's C{state_changed} to end leadership now
    (Curator's C{CancelLeadershipException}).
    """


class LeaderSelectorListenerAdapter:
    """
    A base for L{LeaderSelector} listeners (Curator's
    C{LeaderSelectorListenerAdapter}): leadership is cancelled when the connection
    state is an error state of the client's error policy.
    """

    def take_leadership(self, client: Any) -> Any:
        raise NotImplementedError

    def state_changed(self, client: Any, new_state: ConnectionState) -> None:
        policy = getattr(client, "connection_state_error_policy", None)
        if policy is None:
            policy = client.async_client.connection_state_error_policy
        if policy.is_error_state(new_state):
            raise CancelLeadershipException()


class LeaderSelector(Recipe):
    """
    Curator's C{LeaderSelector}: the participant that holds the election's mutex
    runs C{listener.take_leadership(client)}; leadership ends when it returns.

    Async face: C{take_leadership} may return a Deferred or be a coroutine function;
    an interruption cancels it.  Blocking face: it runs in a thread of the reactor's
    pool, and since a Python thread cannot be interrupted it should return soon
    after L{has_leadership} turns false; the mutex is released only when it returns.

    Unless the listener has its own C{state_changed(client, state)} (which may raise
    L{CancelLeadershipException}), leadership is interrupted at once when the
    connection state is an error state of the client's policy.
    """

    def __init__(self, client: AnyClient, path: str, listener: Any, id: str = "") -> None:  # noqa: A002
        super().__init__(client)
        validate_path(path)
        self._face_client = client
        self.path = path
        self.id = id
        self.listener = listener
        self.state = State.LATENT
        self._auto_requeue = False
        self._is_queued = False
        self._leading = False
        self._task: defer.Deferred[Any] | None = None
        self._leadership_work: defer.Deferred[Any] | None = None
        self._owner = object()
        self.mutex = InterProcessMutex(
            self.client, path, lock_node_bytes=id_bytes(id) if id else None
        )
        own = getattr(type(listener), "state_changed", None)
        self._suspended_deadline = SuspendedDeadline(self.client, self._interrupt)
        self._custom_state_changed = callable(getattr(listener, "state_changed", None)) and (
            own is not LeaderSelectorListenerAdapter.state_changed
        )

    @recipe_method
    def auto_requeue(self) -> None:
        """Queue again for leadership each time it ends (until L{close})."""
        self._auto_requeue = True

    @recipe_method
    def start(self) -> None:
        """Queue for leadership."""
        if self.state is not State.LATENT:
            raise RuntimeError("Cannot be started more than once")
        self.state = State.STARTED
        self.client.add_connection_state_listener(self._state_changed)
        self._requeue()

    @recipe_method
    def requeue(self) -> bool:
        """Queue again (if not queued or leading now). @return: whether it queued."""
        if self.state is not State.STARTED:
            raise RuntimeError("close() has already been called")
        return self._requeue()

    def has_leadership(self) -> bool:
        """@return: whether C{take_leadership} is running and not interrupted."""
        return self._leading

    @recipe_method
    def interrupt_leadership(self) -> None:
        """
        End leadership now: C{has_leadership()} turns false and (async face) the
        C{take_leadership} work is cancelled.
        """
        self._interrupt()

    def _interrupt(self) -> None:
        self._leading = False
        work = self._leadership_work
        if work is not None and not self.blocking:
            work.cancel()

    @recipe_method
    async def close(self) -> None:
        """Leave the election: interrupt leadership, give up our place in the queue."""
        if self.state is not State.STARTED:
            raise RuntimeError("Already closed or has not been started")
        self.state = State.CLOSED
        self.client.remove_connection_state_listener(self._state_changed)
        self._suspended_deadline.cancel()
        self._leading = False
        task = self._task
        if self._leadership_work is not None:
            self._leadership_work.cancel()
        if task is not None:
            task.cancel()
            try:
                await task
            except Exception:
                pass

    @recipe_method
    async def get_participants(self) -> list[Participant]:
        """@return: every participant, the leader first."""
        return await list_participants(self.client, self.path, SELECTOR_LOCK_NAME)

    @recipe_method
    async def get_leader(self) -> Participant:
        return await find_leader(self.client, self.path, SELECTOR_LOCK_NAME)

    def get_id(self) -> str:
        return self.id

    # -- internals (reactor thread) ---------------------------------------------------

    def _requeue(self) -> bool:
        if self._is_queued or self.state is not State.STARTED:
            return False
        self._is_queued = True
        self._task = defer.ensureDeferred(self._work_loop())
        self._task.addErrback(log_failure("leader selector"))
        return True

    async def _work_loop(self) -> None:
        try:
            await self._do_work()
        finally:
            self._is_queued = False
            self._task = None
        if self._auto_requeue and self.state is State.STARTED:
            self._requeue()

    async def _do_work(self) -> None:
        acquired = False
        try:
            await self.mutex.acquire(owner=self._owner)
            acquired = True
            if self.state is not State.STARTED:
                return
            self._leading = True
            try:
                self._leadership_work = self._start_leadership_work()
                await self._leadership_work
            except defer.CancelledError:
                _log.debug("Leadership interrupted")
            except Exception:
                _log.failure("take_leadership raised")
        finally:
            self._leading = False
            self._leadership_work = None
            if acquired:
                try:
                    await self.mutex.release(owner=self._owner)
                except Exception as error:
                    _log.info("Releasing leadership: {error}", error=error)

    def _start_leadership_work(self) -> defer.Deferred[Any]:
        if self.blocking:
            return threads.deferToThread(self.listener.take_leadership, self._face_client)
        result = self.listener.take_leadership(self._face_client)
        if isinstance(result, defer.Deferred):
            return result
        if hasattr(result, "__await__"):
            return defer.ensureDeferred(result)
        return defer.succeed(result)

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if self.state is not State.STARTED:
            return
        if not self._custom_state_changed:
            if self.client.connection_state_error_policy.is_error_state(state):
                self._interrupt()
            elif state is ConnectionState.SUSPENDED:
                self._suspended_deadline.arm()
            if state is not ConnectionState.SUSPENDED:
                self._suspended_deadline.cancel()
            return
        reactor = self.client.zookeeper.reactor

        def call_listener() -> None:
            try:
                self.listener.state_changed(self._face_client, state)
            except CancelLeadershipException:
                if self.blocking:
                    reactor.callFromThread(self._interrupt)
                else:
                    self._interrupt()

        if self.blocking:
            self.listener_caller(call_listener)()
        else:
            call_listener()


__all__ = [
    "CancelLeadershipException",
    "LeaderSelector",
    "LeaderSelectorListenerAdapter",
    "SELECTOR_LOCK_NAME",
]
