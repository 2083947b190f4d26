"""
Inter-process locks on Curator's znodes: the reentrant mutex (Curator's
C{InterProcessMutex}) and a lock over several paths (C{InterProcessMultiLock}).

The algorithm is L{curatorish.recipes.lock_internals}; this module adds reentrancy,
the two faces and the bookkeeping of who holds what.  A Java process using Apache
Curator on the same path contends for the same lock: the node names
(C{_c_<uuid>-lock-<seq>}), their data and their order are Curator's.

Reentrancy is per I{owner}: on the blocking face the calling thread (as Curator's
per-thread reentrancy), on the async face the C{owner} keyword argument (any
hashable object; left out, every call of that face shares the recipe as its owner).

Unlike Curator, a lock whose session has expired is not believed held:
L{InterProcessMutex.is_acquired_in_this_process} turns false as soon as the client
knows its session is gone, and L{InterProcessMutex.release} then raises
L{LockLostError}, because the section it guarded was not exclusive.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.framework import CuratorFramework
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.lock_internals import (
    LockInternals,
    LockInternalsDriver,
    RevocationSpec,
    StandardLockInternalsDriver,
)

AnyClient = CuratorFramework | BlockingCuratorFramework

#: Curator's C{InterProcessMutex.LOCK_NAME}.
LOCK_NAME = "lock-"


class LockNotHeldError(RuntimeError):
    """
    C{release} by an owner that does not hold the lock (Curator's
    C{IllegalMonitorStateException}).
    """


class LockLostError(LockNotHeldError):
    """
    The lock was released, but its session had expired while it was held: another
    process may have held it at the same time.
    """


def caller_owner(recipe: Recipe) -> Any:
    """
    @return: the default owner of a lock call, computed in the calling thread: the
        thread on the blocking face, the recipe itself on the async face.
    """
    return threading.current_thread() if recipe.blocking else recipe


_OWNER = {"owner": caller_owner}


class LockContext(Recipe):
    """
    A lock as a context manager: C{with lock:} on the blocking face, C{async with
    lock:} on the async face; entering acquires (waiting as long as it takes), leaving
    releases.  Subclasses provide C{acquire()} and C{release()}.
    """

    def __enter__(self) -> Self:
        if not self.blocking:
            raise TypeError("use 'async with' with a lock on the async client")
        self.acquire()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        if self.blocking:
            raise TypeError("use 'with' with a lock on the blocking client")
        await self.acquire()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.release()  # type: ignore[attr-defined]


@dataclass
class _LockData:
    lock_path: str
    session_id: int
    count: int = 1


class InterProcessMutex(LockContext):
    """
    A reentrant mutex shared by every process using the same path (Curator's
    C{InterProcessMutex}).

    Blocking face::

        lock = InterProcessMutex(client, "/locks/job")
        with lock:
            ...

    Async face: C{await lock.acquire()}, C{await lock.release()}, or
    C{async with lock: ...}.
    """

    def __init__(
        self,
        client: AnyClient,
        path: str,
        *,
        driver: LockInternalsDriver | None = None,
        lock_name: str = LOCK_NAME,
        max_leases: int = 1,
        lock_node_bytes: bytes | None = None,
    ) -> None:
        """
        @param path: the lock's znode (created as a container when needed).
        @param driver: the lock's rules (L{StandardLockInternalsDriver}).
        @param lock_name: the name part of the contenders' nodes.
        @param max_leases: how many owners may hold it at once (1 for a mutex).
        @param lock_node_bytes: data of our lock nodes (L{None}: the client's default
            data, as Curator).
        """
        super().__init__(client)
        validate_path(path)
        self.base_path = path
        self.lock_name = lock_name
        self.lock_node_bytes = lock_node_bytes
        self.internals = LockInternals(
            self.client, driver or StandardLockInternalsDriver(), path, lock_name, max_leases
        )
        self._held: dict[Any, _LockData] = {}

    def _session_id(self) -> int:
        return int(self.client.zookeeper.session_id)

    def _alive(self, data: _LockData) -> bool:
        return data.session_id == self._session_id()

    @recipe_method(defaults_in_caller=_OWNER, waits=True)
    async def acquire(self, timeout: float | None = None, *, owner: Any = None) -> bool:
        """
        Wait until this owner holds the lock (at once if it does already: the hold
        count goes up).

        @param timeout: seconds to wait; L{None} waits for ever.
        @param owner: async face only: who acquires (see the module docstring).
        @return: C{True} if held, C{False} if C{timeout} passed first.
        """
        data = self._held.get(owner)
        if data is not None:
            if self._alive(data):
                data.count += 1
                return True
            del self._held[owner]
        lock_path = await self.internals.attempt_lock(timeout, self.lock_node_bytes, owner)
        if lock_path is None:
            return False
        self._held[owner] = _LockData(lock_path, self._session_id())
        return True

    @recipe_method(defaults_in_caller=_OWNER)
    async def release(self, *, owner: Any = None) -> None:
        """
        Undo one L{acquire} by this owner; the last one deletes the lock node
        (guaranteed: retried in the background until it is gone).

        @raise LockNotHeldError: this owner does not hold the lock.
        @raise LockLostError: the lock's session expired while it was held.
        """
        data = self._held.get(owner)
        if data is None:
            raise LockNotHeldError(f"You do not own the lock: {self.base_path}")
        data.count -= 1
        if data.count > 0:
            if not self._alive(data):
                raise LockLostError(f"The session holding {data.lock_path} has expired")
            return
        del self._held[owner]
        alive = self._alive(data)
        await self.internals.release_lock(data.lock_path)
        if not alive:
            raise LockLostError(f"The session holding {data.lock_path} has expired")

    def is_acquired_in_this_process(self) -> bool:
        """
        @return: whether some owner of this instance holds the lock (and its session
            is still ours).
        """
        return any(self._alive(data) for data in list(self._held.values()))

    def is_owned_by(self, owner: Any) -> bool:
        """@return: whether C{owner} holds the lock (bookkeeping only, no I/O)."""
        data = self._held.get(owner)
        return data is not None and self._alive(data)

    def is_owned_by_current_thread(self) -> bool:
        """
        @return: whether the calling thread (blocking face) or the recipe's default
            owner (async face) holds the lock (Curator's C{isOwnedByCurrentThread}).
        """
        return self.is_owned_by(caller_owner(self))

    def lock_path(self, owner: Any = None) -> str | None:
        """@return: the node of C{owner}'s hold (default: as L{acquire}), or L{None}."""
        data = self._held.get(caller_owner(self) if owner is None else owner)
        return None if data is None else data.lock_path

    @recipe_method
    async def get_participant_nodes(self) -> list[str]:
        """@return: the full paths of every contender's node, holder(s) first."""
        return await self.internals.get_participant_nodes()

    def make_revocable(self, listener: Any) -> None:
        """
        Let other processes ask us to release (Curator's C{makeRevocable}): when one
        calls L{Revoker.attempt_revoke} on our node, C{listener(this lock)} is called
        (on the blocking face, on the client's event thread).  Takes effect for
        acquisitions made after this call.
        """
        self.internals.revocable = RevocationSpec(listener)
        self.internals.on_revoke = lambda: self.listener_caller(listener)(self)


class InterProcessMultiLock(LockContext):
    """
    Several locks held as one (Curator's C{InterProcessMultiLock}): acquired in the
    given order, all or none; released in reverse order.
    """

    def __init__(
        self, client: AnyClient, paths_or_locks: Sequence[str | InterProcessMutex]
    ) -> None:
        """
        @param paths_or_locks: lock paths (each an L{InterProcessMutex}), or lock
            recipes built on the same client's async face.
        """
        super().__init__(client)
        self.locks: list[InterProcessMutex] = [
            InterProcessMutex(self.client, item) if isinstance(item, str) else item
            for item in paths_or_locks
        ]
        for lock in self.locks:
            if lock.blocking:
                raise TypeError("the locks of a multi-lock must be built on the async client")

    @recipe_method(defaults_in_caller=_OWNER, waits=True)
    async def acquire(self, timeout: float | None = None, *, owner: Any = None) -> bool:
        """
        @param timeout: seconds for all of them together; L{None} waits for ever.
        @return: C{True} if every lock is held, C{False} (none held) if C{timeout}
            passed first.
        """
        reactor = self.client.zookeeper.reactor
        deadline = None if timeout is None else reactor.seconds() + timeout
        acquired: list[InterProcessMutex] = []
        try:
            for lock in self.locks:
                remaining = None if deadline is None else max(deadline - reactor.seconds(), 0.0)
                if not await lock.acquire(remaining, owner=owner):
                    break
                acquired.append(lock)
            else:
                return True
        except BaseException:
            await _release_all(reversed(acquired), owner)
            raise
        await _release_all(reversed(acquired), owner)
        return False

    @recipe_method(defaults_in_caller=_OWNER)
    async def release(self, *, owner: Any = None) -> None:
        """Release every lock, in reverse order; the first error is raised at the end."""
        await _release_all(reversed(self.locks), owner)

    def is_acquired_in_this_process(self) -> bool:
        return all(lock.is_acquired_in_this_process() for lock in self.locks)


async def _release_all(locks: Any, owner: Any) -> None:
    first_error: BaseException | None = None
    for lock in locks:
        try:
            await lock.release(owner=owner)
        except Exception as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error


__all__ = [
    "InterProcessMultiLock",
    "InterProcessMutex",
    "LOCK_NAME",
    "LockLostError",
    "LockNotHeldError",
    "caller_owner",
]
