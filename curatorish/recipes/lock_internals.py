"""
The lock algorithm every ZooKeeper lock recipe shares (Curator's C{LockInternals}),
with the rules that differ between them behind a driver (Curator's
C{LockInternalsDriver}).

A contender creates a protected ephemeral-sequential node C{<path>/_c_<uuid>-<lockName><seq>}
(under container parents), lists the children sorted by the sequence after the lock
name, and asks the driver whether its position gets the lock; if not, it watches only
the node the driver names (its predecessor for a mutex), so a release wakes one waiter,
not the herd.  A watch on a node that is already gone is answered by listing again.
A contender that gives up (timeout, error, cancellation) deletes its node, guaranteed.

Everything here runs on the reactor thread and returns Deferreds or coroutines; the
recipes on top add the faces, reentrancy and bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.connection import WatchedEvent
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from zkreg.proto.consts import CreateMode

_log = Logger()

#: What L{Revoker.attempt_revoke} writes into a lock node to ask its holder to let go
#: (Curator's C{LockInternals.REVOKE_MESSAGE}).
REVOKE_MESSAGE = b"__REVOKE__"


@dataclass(frozen=True)
class PredicateResults:
    """
    A driver's answer: whether the contender holds the lock, and if not which sibling
    (a child name) to watch.
    """

    path_to_watch: str | None
    gets_the_lock: bool


def standard_fix_for_sorting(name: str, lock_name: str) -> str:
    """
    @return: the part of a child's name that orders it: what follows the last
        occurrence of C{lock_name} (the sequence number), or the whole name.
    """
    index = name.rfind(lock_name)
    if index >= 0:
        return name[index + len(lock_name) :]
    return name


def validate_our_index(sequence_node_name: str, our_index: int) -> None:
    """
    @raise errors.NoNodeError: our node is not among the children (its session
        expired, or someone deleted it): the caller starts over.
    """
    if our_index < 0:
        raise errors.NoNodeError(None, f"Sequential path not found: {sequence_node_name}")


class LockInternalsDriver:
    """
    The rules of one kind of lock (Curator's C{StandardLockInternalsDriver}): a
    contender gets it when fewer than C{max_leases} nodes sort before its own, and
    otherwise watches the one C{max_leases} places ahead.
    """

    def gets_the_lock(
        self,
        children: Sequence[str],
        sequence_node_name: str,
        max_leases: int,
        owner: Any = None,
    ) -> PredicateResults:
        """
        @param children: the lock's children, sorted by L{fix_for_sorting}.
        @param sequence_node_name: our node's name.
        @param owner: who is acquiring (a thread on the blocking face): what Curator's
            drivers learn from the current thread (a write-lock holder's read lock).
        """
        our_index = children.index(sequence_node_name) if sequence_node_name in children else -1
        validate_our_index(sequence_node_name, our_index)
        gets = our_index < max_leases
        return PredicateResults(None if gets else children[our_index - max_leases], gets)

    async def creates_the_lock(
        self, client: CuratorFramework, path: str, lock_node_bytes: bytes | None
    ) -> str:
        """
        Create our node: protected, ephemeral-sequential, container parents.

        @param lock_node_bytes: its data; L{None} means the client's default data.
        @return: the node's path.
        """
        created = await client.create(
            path,
            lock_node_bytes,
            mode=CreateMode.EPHEMERAL_SEQUENTIAL,
            parents_as_containers=True,
            protected=True,
        )
        return created.path

    def fix_for_sorting(self, name: str, lock_name: str) -> str:
        """@return: the key a child's name sorts by."""
        return standard_fix_for_sorting(name, lock_name)


StandardLockInternalsDriver = LockInternalsDriver
"""Curator's name for the default driver."""


async def get_sorted_children(
    client: CuratorFramework, base_path: str, lock_name: str, driver: LockInternalsDriver
) -> list[str]:
    """
    @return: the child names of C{base_path} in lock order (Curator's
        C{LockInternals.getSortedChildren}); none if it does not exist.
    """
    try:
        children = await client.get_children(base_path)
    except errors.NoNodeError:
        return []
    return sort_children(children, lock_name, driver)


def sort_children(
    children: Sequence[str], lock_name: str, driver: LockInternalsDriver
) -> list[str]:
    """@return: C{children} in lock order."""
    return sorted(children, key=lambda name: driver.fix_for_sorting(name, lock_name))


async def get_participant_nodes(
    client: CuratorFramework, base_path: str, lock_name: str, driver: LockInternalsDriver
) -> list[str]:
    """@return: the full paths of every contender's node, in lock order."""
    return [
        make_path(base_path, name)
        for name in await get_sorted_children(client, base_path, lock_name, driver)
    ]


@dataclass
class RevocationSpec:
    """
    Who to call when another process asks for our lock (L{Revoker.attempt_revoke}).

    @ivar listener: called with the lock recipe; it should release the lock soon.
    """

    listener: Callable[[Any], Any]


class Revoker:
    """Ask the holder of a revocable lock to release it (Curator's C{Revoker})."""

    @staticmethod
    async def attempt_revoke(client: CuratorFramework, path: str) -> None:
        """
        Write the revoke message into the lock node C{path} (one of the mutex's
        L{get_participant_nodes}); a node that is gone already is not an error.
        """
        try:
            await client.set_data(path, REVOKE_MESSAGE)
        except errors.NoNodeError:
            pass


def wake_on_event(waiter: defer.Deferred[None]) -> Callable[..., None]:
    """
    @return: a one-shot watcher (also usable as a timer callback) that fires
        C{waiter} unless it has fired already.
    """

    def watcher(event: WatchedEvent | None) -> None:
        if not waiter.called:
            waiter.callback(None)

    return watcher


#: How often a wait checks that its client is still open (a closed client delivers no
#: more watch events, so a waiter would otherwise wait for ever).
CLOSED_CHECK_S = 1.0


async def wait_for_wake(
    client: CuratorFramework, woken: defer.Deferred[None], deadline: float | None
) -> bool:
    """
    Wait until C{woken} fires (a watch), C{deadline} (reactor seconds) passes, or the
    client is closed.

    @return: C{False} if the deadline passed first, else C{True}.
    @raise errors.ConnectionClosedError: the client was closed while waiting.
    """
    reactor = client.zookeeper.reactor
    current: list[defer.Deferred[None]] = []

    def fire(*_ignored: Any) -> None:
        if current and not current[0].called:
            current[0].callback(None)

    def on_woken(result: Any) -> Any:
        fire()
        return result

    woken.addBoth(on_woken)
    while not woken.called:
        if not client.is_started:
            raise errors.ConnectionClosedError(None, "the client was closed while waiting")
        slice_s = CLOSED_CHECK_S
        if deadline is not None:
            remaining = deadline - reactor.seconds()
            if remaining <= 0:
                return False
            slice_s = min(slice_s, remaining)
        current[:] = [defer.Deferred()]
        timer = reactor.callLater(slice_s, fire)
        try:
            await current[0]
        finally:
            if timer.active():
                timer.cancel()
    return True


class LockInternals:
    """
    The shared algorithm; one per lock recipe instance.

    @ivar base_path: the lock's znode (the parent of the contenders' nodes).
    @ivar path: C{base_path/lock_name}, the name every contender's node is created at.
    @ivar revocable: set by the recipe's C{make_revocable}.
    """

    def __init__(
        self,
        client: CuratorFramework,
        driver: LockInternalsDriver,
        path: str,
        lock_name: str,
        max_leases: int,
    ) -> None:
        if max_leases < 1:
            raise ValueError("max_leases must be at least 1")
        self.client = client
        self.driver = driver
        self.base_path = path
        self.lock_name = lock_name
        self.path = make_path(path, lock_name)
        self.max_leases = max_leases
        self.revocable: RevocationSpec | None = None
        self.on_revoke: Callable[[], Any] | None = None

    @property
    def _reactor(self) -> Any:
        return self.client.zookeeper.reactor

    async def attempt_lock(
        self, timeout_s: float | None, lock_node_bytes: bytes | None, owner: Any = None
    ) -> str | None:
        """
        Contend for the lock until we hold it or C{timeout_s} passes.

        @param timeout_s: seconds; L{None} waits for ever.
        @return: our node's path if we hold the lock, L{None} on timeout (our node is
            then deleted).
        @raise errors.NoNodeError: our node vanished more often than the retry policy
            allows (session expiries while waiting).
        """
        started = self._reactor.seconds()
        data = b"" if self.revocable is not None else lock_node_bytes
        retry_count = 0
        while True:
            try:
                our_path = await self.driver.creates_the_lock(self.client, self.path, data)
                if await self._internal_lock_loop(started, timeout_s, our_path, owner):
                    return our_path
                return None
            except errors.NoNodeError:
                # Our node is gone (the session expired while we waited), or a container
                # parent was reaped between its creation and ours: start over if the
                # policy allows, as Curator does.
                elapsed_ms = int((self._reactor.seconds() - started) * 1000)
                pauses: list[int] = []
                if not self.client.retry_policy.allow_retry(retry_count, elapsed_ms, pauses.append):
                    raise
                retry_count += 1
                if sum(pauses) > 0:
                    await self._sleep(sum(pauses) / 1000.0)

    def _sleep(self, seconds: float) -> defer.Deferred[None]:
        from twisted.internet import task

        return task.deferLater(self._reactor, seconds)

    async def _internal_lock_loop(
        self, started: float, timeout_s: float | None, our_path: str, owner: Any
    ) -> bool:
        do_delete = False
        try:
            if self.revocable is not None:
                await self.check_revocable(our_path)
            sequence_node_name = our_path[len(self.base_path) + 1 :]
            while self.client.is_started:
                children = await get_sorted_children(
                    self.client, self.base_path, self.lock_name, self.driver
                )
                result = self.driver.gets_the_lock(
                    children, sequence_node_name, self.max_leases, owner
                )
                if result.gets_the_lock:
                    return True
                assert result.path_to_watch is not None
                previous = make_path(self.base_path, result.path_to_watch)
                woken: defer.Deferred[None] = defer.Deferred()
                try:
                    await self.client.get_data(previous, watcher=wake_on_event(woken))
                except errors.NoNodeError:
                    continue
                deadline = None if timeout_s is None else started + timeout_s
                if not await wait_for_wake(self.client, woken, deadline):
                    do_delete = True
                    return False
            do_delete = True
            raise errors.ConnectionClosedError(None, "the client was closed while waiting")
        except BaseException:
            do_delete = True
            raise
        finally:
            if do_delete:
                await self.delete_our_path(our_path)

    async def check_revocable(self, our_path: str) -> None:
        """Watch our node's data for the revoke message (and act on it if it is there)."""

        def watcher(event: WatchedEvent) -> None:
            from zkreg.proto.consts import EventType

            if event.type == EventType.NodeDataChanged:
                defer.ensureDeferred(self.check_revocable(our_path)).addErrback(
                    lambda failure: _log.failure("revocation check failed", failure)
                )

        try:
            data, _stat = await self.client.get_data(our_path, watcher=watcher)
        except errors.NoNodeError:
            return
        if data == REVOKE_MESSAGE and self.on_revoke is not None:
            self.on_revoke()

    async def delete_our_path(self, our_path: str) -> None:
        """Delete our node, guaranteed (retried in the background past the policy)."""
        try:
            await self.client.delete(our_path, guaranteed=True, quietly=True)
        except errors.ZooKeeperError as error:
            _log.info(
                "Delete of lock node {path} goes on in the background: {error}",
                path=our_path,
                error=error,
            )

    async def release_lock(self, lock_path: str) -> None:
        """Release: delete the holder's node, guaranteed."""
        await self.delete_our_path(lock_path)

    async def get_participant_nodes(self) -> list[str]:
        return await get_participant_nodes(self.client, self.base_path, self.lock_name, self.driver)


__all__ = [
    "LockInternals",
    "LockInternalsDriver",
    "PredicateResults",
    "REVOKE_MESSAGE",
    "RevocationSpec",
    "Revoker",
    "StandardLockInternalsDriver",
    "get_participant_nodes",
    "get_sorted_children",
    "sort_children",
    "standard_fix_for_sorting",
    "validate_our_index",
    "wait_for_wake",
    "wake_on_event",
]
