"""
The durable data directory, put together: recovery at startup, the write-ahead log,
and snapshots taken in a forked child every C{snap_count} transactions, with purging.

L{open_durable_state} is the one call the process's assembly (C{zkreg.tap}) needs::

    durable = open_durable_state(config)   # recovers; raises on a damaged log
    durable.service().setServiceParent(top)  # before the data server: stops after it
    data_service, factory = build_standalone(config, log=durable.wal, tree=durable.tree)
    durable.attach(data_service)             # snapshots follow its commits

The data server re-arms every session of C{durable.tree.sessions} with its full
timeout from the restart (ZooKeeper's behaviour), so ephemerals stay until their
session reconnects or expires.

Snapshots without a pause
=========================

A snapshot must not stop request handling while a million znodes are serialized.
L{ForkSnapshotter} calls C{os.fork()} on the reactor thread between two applies: the
child gets a copy-on-write image of the tree exactly at C{tree.last_zxid} (and of the
reply cache of stamped writes, which the applier updates in the same turn), writes it
to a temporary file, syncs, renames it into place and C{_exit}s; the parent goes on
at once and only waits for the child's exit on a thread.  The reactor's only pause is
the C{fork} call itself (copying the page tables), measured in L{ForkSnapshotter.last_pause}.
The child runs C{nice}r than the server (L{CHILD_NICENESS}): its second of CPU must not
delay the log's writer thread or the clients on the other core, whose requests wait.
At each snapshot the log is rolled, and after it succeeds old snapshots beyond
C{snap_retain_count} and the log segments only they needed are removed.
"""

from __future__ import annotations

import ctypes
import gc
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.application import service
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.dedup import ReplyCache
from zkreg.data.tree import DataTree
from zkreg.interfaces import ICommitListener
from zkreg.persistence.dirlock import DataDirLock, lock_data_dir
from zkreg.persistence.recovery import RecoveredState, recover, write_tree_snapshot
from zkreg.persistence.snapshot import list_snapshots
from zkreg.persistence.wal import DEFAULT_SEGMENT_BYTES, FileWriteAheadLog

__all__ = ["DurableState", "ForkSnapshotter", "SnapshotFailed", "open_durable_state"]

log = Logger(namespace="zkreg.persistence.durable")

_PR_SET_PDEATHSIG = 1


class SnapshotFailed(Exception):
    """The snapshot child did not finish (its exit status says how)."""


_LIBC_PRCTL: Any
try:
    # Loaded now, in the parent: a dlopen in the forked child could wait forever on a
    # loader lock some other thread held at the fork.
    _LIBC_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _LIBC_PRCTL = None


#: How much the snapshot child yields the CPU to everything else (C{nice}): it is
#: background work, while the server's own threads (the reactor, the log's writer) and
#: its clients answer requests on the same cores.
CHILD_NICENESS = 10


def _die_with_parent(parent_pid: int) -> None:
    """
    In the snapshot child: be killed when the server dies, so a crash of the server
    is a crash of its snapshot too, never a snapshot finishing behind a restarted one.
    """
    if _LIBC_PRCTL is None:
        return
    _LIBC_PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(3)


def _purge_snapshots(directory: str, retain: int) -> tuple[list[str], int | None]:
    """
    Remove all but the newest C{retain} snapshots.

    @return: the paths removed, and the zxid of the oldest snapshot kept (L{None}
        when there is none).
    """
    snapshots = list_snapshots(directory)
    retain = max(retain, 1)
    doomed, kept = snapshots[:-retain], snapshots[-retain:]
    removed = []
    for _, path in doomed:
        os.remove(path)
        removed.append(path)
    return removed, (kept[0][0] if kept else None)


@implementer(ICommitListener)
class ForkSnapshotter:
    """
    Takes a snapshot every C{snap_count} committed transactions (randomised as
    ZooKeeper does: after C{snap_count / 2 + random(snap_count / 2)}), in a forked
    child, then purges.

    Subscribe it to the data server's commit stream; it only counts there and
    starts the snapshot on the next reactor turn, so the fork never happens in the
    middle of a batch of applies.

    When the count comes due while the previous child is still writing, that turn is
    skipped and counting starts again, as ZooKeeper's C{SyncRequestProcessor} does
    ("Too busy to snap, skipping").  Otherwise a big tree whose snapshot takes longer
    than the interval would be forked again the moment each child exits: a child
    always running, and the reactor paused by a fork of the whole process (8-15 ms at
    364,000 znodes on a 2-core VM) about once per child's lifetime.

    @ivar last_pause: seconds the reactor thread spent in the last C{fork}.
    @ivar longest_pause: the longest such pause since start.
    @ivar last_duration: seconds the last snapshot took from fork to the child's exit.
    @ivar snapshots_taken: snapshots finished successfully.
    @ivar snapshots_skipped: snapshots that came due while one was still being
        written, and were skipped.
    @ivar last_snapshot_zxid: the zxid of the last finished snapshot, or L{None}.
    """

    def __init__(
        self,
        directory: str,
        tree: DataTree,
        wal: FileWriteAheadLog | None,
        snap_count: int = 100000,
        retain: int = 3,
        sync: bool = True,
        reactor=None,
        randomize: Callable[[int], int] | None = None,
        since_snapshot: int = 0,
        replies: ReplyCache | None = None,
    ) -> None:
        """
        @param since_snapshot: transactions already in the log after the newest
            snapshot (those replayed at startup): they count toward the next one, so
            frequent restarts do not let the log grow without a snapshot.
        @param replies: the data server's reply cache of stamped writes, kept in each
            snapshot (see L{zkreg.data.dedup}).
        """
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.directory = directory
        self.tree = tree
        self.replies = replies
        self.wal = wal
        self.snap_count = max(snap_count, 2)
        self.retain = retain
        self.sync = sync
        self.last_pause = 0.0
        self.longest_pause = 0.0
        self.last_duration = 0.0
        self.snapshots_taken = 0
        self.snapshots_skipped = 0
        self.last_snapshot_zxid: int | None = None
        self._reactor = reactor
        self._randomize = randomize or (lambda bound: random.randrange(bound))
        self._since_snapshot = since_snapshot
        self._threshold = self._next_threshold()
        self._running: defer.Deferred | None = None
        self._waiters: list[defer.Deferred] = []
        self._scheduled = False
        self._stopped = False
        #: The data directory's lock, whose descriptor the child closes (L{_child}).
        self.dir_lock: DataDirLock | None = None

    def _next_threshold(self) -> int:
        half = self.snap_count // 2
        return half + self._randomize(max(half, 1))

    @property
    def in_progress(self) -> bool:
        """A snapshot child is running."""
        return self._running is not None

    def committed(self, commit: object) -> None:
        """
        Count one committed transaction (L{ICommitListener}); start a snapshot when
        enough have been.
        """
        self._since_snapshot += 1
        if self._since_snapshot > self._threshold and not self._scheduled:
            if self._running is not None:
                self._skip_busy()
                return
            self._scheduled = True
            self._reactor.callLater(0, self._scheduled_snapshot)

    def _skip_busy(self) -> None:
        """
        A snapshot came due while the last one is still being written: count again
        from here (see the class docstring).
        """
        self.snapshots_skipped += 1
        self._since_snapshot = 0
        self._threshold = self._next_threshold()
        log.warn(
            "Too busy to snapshot (the last one is still being written), skipping; the"
            " next after {count} more transactions",
            count=self._threshold,
        )

    def _scheduled_snapshot(self) -> None:
        self._scheduled = False
        if not self._stopped and self._running is None:
            self.take_snapshot().addErrback(lambda _: None)

    def take_snapshot(self) -> defer.Deferred:
        """
        Fork now and write a snapshot of the tree at its C{last_zxid}.

        @return: a Deferred firing with the snapshot's path once the child exited
            successfully and old files were purged (failing with L{SnapshotFailed}
            otherwise); if one is already running, that one's Deferred.
        """
        if self._running is not None:
            return self._waiter()
        zxid = self.tree.last_zxid
        self._since_snapshot = 0
        self._threshold = self._next_threshold()
        if self.wal is not None:
            self.wal.roll()
        parent_pid = os.getpid()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            self._child(parent_pid)
        self.last_pause = time.perf_counter() - started
        self.longest_pause = max(self.longest_pause, self.last_pause)
        log.info(
            "snapshot of zxid {zxid:#x} forked as pid {pid} (reactor paused {ms:.1f} ms)",
            zxid=zxid,
            pid=pid,
            ms=self.last_pause * 1000,
        )
        running = threads.deferToThread(os.waitpid, pid, 0)
        running.addCallback(self._child_exited, zxid, started)
        running.addBoth(self._done)
        self._running = running
        return self._waiter()

    def _child(self, parent_pid: int) -> None:  # pragma: no cover - child process
        code = 1
        try:
            gc.disable()  # the collector would touch (and so copy) every page
            os.nice(CHILD_NICENESS)
            if self.dir_lock is not None:
                self.dir_lock.close_in_child()
            _die_with_parent(parent_pid)
            write_tree_snapshot(
                self.directory, self.tree, self.sync, with_digest=True, replies=self.replies
            )
            code = 0
        except BaseException as error:  # noqa: BLE001 - report and exit, never return
            try:
                os.write(2, f"zkreg snapshot child failed: {error!r}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)

    @defer.inlineCallbacks
    def _child_exited(self, waited: tuple[int, int], zxid: int, started: float):
        _, status = waited
        self.last_duration = time.perf_counter() - started
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            raise SnapshotFailed(
                f"snapshot of zxid {zxid:#x} failed (child status {status:#x}); the log "
                f"keeps every transaction, another snapshot is tried after "
                f"{self._threshold} more"
            )
        self.snapshots_taken += 1
        self.last_snapshot_zxid = zxid
        removed, oldest_kept = yield threads.deferToThread(
            _purge_snapshots, self.directory, self.retain
        )
        if self.wal is not None and oldest_kept is not None:
            removed += yield self.wal.purge_before(oldest_kept)
        log.info(
            "snapshot of zxid {zxid:#x} written in {seconds:.2f}s; purged {removed}",
            zxid=zxid,
            seconds=self.last_duration,
            removed=[os.path.basename(path) for path in removed],
        )
        return os.path.join(self.directory, f"snapshot.{zxid:016x}")

    def _waiter(self) -> defer.Deferred:
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def _done(self, result: object) -> None:
        self._running = None
        waiters, self._waiters = self._waiters, []
        if isinstance(result, Failure):
            log.failure("snapshot failed", failure=result)
            for waiter in waiters:
                waiter.errback(result)
        else:
            for waiter in waiters:
                waiter.callback(result)

    def stop(self) -> defer.Deferred:
        """
        Take no more snapshots; wait for a running one to finish.
        """
        self._stopped = True
        if self._running is None:
            return defer.succeed(None)
        return self._waiter().addBoth(lambda _: None)


@dataclass
class DurableState:
    """
    The recovered state of a data directory and what keeps it durable from now on.

    @ivar tree: the recovered tree (its C{sessions} are the sessions to re-arm with
        full timeouts, its C{last_zxid} the zxid to continue after).
    @ivar wal: the write-ahead log to give the data server.
    @ivar snapshotter: takes snapshots; L{attach} subscribes it.
    @ivar recovered: what recovery did (snapshot used, records replayed, notes).
    """

    tree: DataTree
    wal: FileWriteAheadLog
    snapshotter: ForkSnapshotter
    recovered: RecoveredState
    dir_lock: DataDirLock | None = None
    _attached: list = field(default_factory=list)

    @property
    def last_zxid(self) -> int:
        """The zxid recovery ended at."""
        return self.recovered.last_zxid

    @property
    def sessions(self) -> dict[int, int]:
        """Session id to timeout (ms) of every session alive in the log."""
        return self.tree.sessions

    def attach(self, data_server: object) -> None:
        """
        Follow C{data_server}'s commits to take snapshots (it must provide
        C{subscribe(listener)}, as L{zkreg.interfaces.IDataLink} does).
        """
        data_server.subscribe(self.snapshotter)  # type: ignore[attr-defined]
        self._attached.append(data_server)

    def service(self) -> service.Service:
        """
        A service to add to the process's C{MultiService} I{before} the data server, so
        that it stops after it: it waits for a running snapshot and closes the log.
        """
        return _DurableStateService(self)

    def close(self) -> defer.Deferred:
        """Stop snapshots, then flush and close the log."""
        for data_server in self._attached:
            unsubscribe = getattr(data_server, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe(self.snapshotter)
        self._attached.clear()
        closed = self.snapshotter.stop().addCallback(lambda _: self.wal.close())
        return closed.addBoth(self._release_lock)

    def _release_lock(self, result: object) -> object:
        if self.dir_lock is not None:
            self.dir_lock.release()
        return result


class _DurableStateService(service.Service):
    """Closes a L{DurableState} when the process stops."""

    def __init__(self, state: DurableState) -> None:
        self.state = state

    def startService(self) -> None:
        service.Service.startService(self)
        if self.state.dir_lock is not None:
            # twistd may have daemonized since the lock was taken: a new pid.
            self.state.dir_lock.write_pid()

    def stopService(self) -> defer.Deferred:
        service.Service.stopService(self)
        return self.state.close()


def open_durable_state(
    config: object,
    reactor=None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> DurableState:
    """
    Recover the data directory of C{config} and open its log for appends.

    @param config: a L{zkreg.config.ServerConfig} (C{data_dir}, C{snap_count},
        C{snap_retain_count}, C{fsync}, C{extended_types} are read).
    @raise zkreg.persistence.segments.CorruptLogError: the log is damaged in the middle; the
        message names the file, the offset and what to do.  Starting must stop.
    @raise zkreg.persistence.recovery.RecoveryError: other unrecoverable damage.
    @raise zkreg.persistence.dirlock.DataDirLocked: another process holds the directory.
    @raise zkreg.persistence.dirlock.DataDirUnwritable: the directory cannot be written.
    """
    directory = os.path.abspath(config.data_dir)  # type: ignore[attr-defined]
    # Before anything is read: another server's purge could remove what we replay.
    dir_lock = lock_data_dir(directory, wait_s=_LOCK_WAIT_S)
    try:
        return _open_locked(config, directory, dir_lock, reactor, segment_bytes)
    except BaseException:
        dir_lock.release()
        raise


#: How long a starting server waits for the lock: a server just killed may leave its
#: snapshot child alive for a moment (it dies with its parent, not at once).
_LOCK_WAIT_S = 2.0


def _open_locked(
    config: object, directory: str, dir_lock: DataDirLock, reactor, segment_bytes: int
) -> DurableState:
    sync = bool(getattr(config, "fsync", True))
    if not sync:
        log.warn(
            "fsync is off (UNSAFE): acknowledged writes survive a crash of zkreg but "
            "may be lost if the machine or its power fails"
        )
    recovered = recover(directory, bool(getattr(config, "extended_types", False)))
    # Recovery checked (and cut) the log already: no second scan.
    last_logged = max(recovered.log_last_zxid or 0, recovered.last_zxid)
    wal = FileWriteAheadLog(
        directory,
        last_logged,
        segment_bytes,
        sync,
        reactor,
        prealloc_bytes=getattr(config, "prealloc_size_bytes", None),
    )
    wal.repairs = list(recovered.notes)
    snapshotter = ForkSnapshotter(
        directory,
        recovered.tree,
        wal,
        snap_count=int(getattr(config, "snap_count", 100000)),
        retain=int(getattr(config, "snap_retain_count", 3)),
        sync=sync,
        reactor=reactor,
        since_snapshot=recovered.replayed,
        replies=recovered.replies,
    )
    snapshotter.dir_lock = dir_lock
    return DurableState(recovered.tree, wal, snapshotter, recovered, dir_lock)
