"""
Snapshots of the tree taken by a forked child (never on the reactor thread), and
kept on the data server's disk as a cache of what etcd holds.

Every snapshot a data server on etcd takes goes through L{LocalSnapshots.take}: the
L{zkreg.persistence.durable.ForkSnapshotter} of the file log forks, and the child
writes the tree (and the reply cache) in zkreg's checksummed snapshot format, so the
reactor only pauses for the C{fork} itself.  The active data server then uploads the
file to etcd chunk by chunk (L{zkreg.persistence.etcd.snapshots.upload_snapshot}).

With C{--data-dir} the files stay there (the newest C{snap_retain_count}), each
with a small side file C{snapshot.<zxid>.etcd} saying where in the etcd log it
sits: the last slot it covers, and SHA-256 digests of that slot's value and of the
snapshot file.  A data server loading the tree (at startup, or a standby catching
up) takes the newest local snapshot that the etcd log still continues
(L{usable}): one at the slot of etcd's own snapshot with the same digest, or one
past it whose last slot is in etcd with the same digest.  Then it reads only the
slots after it, and never downloads etcd's snapshot.  Nothing on that disk is
needed: a missing, stale, foreign or damaged local snapshot is passed over, and the
tree comes from etcd.

Without C{--data-dir} the child writes into a private temporary directory, and each
file is removed once uploaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from zkreg.data.dedup import ReplyCache
from zkreg.data.tree import DataTree
from zkreg.persistence.dirlock import DataDirLock, lock_data_dir
from zkreg.persistence.durable import ForkSnapshotter
from zkreg.persistence.snapshot import list_snapshots

__all__ = ["LocalSnapshot", "LocalSnapshots", "digest", "file_digest"]

_log = Logger(namespace="zkreg.persistence.etcd.cache")

#: the side file of a snapshot file: its place in the etcd log
SIDE_SUFFIX = ".etcd"


def digest(data: bytes) -> str:
    """@return: the hex SHA-256 of C{data}."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str) -> str:
    """@return: the hex SHA-256 of the file at C{path} (read in 1 MiB blocks)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as opened:
        for block in iter(lambda: opened.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


@dataclass(frozen=True)
class LocalSnapshot:
    """
    One snapshot file on disk and where it sits in the etcd log.

    @ivar path: the snapshot file.
    @ivar zxid: the tree's zxid.
    @ivar seq: the last log slot the tree covers (the log is applied up to it).
    @ivar slot_digest: SHA-256 of that slot's value in etcd.
    @ivar file_digest: SHA-256 of the snapshot file.
    """

    path: str
    zxid: int
    seq: int
    slot_digest: str
    file_digest: str

    def usable(self, manifest: dict[str, Any] | None, slot_value: bytes | None) -> bool:
        """
        @param manifest: etcd's snapshot manifest, or L{None} when etcd has none.
        @param slot_value: the value of slot L{seq} in etcd now, or L{None}.
        @return: whether the etcd log continues this snapshot: etcd's own snapshot
            (same slot, same file digest), or a later point of the same log (the
            slot is still there, with the same value).
        """
        covered = -1 if manifest is None else int(manifest["seq"])
        if self.seq < covered:
            return False  # the slots after it were deleted
        if self.seq == covered and manifest is not None:
            return manifest.get("sha256") == self.file_digest
        return slot_value is not None and digest(slot_value) == self.slot_digest


def _read_side(path: str) -> LocalSnapshot | None:
    try:
        with open(path + SIDE_SUFFIX, encoding="utf-8") as side:
            described = json.load(side)
        return LocalSnapshot(
            path,
            int(described["zxid"]),
            int(described["seq"]),
            str(described["slot_sha256"]),
            str(described["sha256"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _describe(path: str, zxid: int, seq: int, slot_digest: str, sync: bool) -> LocalSnapshot:
    """In a thread: digest the snapshot file and write its side file (atomically)."""
    local = LocalSnapshot(path, zxid, seq, slot_digest, file_digest(path))
    side = {"zxid": zxid, "seq": seq, "slot_sha256": slot_digest, "sha256": local.file_digest}
    temporary = f"{path}{SIDE_SUFFIX}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as side_file:
        json.dump(side, side_file)
        if sync:
            side_file.flush()
            os.fsync(side_file.fileno())
    os.replace(temporary, path + SIDE_SUFFIX)
    return local


def _remove_orphans(directory: str) -> None:
    """Remove side files whose snapshot was purged."""
    for name in os.listdir(directory):
        if name.endswith(SIDE_SUFFIX) and not os.path.exists(
            os.path.join(directory, name[: -len(SIDE_SUFFIX)])
        ):
            os.remove(os.path.join(directory, name))


class LocalSnapshots:
    """
    Where a data server on etcd writes its snapshots: its C{--data-dir} (a cache,
    locked for this process) or a private temporary directory.

    @ivar directory: where the files go.
    @ivar persistent: whether they stay there (a cache) or go once uploaded.
    @ivar last_pause: seconds the reactor spent in the last snapshot's C{fork}.
    @ivar longest_pause: the longest such pause.
    """

    def __init__(
        self,
        directory: str | None,
        retain: int = 3,
        sync: bool = True,
        reactor: Any = None,
    ) -> None:
        """
        @param directory: the cache directory, or L{None} for none.
        @raise zkreg.persistence.dirlock.DataDirLocked: another process uses it.
        """
        self.persistent = directory is not None
        self._lock: DataDirLock | None = None
        if directory is not None:
            self._lock = lock_data_dir(directory)
        # Without a cache the temporary directory is made by the first snapshot: a data
        # server that never snapshots (or is killed) leaves no empty directory behind.
        self._directory = directory
        self.retain = max(retain, 1)
        self.sync = sync
        self._reactor = reactor
        self.last_pause = 0.0
        self.longest_pause = 0.0

    @property
    def directory(self) -> str:
        """Where the files go (a temporary directory is made at the first ask)."""
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="zkreg-etcd-snapshots-")
        return self._directory

    @defer.inlineCallbacks
    def take(self, tree: DataTree, replies: ReplyCache | None, seq: int, slot_value: bytes):
        """
        Fork now and write C{tree} (the log applied up to slot C{seq}, whose value
        is C{slot_value}) and C{replies} as they are at this instant.

        @return: Deferred firing with the L{LocalSnapshot} once written.
        """
        zxid = tree.last_zxid
        slot_digest = digest(slot_value)
        forker = ForkSnapshotter(
            self.directory,
            tree,
            None,
            retain=self.retain if self.persistent else 1 << 30,
            sync=self.sync,
            reactor=self._reactor,
            replies=replies,
        )
        forker.dir_lock = self._lock
        written = forker.take_snapshot()  # forks here, on this reactor turn
        self.last_pause = forker.last_pause
        self.longest_pause = max(self.longest_pause, forker.last_pause)
        path = yield written
        local = yield threads.deferToThread(_describe, path, zxid, seq, slot_digest, self.sync)
        if self.persistent:
            yield threads.deferToThread(_remove_orphans, self.directory)
        return local

    def discard(self, local: LocalSnapshot) -> None:
        """Remove an uploaded snapshot that is not kept (no cache directory)."""
        if self.persistent:
            return
        for path in (local.path, local.path + SIDE_SUFFIX):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def candidates(self) -> list[LocalSnapshot]:
        """@return: the cached snapshots that have a side file, newest first."""
        if not self.persistent:
            return []
        found = []
        for _zxid, path in reversed(list_snapshots(self.directory)):
            local = _read_side(path)
            if local is not None:
                found.append(local)
        return found

    def close(self) -> None:
        """Release the cache directory (or remove the temporary one)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if not self.persistent and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
