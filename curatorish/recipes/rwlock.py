"""
A read-write lock on Curator's znodes (Curator's C{InterProcessReadWriteLock}).

Readers' nodes are C{_c_<uuid>-__READ__<seq>}, writers' C{_c_<uuid>-__WRIT__<seq>},
all children of one path and ordered by their sequence numbers.  A writer holds the
lock when its node is first; a reader when no writer's node comes before its own, so
a waiting writer keeps later readers out (no writer starvation).  An owner holding
the write lock may take the read lock too (downgrade by releasing the write lock
after), never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curatorish.recipes.face import recipe_method
from curatorish.recipes.lock_internals import (
    LockInternalsDriver,
    PredicateResults,
    standard_fix_for_sorting,
    validate_our_index,
)
from curatorish.recipes.locks import AnyClient, InterProcessMutex

#: Curator's lock names.
READ_LOCK_NAME = "__READ__"
WRITE_LOCK_NAME = "__WRIT__"

#: A reader never waits for other readers (Curator: Integer.MAX_VALUE leases).
_READERS_UNLIMITED = 2**31 - 1


class _SortingDriver(LockInternalsDriver):
    """Readers and writers sort together by the sequence after either name."""

    def fix_for_sorting(self, name: str, lock_name: str) -> str:
        name = standard_fix_for_sorting(name, READ_LOCK_NAME)
        return standard_fix_for_sorting(name, WRITE_LOCK_NAME)


class _ReadDriver(_SortingDriver):
    """A reader gets the lock before the first writer, or when it holds the write lock."""

    def __init__(self, write_lock: InterProcessMutex) -> None:
        self._write_lock = write_lock

    def gets_the_lock(
        self,
        children: Sequence[str],
        sequence_node_name: str,
        max_leases: int,
        owner: Any = None,
    ) -> PredicateResults:
        if self._write_lock.is_owned_by(owner):
            return PredicateResults(None, True)
        first_write_index: int | None = None
        our_index = -1
        for index, name in enumerate(children):
            if WRITE_LOCK_NAME in name:
                if first_write_index is None:
                    first_write_index = index
            elif name.startswith(sequence_node_name):
                our_index = index
                break
        validate_our_index(sequence_node_name, our_index)
        if first_write_index is None or our_index < first_write_index:
            return PredicateResults(None, True)
        return PredicateResults(children[first_write_index], False)


class _ReadWriteMutex(InterProcessMutex):
    """One side of the lock: its participants are only its own kind's nodes."""

    @recipe_method
    async def get_participant_nodes(self) -> list[str]:
        nodes = await self.internals.get_participant_nodes()
        return [node for node in nodes if self.lock_name in node]


class InterProcessReadWriteLock:
    """
    Many readers or one writer (Curator's C{InterProcessReadWriteLock}); both sides
    are reentrant mutex-like objects on the face of the client given.
    """

    def __init__(self, client: AnyClient, path: str, lock_data: bytes | None = None) -> None:
        """
        @param lock_data: data of our lock nodes (L{None}: the client's default data).
        """
        self._write = _ReadWriteMutex(
            client,
            path,
            lock_name=WRITE_LOCK_NAME,
            driver=_SortingDriver(),
            lock_node_bytes=lock_data,
        )
        self._read = _ReadWriteMutex(
            client,
            path,
            lock_name=READ_LOCK_NAME,
            max_leases=_READERS_UNLIMITED,
            driver=_ReadDriver(self._write),
            lock_node_bytes=lock_data,
        )

    def read_lock(self) -> InterProcessMutex:
        """@return: the lock for reading."""
        return self._read

    def write_lock(self) -> InterProcessMutex:
        """@return: the lock for writing."""
        return self._write


__all__ = ["InterProcessReadWriteLock", "READ_LOCK_NAME", "WRITE_LOCK_NAME"]
