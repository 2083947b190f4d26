"""
Distributed atomic numbers (Curator's C{recipes.atomic}): a counter in one znode,
changed by versioned compare-and-set.

An update first tries optimistically: read the value and its version, write the new
value at that version, and on a conflict (another writer got in between) retry as the
given retry policy allows.  If every optimistic try lost, and a L{PromotedToLock} was
given, the update takes an L{InterProcessMutex} on the lock path and tries again under
it, as that lock's retry policy allows.  A result says whether the update happened:
under heavy contention without a promoted lock it may not (C{succeeded} is False),
never half-applied.

Format, as Curator 5.4: L{DistributedAtomicLong} stores a signed 64-bit integer in 8
bytes big-endian, L{DistributedAtomicInteger} a signed 32-bit integer in 4 bytes
(Java's C{ByteBuffer.putLong}/C{putInt}); an absent or empty node reads as 0; values
wrap around as Java's do.  The node is created (with container parents) by the first
update.

Connection states: each read and write goes through the client's retry loop, so an
update waits out a C{SUSPENDED} connection up to the connection timeout and then fails
with the connection loss.  Every write is versioned, so two writers never both apply
an update to the same value; but a write whose reply is lost with the connection is
sent again by the client's retry loop, and if the lost one had been applied the retry
meets a newer version and the update is tried once more: it may then count twice
(Curator has the same limit; its fixed byte format leaves no room to tag a write).
The promoted lock is released on C{LOST} with its session.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from twisted.internet import task

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.framework import CuratorFramework
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.retry import RetryNTimes, RetryPolicy

T = TypeVar("T")


@dataclass
class AtomicStats:
    """How an update went (Curator's C{AtomicStats})."""

    optimistic_tries: int = 0
    promoted_tries: int = 0
    optimistic_time_ms: int = 0
    promoted_time_ms: int = 0


@dataclass(frozen=True)
class AtomicValue(Generic[T]):
    """
    The result of an atomic operation (Curator's C{AtomicValue}).

    @ivar succeeded: whether the operation happened; when False the other values are
        what was last seen and nothing was written.
    @ivar pre_value: the value before the operation.
    @ivar post_value: the value after it.
    """

    succeeded: bool
    pre_value: T
    post_value: T
    stats: AtomicStats = field(default_factory=AtomicStats, compare=False)

    def __bool__(self) -> bool:
        return self.succeeded


@dataclass(frozen=True)
class PromotedToLock:
    """
    Take a lock when optimistic updates keep losing (Curator's C{PromotedToLock}).

    @ivar lock_path: the path of the L{InterProcessMutex}.
    @ivar max_lock_time: seconds to wait for the lock; None waits forever.
    @ivar retry_policy: how often to retry under the lock (default: once).
    """

    lock_path: str
    max_lock_time: float | None = None
    retry_policy: RetryPolicy = field(default_factory=lambda: RetryNTimes(0, 0))

    def __post_init__(self) -> None:
        validate_path(self.lock_path)


class _Attempt:
    """The mutable state of one update: what was seen and written, and the stats."""

    def __init__(self) -> None:
        self.succeeded = False
        self.pre_value: bytes | None = None
        self.post_value: bytes | None = None
        self.stats = AtomicStats()


async def _retry_pause(policy: RetryPolicy, retry_count: int, started: float) -> bool:
    """Ask C{policy} for another try; wait the pause it wants. @return: allowed."""
    pauses: list[int] = []
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if not policy.allow_retry(retry_count, elapsed_ms, pauses.append):
        return False
    pause_ms = sum(pauses)
    if pause_ms > 0:
        from twisted.internet import reactor

        await task.deferLater(reactor, pause_ms / 1000.0)  # type: ignore[arg-type]
    return True


class DistributedAtomicValue(Recipe):
    """
    Atomic operations on one znode's bytes (Curator's C{DistributedAtomicValue});
    L{DistributedAtomicLong} and L{DistributedAtomicInteger} are numbers over it.
    """

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        path: str,
        retry_policy: RetryPolicy,
        promoted_to_lock: PromotedToLock | None = None,
    ) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path
        self.retry_policy = retry_policy
        self.promoted_to_lock = promoted_to_lock
        self._mutex: Any = None

    # -- the byte-level operations (async, shared by the number faces) ----------------

    async def _read(self) -> tuple[bytes | None, int | None]:
        """@return: the data and version, or (None, None) when the node is absent."""
        try:
            data, stat = await self.client.get_data(self.path)
        except errors.NoNodeError:
            return None, None
        return data or b"", stat.version

    async def _get(self) -> _Attempt:
        attempt = _Attempt()
        attempt.pre_value, _ = await self._read()
        attempt.post_value = attempt.pre_value
        attempt.succeeded = True
        return attempt

    async def _force_set(self, new_value: bytes) -> _Attempt:
        attempt = _Attempt()
        attempt.pre_value, _ = await self._read()
        try:
            await self.client.set_data(self.path, new_value)
        except errors.NoNodeError:
            try:
                await self.client.create(self.path, new_value, parents_as_containers=True)
            except errors.NodeExistsError:
                await self.client.set_data(self.path, new_value)
        attempt.post_value = new_value
        attempt.succeeded = True
        return attempt

    async def _compare_and_set(self, expected: bytes, new_value: bytes) -> _Attempt:
        attempt = _Attempt()
        attempt.pre_value, version = await self._read()
        attempt.post_value = attempt.pre_value
        if version is not None and attempt.pre_value == expected:
            try:
                await self.client.set_data(self.path, new_value, version=version)
            except (errors.BadVersionError, errors.NoNodeError):
                return attempt
            attempt.succeeded = True
            attempt.post_value = new_value
        return attempt

    async def _initialize(self, value: bytes) -> _Attempt:
        attempt = _Attempt()
        try:
            await self.client.create(self.path, value, parents_as_containers=True)
        except errors.NodeExistsError:
            attempt.pre_value, _ = await self._read()
            attempt.post_value = attempt.pre_value
            return attempt
        attempt.succeeded = True
        attempt.post_value = value
        return attempt

    async def _try_once(
        self, attempt: _Attempt, make_value: Callable[[bytes | None], bytes]
    ) -> bool:
        attempt.pre_value, version = await self._read()
        new_value = make_value(attempt.pre_value)
        try:
            if version is None:
                await self.client.create(self.path, new_value, parents_as_containers=True)
            else:
                await self.client.set_data(self.path, new_value, version=version)
        except (errors.NodeExistsError, errors.BadVersionError, errors.NoNodeError):
            return False
        attempt.post_value = new_value
        return True

    async def _try_set(self, make_value: Callable[[bytes | None], bytes]) -> _Attempt:
        attempt = _Attempt()
        started = time.monotonic()
        retry_count = 0
        while True:
            attempt.stats.optimistic_tries += 1
            if await self._try_once(attempt, make_value):
                attempt.succeeded = True
                break
            if not await _retry_pause(self.retry_policy, retry_count, started):
                break
            retry_count += 1
        attempt.stats.optimistic_time_ms = int((time.monotonic() - started) * 1000)
        if not attempt.succeeded and self.promoted_to_lock is not None:
            await self._try_with_mutex(attempt, make_value, self.promoted_to_lock)
        if not attempt.succeeded:
            attempt.post_value = attempt.pre_value
        return attempt

    async def _try_with_mutex(
        self,
        attempt: _Attempt,
        make_value: Callable[[bytes | None], bytes],
        promoted: PromotedToLock,
    ) -> None:
        if self._mutex is None:
            from curatorish.recipes.locks import InterProcessMutex

            self._mutex = InterProcessMutex(self.client, promoted.lock_path)
        started = time.monotonic()
        # An owner of this update's own: concurrent updates of one instance must not
        # share the (reentrant) lock's hold.
        owner = object()
        if await self._mutex.acquire(promoted.max_lock_time, owner=owner):
            try:
                retry_count = 0
                while True:
                    attempt.stats.promoted_tries += 1
                    if await self._try_once(attempt, make_value):
                        attempt.succeeded = True
                        break
                    if not await _retry_pause(promoted.retry_policy, retry_count, started):
                        break
                    retry_count += 1
            finally:
                await self._mutex.release(owner=owner)
        attempt.stats.promoted_time_ms = int((time.monotonic() - started) * 1000)


class _DistributedAtomicNumber(DistributedAtomicValue):
    """The number faces: C{_BITS}-bit signed integers, big-endian (Curator's formats)."""

    _BITS = 64
    _FORMAT = ">q"

    def _to_bytes(self, value: int) -> bytes:
        return struct.pack(self._FORMAT, self._wrap(value))

    def _from_bytes(self, data: bytes | None) -> int:
        if not data:
            return 0
        if len(data) != struct.calcsize(self._FORMAT):
            raise ValueError(f'Corrupted data for node "{self.path}": {data!r}')
        return struct.unpack(self._FORMAT, data)[0]  # type: ignore[no-any-return]

    def _wrap(self, value: int) -> int:
        """Wrap around as Java's fixed-width arithmetic does."""
        span = 1 << self._BITS
        value %= span
        return value - span if value >= span >> 1 else value

    def _result(self, attempt: _Attempt) -> AtomicValue[int]:
        return AtomicValue(
            attempt.succeeded,
            self._from_bytes(attempt.pre_value),
            self._from_bytes(attempt.post_value),
            attempt.stats,
        )

    async def _add(self, delta: int) -> AtomicValue[int]:
        def make_value(previous: bytes | None) -> bytes:
            return self._to_bytes(self._from_bytes(previous) + delta)

        return self._result(await self._try_set(make_value))

    @recipe_method
    async def get(self) -> AtomicValue[int]:
        """@return: the current value (C{succeeded} always True)."""
        return self._result(await self._get())

    @recipe_method(waits=True)
    async def increment(self) -> AtomicValue[int]:
        """Add one."""
        return await self._add(1)

    @recipe_method(waits=True)
    async def decrement(self) -> AtomicValue[int]:
        """Subtract one."""
        return await self._add(-1)

    @recipe_method(waits=True)
    async def add(self, delta: int) -> AtomicValue[int]:
        """Add C{delta}."""
        return await self._add(delta)

    @recipe_method(waits=True)
    async def subtract(self, delta: int) -> AtomicValue[int]:
        """Subtract C{delta}."""
        return await self._add(-delta)

    @recipe_method(waits=True)
    async def try_set(self, new_value: int) -> AtomicValue[int]:
        """Set the value, as an update (optimistic, then promoted)."""
        data = self._to_bytes(new_value)
        return self._result(await self._try_set(lambda _previous: data))

    @recipe_method
    async def compare_and_set(self, expected: int, new_value: int) -> AtomicValue[int]:
        """
        Set the value if it is C{expected} (one try; an absent node does not match).
        """
        attempt = await self._compare_and_set(self._to_bytes(expected), self._to_bytes(new_value))
        return self._result(attempt)

    @recipe_method
    async def try_initialize(self, value: int) -> AtomicValue[int]:
        """
        Create the node with C{value} if it does not exist (Curator's C{initialize}).

        @return: C{succeeded} True if created; else the existing value as both
            C{pre_value} and C{post_value}.
        """
        return self._result(await self._initialize(self._to_bytes(value)))

    @recipe_method
    async def force_set(self, value: int) -> AtomicValue[int]:
        """
        Write C{value} unconditionally (Curator's C{forceSet}); C{pre_value} is the value
        read just before the write.
        """
        return self._result(await self._force_set(self._to_bytes(value)))


class DistributedAtomicLong(_DistributedAtomicNumber):
    """
    A signed 64-bit counter, 8 bytes big-endian (Curator's C{DistributedAtomicLong}).

    C{DistributedAtomicLong(client, path, retry_policy, promoted_to_lock=None)}.
    """

    _BITS = 64
    _FORMAT = ">q"


class DistributedAtomicInteger(_DistributedAtomicNumber):
    """
    A signed 32-bit counter, 4 bytes big-endian (Curator's C{DistributedAtomicInteger}).
    """

    _BITS = 32
    _FORMAT = ">i"


__all__ = [
    "AtomicStats",
    "AtomicValue",
    "DistributedAtomicInteger",
    "DistributedAtomicLong",
    "DistributedAtomicValue",
    "PromotedToLock",
]
