"""
Leader election on Curator's znodes: C{LeaderLatch} and C{LeaderSelector}.

L{LeaderLatch}: each participant creates a protected ephemeral-sequential node
C{<path>/_c_<uuid>-latch-<seq>} whose data is its id; the first in sequence order
leads, each other watches only its predecessor.  L{LeaderSelector}: participants
queue on an L{InterProcessMutex} (C{_c_<uuid>-lock-<seq>}, data the id); the holder's
C{take_leadership} runs, and leadership ends when it returns.  A Java process using
Apache Curator on the same path takes part in the same election.

Never two leaders: leadership is dropped I{at once} (before any listener runs) when
the connection state is an error state of the client's error policy (by default
SUSPENDED and LOST), and it is only ever taken from a fresh listing of the children
made while the connection is healthy.  With the default policy a leader cut off from
the server drops out when its connection notices (after two thirds of the session
timeout at most), before the server can expire its session and let the next
participant in.  With L{SessionConnectionStateErrorPolicy} a latch (and a selector
whose listener leaves connection states to it) keeps leading through a short
SUSPENDED, but (unlike Curator, which waits for LOST) only for a quarter of the
session timeout: soon after that the server may expire the session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer, threads
from twisted.logger import Logger

from curatorish import errors
from curatorish.connection import WatchedEvent
from curatorish.connection.paths import validate_path
from curatorish.node_names import make_path, split_path
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.lock_internals import (
    LockInternalsDriver,
    sort_children,
    wait_for_wake,
)
from curatorish.recipes.locks import AnyClient, InterProcessMutex
from curatorish.state import ConnectionState
from zkreg.proto.consts import CreateMode, EventType

_log = Logger()

#: Curator's C{LeaderLatch} node name.
LATCH_LOCK_NAME = "latch-"
#: Curator's C{LeaderSelector} node name (its mutex's).
SELECTOR_LOCK_NAME = "lock-"

_DRIVER = LockInternalsDriver()


class CloseMode(enum.Enum):
    """What L{LeaderLatch.close} tells the latch's listeners (Curator's C{CloseMode})."""

    SILENT = "SILENT"
    NOTIFY_LEADER = "NOTIFY_LEADER"


class State(enum.Enum):
    LATENT = "LATENT"
    STARTED = "STARTED"
    CLOSED = "CLOSED"


class Participant(NamedTuple):
    """One participant of an election (Curator's C{Participant})."""

    id: str
    is_leader: bool


def id_bytes(participant_id: str) -> bytes:
    """@return: a participant's node data (Curator's C{LeaderSelector.getIdBytes})."""
    return participant_id.encode("utf-8")


async def _participants(client: Any, path: str, lock_name: str) -> list[Participant]:
    try:
        children = await client.get_children(path)
    except errors.NoNodeError:
        return []
    found: list[Participant] = []
    for name in sort_children(children, lock_name, _DRIVER):
        try:
            data, _stat = await client.get_data(make_path(path, name))
        except errors.NoNodeError:
            continue
        found.append(Participant((data or b"").decode("utf-8", "replace"), not found))
    return found


def _log_failure(description: str) -> Callable[[Any], None]:
    def log(failure: Any) -> None:
        if not failure.check(defer.CancelledError):
            _log.failure(description, failure)

    return log


class _SuspendedDeadline:
    """
    Under a policy that keeps leadership through SUSPENDED (Curator's session policy),
    keep it only while the server cannot yet have expired our session.  The
    connection reports SUSPENDED at most two thirds of the session timeout after it
    last heard from the server (its read timeout), and the server expires the session
    one timeout after that; so a quarter of the timeout after SUSPENDED (a margin of a
    twelfth for the clocks and the network), leadership ends, before a successor can
    be told our node is gone.  Curator waits for LOST, which comes a whole session
    timeout after SUSPENDED: two leaders for up to two thirds of the timeout.
    """

    def __init__(self, client: Any, expired: Callable[[], None]) -> None:
        self._client = client
        self._expired = expired
        self._call: Any = None

    def arm(self) -> None:
        self.cancel()
        connection = self._client.zookeeper
        timeout_ms = connection.negotiated_timeout_ms or connection.session_timeout_ms
        self._call = connection.reactor.callLater(timeout_ms / 4000.0, self._due)

    def cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _due(self) -> None:
        self._call = None
        if self._client.state is ConnectionState.SUSPENDED:
            self._expired()


class LeaderLatch(Recipe):
    """
    Curator's C{LeaderLatch}: start it, then ask L{has_leadership}, wait with
    L{await_leadership}, or listen (L{add_listener}: an object with C{is_leader()}
    and C{not_leader()}).  Leadership lasts until L{close} or a connection problem.
    """

    def __init__(
        self,
        client: AnyClient,
        path: str,
        id: str = "",  # noqa: A002  (Curator's name)
        close_mode: CloseMode = CloseMode.SILENT,
    ) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path
        self.id = id
        self.close_mode = close_mode
        self.state = State.LATENT
        self._has_leadership = False
        self._our_path: str | None = None
        self._listeners: list[Any] = []
        self._waiters: list[defer.Deferred[None]] = []
        self._suspended_deadline = _SuspendedDeadline(self.client, self._suspended_too_long)

    # -- lifecycle --------------------------------------------------------------------

    @recipe_method
    def start(self) -> None:
        """Join the election (in the background: watch L{has_leadership})."""
        if self.state is not State.LATENT:
            raise RuntimeError("Cannot be started more than once")
        self.state = State.STARTED
        self.client.add_connection_state_listener(self._state_changed)
        self._spawn(self._reset(), "leader latch start")

    @recipe_method
    async def close(self, close_mode: CloseMode | None = None) -> None:
        """
        Leave the election: leadership ends at once, then our node is deleted
        (guaranteed).  With C{NOTIFY_LEADER} a leader's listeners hear C{not_leader};
        with C{SILENT} (the default) they hear nothing more.
        """
        if self.state is not State.STARTED:
            raise RuntimeError("Already closed or has not been started")
        self.state = State.CLOSED
        self.client.remove_connection_state_listener(self._state_changed)
        self._suspended_deadline.cancel()
        if (close_mode or self.close_mode) is CloseMode.NOTIFY_LEADER:
            self._set_leadership(False)
            self._listeners.clear()
        else:
            self._listeners.clear()
            self._set_leadership(False)
        self._wake_waiters()
        await self._set_node(None)

    # -- queries ----------------------------------------------------------------------

    def has_leadership(self) -> bool:
        """@return: whether this participant leads now."""
        return self.state is State.STARTED and self._has_leadership

    @recipe_method(waits=True)
    async def await_leadership(self, timeout: float | None = None) -> bool:
        """
        Wait until this participant leads.

        @param timeout: seconds; L{None} waits for ever.
        @return: whether it leads (C{False} if C{timeout} passed or the latch closed).
        """
        reactor = self.client.zookeeper.reactor
        deadline = None if timeout is None else reactor.seconds() + timeout
        while self.state is State.STARTED and not self._has_leadership:
            waiter: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(waiter)
            if not await wait_for_wake(self.client, waiter, deadline):
                break
        return self.has_leadership()

    @recipe_method
    async def get_participants(self) -> list[Participant]:
        """@return: every participant, in election order (the leader first)."""
        return await _participants(self.client, self.path, LATCH_LOCK_NAME)

    @recipe_method
    async def get_leader(self) -> Participant:
        """@return: the leader, or C{Participant("", False)} when there is none."""
        found = await _participants(self.client, self.path, LATCH_LOCK_NAME)
        return found[0] if found else Participant("", False)

    def get_id(self) -> str:
        return self.id

    def get_our_path(self) -> str | None:
        """@return: our node's path (L{None} while it is being made)."""
        return self._our_path

    # -- listeners --------------------------------------------------------------------

    def add_listener(self, listener: Any) -> None:
        """
        Call C{listener.is_leader()} when we gain leadership and
        C{listener.not_leader()} when we lose it (on the blocking face, on the
        client's event thread).
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the algorithm (reactor thread) -----------------------------------------------

    def _spawn(self, work: Any, description: str) -> defer.Deferred[Any]:
        return defer.ensureDeferred(work).addErrback(_log_failure(description))

    def _in_error_state(self) -> bool:
        state = self.client.state
        if state is None:
            return True
        return not state.is_connected or self.client.connection_state_error_policy.is_error_state(
            state
        )

    def _set_leadership(self, leads: bool) -> None:
        was = self._has_leadership
        self._has_leadership = leads
        if was and not leads:
            for listener in list(self._listeners):
                self.listener_caller(listener.not_leader)()
        elif leads and not was:
            for listener in list(self._listeners):
                self.listener_caller(listener.is_leader)()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    async def _set_node(self, new_path: str | None) -> None:
        old, self._our_path = self._our_path, new_path
        if old is not None:
            try:
                await self.client.delete(old, guaranteed=True, quietly=True)
            except errors.ZooKeeperError:
                pass  # guaranteed: goes on in the background

    async def _reset(self) -> None:
        self._set_leadership(False)
        await self._set_node(None)
        while True:
            try:
                created = await self.client.create(
                    make_path(self.path, LATCH_LOCK_NAME),
                    id_bytes(self.id),
                    mode=CreateMode.EPHEMERAL_SEQUENTIAL,
                    parents_as_containers=True,
                    protected=True,
                )
                break
            except errors.NoNodeError:
                # A container parent was reaped between its creation and ours.
                if self.state is not State.STARTED:
                    return
            except errors.ConnectionClosedError:
                return
            except errors.ConnectionLossError:
                # No connection within the retry policy's patience (started while the
                # server is away): join once connected.  A node the unanswered create
                # may have made is found and deleted by the protected create's cleanup.
                if self.state is not State.STARTED:
                    return
                if not await self.client.block_until_connected(None):
                    return
        await self._set_node(created.path)
        if self.state is State.CLOSED:
            await self._set_node(None)
        else:
            await self._get_children()

    async def _get_children(self) -> None:
        if self.state is not State.STARTED:
            return
        children = await self.client.get_children(self.path)
        await self._check_leadership(children)

    async def _check_leadership(self, children: list[str]) -> None:
        if self.state is not State.STARTED:
            return
        our_path = self._our_path
        ordered = sort_children(children, LATCH_LOCK_NAME, _DRIVER)
        our_name = split_path(our_path)[1] if our_path is not None else None
        our_index = ordered.index(our_name) if our_name in ordered else -1
        if our_index < 0:
            _log.info("Can't find our node {path}; resetting", path=our_path)
            await self._reset()
        elif our_index == 0:
            # Only a listing made on a healthy connection makes us the leader: a reply
            # read after the connection broke (its SUSPENDED not yet delivered) does not.
            if not self._in_error_state():
                self._set_leadership(True)
        else:
            self._set_leadership(False)
            watch_path = make_path(self.path, ordered[our_index - 1])

            def watcher(event: WatchedEvent) -> None:
                if self.state is State.STARTED and event.type == EventType.NodeDeleted:
                    self._spawn(self._get_children(), "leader latch check")

            try:
                await self.client.get_data(watch_path, watcher=watcher)
            except errors.NoNodeError:
                await self._get_children()

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if self.state is not State.STARTED:
            return
        policy = self.client.connection_state_error_policy
        if state is ConnectionState.RECONNECTED:
            if policy.is_error_state(ConnectionState.SUSPENDED) or not self._has_leadership:
                self._spawn(self._get_children(), "leader latch check after reconnect")
        elif state is ConnectionState.SUSPENDED:
            if policy.is_error_state(ConnectionState.SUSPENDED):
                self._set_leadership(False)
            else:
                self._suspended_deadline.arm()
        elif state is ConnectionState.LOST:
            self._set_leadership(False)
        if state is not ConnectionState.SUSPENDED:
            self._suspended_deadline.cancel()

    def _suspended_too_long(self) -> None:
        if self.state is State.STARTED:
            _log.info("SUSPENDED for a quarter of the session timeout: leadership ends")
            self._set_leadership(False)


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
        self._suspended_deadline = _SuspendedDeadline(self.client, self._interrupt)
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
        return await _participants(self.client, self.path, SELECTOR_LOCK_NAME)

    @recipe_method
    async def get_leader(self) -> Participant:
        found = await _participants(self.client, self.path, SELECTOR_LOCK_NAME)
        return found[0] if found else Participant("", False)

    def get_id(self) -> str:
        return self.id

    # -- internals (reactor thread) ---------------------------------------------------

    def _requeue(self) -> bool:
        if self._is_queued or self.state is not State.STARTED:
            return False
        self._is_queued = True
        self._task = defer.ensureDeferred(self._work_loop())
        self._task.addErrback(_log_failure("leader selector"))
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
    "CloseMode",
    "LATCH_LOCK_NAME",
    "LeaderLatch",
    "LeaderSelector",
    "LeaderSelectorListenerAdapter",
    "Participant",
    "State",
    "id_bytes",
]
