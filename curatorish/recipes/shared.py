"""
Shared values (Curator's C{recipes.shared}): a value in one znode that every client
reads from a local copy kept current by a data watch, and writes with or without a
version check.

Format, as Curator 5.4: L{SharedValue} stores the caller's bytes as they are;
L{SharedCount} stores a 32-bit signed integer, 4 bytes big-endian (Java's
C{ByteBuffer.putInt}), so a Java C{SharedCount} on the same path reads the same count.

Connection states: the local copy is kept through C{SUSPENDED} (it may be stale; the
listeners' C{state_changed} says so); on C{RECONNECTED} (after a new session too) the
value is read again and the listeners told.  Writes need a connection, and fail as the
client's retry policy decides.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.connection.watches import WatchedEvent
from curatorish.framework import CuratorFramework
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.state import ConnectionState
from zkreg.proto.consts import EventType

_log = Logger()

#: The version of a value not read yet (Curator's C{UNINITIALIZED_VERSION}).
UNINITIALIZED_VERSION = -1


class VersionedValue(NamedTuple):
    """A value with the znode version it was read or written at."""

    version: int
    value: Any


class SharedValueListener:
    """
    What a shared value's listeners are told (Curator's C{SharedValueListener}); a
    listener may also be a plain callable C{listener(reader, new_value)}.
    """

    def value_has_changed(self, shared_value: SharedValue, new_value: bytes) -> None:
        """The value changed (as read after a watch or a reconnect)."""

    def state_changed(self, client: Any, state: ConnectionState) -> None:
        """The client's connection state changed."""


class SharedValue(Recipe):
    """
    One znode's bytes shared by all clients (Curator's C{SharedValue}).
    """

    _LATENT, _STARTED, _CLOSED = "LATENT", "STARTED", "CLOSED"

    def __init__(
        self, client: CuratorFramework | BlockingCuratorFramework, path: str, seed_value: bytes
    ) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path
        self._seed = bytes(seed_value)
        self._current = VersionedValue(UNINITIALIZED_VERSION, self._seed)
        self._state = self._LATENT
        self._listeners: list[tuple[Any, Callable[..., None], Callable[..., None] | None]] = []

    # -- reading the local copy (any thread) ------------------------------------------

    def get_value(self) -> bytes:
        """@return: the value as last read or written."""
        return self._current.value  # type: ignore[no-any-return]

    def get_versioned_value(self) -> VersionedValue:
        """@return: the value with its znode version."""
        return self._current

    # -- lifecycle --------------------------------------------------------------------

    @recipe_method
    async def start(self) -> None:
        """Create the node with the seed value unless it exists, and read it."""
        if self._state != self._LATENT:
            raise RuntimeError("Cannot be started more than once")
        self._state = self._STARTED
        self.client.add_connection_state_listener(self._state_changed)
        try:
            await self.client.create(self.path, self._seed, parents_as_containers=True)
        except errors.NodeExistsError:
            pass
        await self._read_value()

    @recipe_method
    def close(self) -> None:
        """Stop watching; the listeners are dropped."""
        self._state = self._CLOSED
        self.client.remove_connection_state_listener(self._state_changed)
        self._listeners.clear()

    # -- writing ----------------------------------------------------------------------

    def _check_started(self) -> None:
        if self._state != self._STARTED:
            raise RuntimeError("not started")

    @recipe_method
    async def set_value(self, new_value: bytes) -> None:
        """Write the value whatever its version."""
        await self._set(new_value)

    async def _set(self, new_value: bytes) -> None:
        self._check_started()
        stat = await self.client.set_data(self.path, bytes(new_value))
        self._update(stat.version, bytes(new_value))

    @recipe_method
    async def try_set_value(self, previous: VersionedValue, new_value: bytes) -> bool:
        """
        Write the value only if it is still C{previous} (value and version).

        @return: True if written; False if it had changed (the local copy is then
            read again).
        """
        return await self._try_set(previous, new_value)

    async def _try_set(self, previous: VersionedValue, new_value: bytes) -> bool:
        self._check_started()
        current = self._current
        if previous.version != current.version or bytes(previous.value) != current.value:
            return False
        try:
            stat = await self.client.set_data(self.path, bytes(new_value), version=previous.version)
        except errors.BadVersionError:
            await self._read_value()
            return False
        self._update(stat.version, bytes(new_value))
        return True

    # -- listeners --------------------------------------------------------------------

    def add_listener(self, listener: Any) -> None:
        """
        Tell C{listener} of value and state changes: an object with
        C{value_has_changed(reader, value)} and C{state_changed(client, state)}
        (L{SharedValueListener}), or a callable C{listener(reader, value)}.  On the
        blocking face it runs on the client's event thread.
        """
        changed = getattr(listener, "value_has_changed", listener)
        state = getattr(listener, "state_changed", None)
        self._listeners.append(
            (
                listener,
                self.listener_caller(changed),
                None if state is None else self.listener_caller(state),
            )
        )

    def remove_listener(self, listener: Any) -> None:
        """Stop telling C{listener}."""
        self._listeners = [entry for entry in self._listeners if entry[0] is not listener]

    def _notify_value(self) -> None:
        value = self._current.value
        for _listener, changed, _state in list(self._listeners):
            self._call_listener(changed, self._reader(), self._convert(value))

    def _reader(self) -> Any:
        return self

    def _convert(self, value: bytes) -> Any:
        return value

    @staticmethod
    def _call_listener(listener: Callable[..., None], *args: Any) -> None:
        try:
            listener(*args)
        except Exception:
            _log.failure("Shared value listener {listener!r} raised", listener=listener)

    # -- the watch --------------------------------------------------------------------

    def _update(self, version: int, value: bytes) -> None:
        # A newer version may have been read concurrently: never go back.
        if self._current.version < version:
            self._current = VersionedValue(version, value)

    async def _read_value(self) -> None:
        data, stat = await self.client.get_data(self.path, watcher=self._watcher)
        self._update(stat.version, data or b"")

    def _watcher(self, event: WatchedEvent) -> None:
        if self._state == self._STARTED and event.type is not EventType.NONE:
            self._read_and_notify()

    def _read_and_notify(self) -> None:
        async def read() -> None:
            while True:
                try:
                    await self._read_value()
                    break
                except errors.NoNodeError:
                    # Deleted (or not created yet): follow it until it is back.
                    if await self.client.exists(self.path, watcher=self._watcher) is None:
                        return
            self._notify_value()

        def failed(failure: Any) -> None:
            if self._state == self._STARTED and not failure.check(errors.ConnectionClosedError):
                _log.failure("Could not read {path}", failure=failure, path=self.path)

        defer.ensureDeferred(read()).addErrback(failed)

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if self._state != self._STARTED:
            return
        for _listener, _changed, state_listener in list(self._listeners):
            if state_listener is not None:
                self._call_listener(state_listener, client, state)
        if state.is_connected:
            self._read_and_notify()


class SharedCountListener:
    """
    What a shared count's listeners are told (Curator's C{SharedCountListener}); a
    listener may also be a plain callable C{listener(reader, new_count)}.
    """

    def count_has_changed(self, shared_count: SharedCount, new_count: int) -> None:
        """The count changed."""

    def state_changed(self, client: Any, state: ConnectionState) -> None:
        """The client's connection state changed."""


def count_to_bytes(count: int) -> bytes:
    """@return: C{count} as Curator stores it: 4 bytes, big-endian, signed."""
    return struct.pack(">i", count)


def count_from_bytes(data: bytes) -> int:
    """@raise ValueError: when C{data} is not 4 bytes (corrupt for a count)."""
    if len(data) != 4:
        raise ValueError(f"a shared count is 4 bytes, not {data!r}")
    return struct.unpack(">i", data)[0]  # type: ignore[no-any-return]


class SharedCount(SharedValue):
    """
    A shared 32-bit integer (Curator's C{SharedCount}).
    """

    def __init__(
        self, client: CuratorFramework | BlockingCuratorFramework, path: str, seed: int
    ) -> None:
        super().__init__(client, path, count_to_bytes(seed))

    def get_count(self) -> int:
        """@return: the count as last read or written."""
        return count_from_bytes(self.get_value())

    def get_versioned_value(self) -> VersionedValue:
        """@return: the count with its znode version."""
        current = self._current
        return VersionedValue(current.version, count_from_bytes(current.value))

    @recipe_method
    async def set_count(self, new_count: int) -> None:
        """Write the count whatever its version."""
        await self._set(count_to_bytes(new_count))

    @recipe_method
    async def try_set_count(self, previous: VersionedValue, new_count: int) -> bool:
        """
        Write the count only if it is still C{previous} (from L{get_versioned_value}).

        @return: True if written, False if it had changed meanwhile.
        """
        return await self._try_set(
            VersionedValue(previous.version, count_to_bytes(previous.value)),
            count_to_bytes(new_count),
        )

    def add_listener(self, listener: Any) -> None:
        """
        Tell C{listener} of count and state changes: an object with
        C{count_has_changed(reader, count)} and C{state_changed(client, state)}
        (L{SharedCountListener}), or a callable C{listener(reader, count)}.
        """
        changed = getattr(listener, "count_has_changed", listener)
        state = getattr(listener, "state_changed", None)
        self._listeners.append(
            (
                listener,
                self.listener_caller(changed),
                None if state is None else self.listener_caller(state),
            )
        )

    def _convert(self, value: bytes) -> Any:
        return count_from_bytes(value)


__all__ = [
    "SharedCount",
    "SharedCountListener",
    "SharedValue",
    "SharedValueListener",
    "VersionedValue",
    "count_from_bytes",
    "count_to_bytes",
]
