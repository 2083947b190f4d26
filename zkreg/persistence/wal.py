"""
The file write-ahead log: the embedded provider of L{IDurableLog}.

The segment files it writes, and how they are read back and checked at start, are in
L{zkreg.persistence.segments}; the writing itself runs on the thread of
L{zkreg.persistence.segment_writer}.  This module is the reactor side: it queues
appends, groups them into commits, acknowledges them, and rides out failures.

Group commit
============

L{FileWriteAheadLog.append} only queues the record.  Every record queued during one
reactor turn, and every record queued while a sync is in flight, is written and synced
by one call on a dedicated single writer thread; the reactor thread never writes or
syncs.  The Deferreds of a batch fire in zxid order on the reactor thread after its
sync.  A batch never starts before the previous one has finished, so the disk sees the
records in zxid order.

Failure
=======

If a write or sync fails (disk full, no file descriptor left to open a segment, an
I/O error) the log is I{failed}: the records of that batch may or may not be on disk,
so none of them is acknowledged; their Deferreds, those of every queued record and
those of every later append fail with L{LogFailedError}.  The failed batch is never
retried (after a failed C{fsync} the kernel may have dropped its dirty pages).
Instead, every L{RECOVERY_RETRY_S} the writer tries to recover by itself: it cuts the
open segment back to the end of its last synced record (or removes it if it has none),
syncs that, and opens (and preallocates) a new segment for the next record.  Only
records synced before the failure remain, all of them acknowledged; once the new
segment is open the log takes appends again, starting right after the last
acknowledged zxid, and tells the listeners of L{FileWriteAheadLog.add_recovery_listener}.
So a full disk or a descriptor limit is a condition the server rides out: writes fail
while it lasts and work again once space or descriptors are freed, without a restart.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.interfaces import IDurableLog
from zkreg.persistence.segment_writer import LogClosedError, SegmentWriter, WriterThread
from zkreg.persistence.segments import CRC, LENGTH_ZXID, list_segments, open_log, read_records
from zkreg.summary import RecentSummary

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "RECOVERY_RETRY_S",
    "FileWriteAheadLog",
    "LogFailedError",
]

log = Logger(namespace="zkreg.persistence.wal")

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: Seconds between two attempts of a failed log to recover.
RECOVERY_RETRY_S = 1.0


class LogFailedError(Exception):
    """
    Writing or syncing the log failed earlier; no write is acknowledged any more.
    Reads of what was committed before stay valid; a restart recovers what is on disk.
    """


@implementer(IDurableLog)
class FileWriteAheadLog:
    """
    The write-ahead log in segment files, with group commit on a writer thread.

    Build it with L{FileWriteAheadLog.open}, which checks the existing log first.

    @ivar directory: where the segments live.
    @ivar last_zxid: the zxid of the last record appended (or recovered), or L{None}.
    @ivar failure: the L{LogFailedError} once a write or sync failed, else L{None}.
    @ivar batches: how many batches were written (each one write and at most one sync
        per segment touched).
    @ivar records_written: how many records were written.
    """

    def __init__(
        self,
        directory: str,
        last_zxid: int | None = None,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        sync: bool = True,
        reactor=None,
        prealloc_bytes: int | None = None,
    ) -> None:
        """
        @param directory: an existing directory, already checked by L{open_log}.
        @param last_zxid: the last zxid on disk; appends must be greater.
        @param segment_bytes: the size segments are rolled at.
        @param prealloc_bytes: bytes preallocated per segment (then also its roll
            size); 0 preallocates nothing; L{None} takes a quarter of the volume's free
            space, at most C{segment_bytes}, so a small volume works.
        @param sync: C{fdatasync} each batch before acknowledging it.  C{False} is
            I{unsafe}: acknowledged writes survive a crash of the process but not of
            the machine or its power.
        @param reactor: the reactor whose thread appends come from (default: the
            global one).
        """
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.directory = directory
        self.last_zxid = last_zxid
        self.failure: LogFailedError | None = None
        self.repairs: list[str] = []
        self.batches = 0
        self.records_written = 0
        #: records per synced batch (the group-commit size)
        self.batch_records = RecentSummary()
        self._reactor = reactor
        self._writer = SegmentWriter(directory, segment_bytes, sync, prealloc_bytes)
        self._recovery_listeners: list[Any] = []
        self._recovery_call: Any = None
        #: failed batches since the log was opened, and recoveries from them
        self.failures = 0
        self.recoveries = 0
        self._pending: list[tuple[int, bytes, defer.Deferred | None]] = []
        self._roll_requested = False
        self._flush_scheduled = False
        self._in_flight: defer.Deferred | None = None
        self._closed = False
        #: The zxid of the last record known durable (or recovered).
        self.durable_zxid = last_zxid
        self._durable_listeners: list[tuple[Any, Any]] = []
        #: L{flush} waiters: C{(zxid, Deferred)} in zxid order.
        self._flush_waiters: list[tuple[int, defer.Deferred]] = []
        self._pool = WriterThread(reactor)
        self._shutdown_trigger = reactor.addSystemEventTrigger(
            "during", "shutdown", self._stop_pool
        )

    @classmethod
    def open(
        cls,
        directory: str,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        sync: bool = True,
        reactor=None,
        repair: bool = True,
        prealloc_bytes: int | None = None,
    ) -> FileWriteAheadLog:
        """
        Check the log in C{directory} (creating the directory), cut a torn tail, and
        return a log ready for appends after its last record.  Appends go to a new
        segment, never into one written before the restart.

        @raise CorruptLogError: for damage in the middle of the log.
        """
        os.makedirs(directory, exist_ok=True)
        opened = open_log(directory, repair=repair)
        wal = cls(directory, opened.last_zxid, segment_bytes, sync, reactor, prealloc_bytes)
        wal.repairs = opened.repairs
        return wal

    @property
    def sync_enabled(self) -> bool:
        """Whether batches are synced before they are acknowledged."""
        return self._writer.sync

    @property
    def syncs(self) -> int:
        """How many C{fdatasync} calls the writer made for records."""
        return self._writer.syncs

    @property
    def fsync_seconds(self) -> RecentSummary:
        """Seconds of each C{fdatasync} of records."""
        return self._writer.sync_seconds

    @property
    def segments_created(self) -> int:
        """How many segments this log created since it was opened."""
        return self._writer.segments_created

    @property
    def current_segment(self) -> str | None:
        """The path of the segment being appended to, if any."""
        return self._writer.path if self._writer.fd is not None else None

    def append(self, zxid: int, record: bytes) -> defer.Deferred:
        """
        Queue one serialized transaction; see L{IDurableLog.append}.

        @return: a Deferred firing with C{zxid} once the record is durable, or failing
            with L{LogFailedError} (or L{LogClosedError}).
        @raise ValueError: for a zxid not greater than the last one (a programming
            error of the caller, never a disk problem).
        """
        if self.failure is not None:
            return defer.fail(self.failure)
        if self._closed:
            return defer.fail(LogClosedError("the write-ahead log is closed"))
        if self.last_zxid is not None and zxid <= self.last_zxid:
            raise ValueError(f"zxid {zxid:#x} appended after {self.last_zxid:#x}")
        if not record:
            raise ValueError("a log record's payload cannot be empty")
        if record.__class__ is not bytes:
            record = bytes(record)
        done: defer.Deferred = defer.Deferred()
        # Encoded (header, CRC) on the writer thread: the reactor only queues.
        self._pending.append((zxid, record, done))
        self.last_zxid = zxid
        self._schedule_flush()
        return done

    def append_quiet(self, zxid: int, record: bytes) -> None:
        """
        L{append} without a Deferred: queue one record whose durability is reported
        in bulk to the listeners of L{add_durable_listener} (one call per batch).

        An optional extension of L{IDurableLog} for the data server's hot path.

        @raise LogFailedError: the log failed earlier (nothing is queued).
        @raise LogClosedError: the log is closed.
        @raise ValueError: for a zxid not greater than the last one, or an empty record.
        """
        last = self.last_zxid
        if (
            self.failure is not None
            or self._closed
            or (last is not None and zxid <= last)
            or not record
            or record.__class__ is not bytes
        ):
            record = self._checked(zxid, record)
        self._pending.append((zxid, record, None))
        self.last_zxid = zxid
        if not self._flush_scheduled and self._in_flight is None:
            self._flush_scheduled = True
            self._reactor.callLater(0, self._start_batch)

    def _checked(self, zxid: int, record: Any) -> bytes:
        """
        The checks of L{append_quiet}, taken when one of its quick tests failed.

        @return: the record as C{bytes}.
        """
        if self.failure is not None:
            raise self.failure
        if self._closed:
            raise LogClosedError("the write-ahead log is closed")
        if self.last_zxid is not None and zxid <= self.last_zxid:
            raise ValueError(f"zxid {zxid:#x} appended after {self.last_zxid:#x}")
        if not record:
            raise ValueError("a log record's payload cannot be empty")
        return bytes(record)

    def add_durable_listener(self, on_durable: Any, on_failed: Any) -> None:
        """
        Be told, on the reactor thread, how far the log is durable.

        @param on_durable: called with the zxid of the last record of each batch once
            it is synced (every record up to it is durable), after that batch's
            Deferreds have fired.
        @param on_failed: called once with a L{Failure} of L{LogFailedError} when the
            log fails (records not yet reported durable never will be).
        """
        self._durable_listeners.append((on_durable, on_failed))

    def add_recovery_listener(self, on_recovered: Any) -> None:
        """
        Be told, on the reactor thread, when a failed log recovered: it takes appends
        again, the next one right after the zxid of the last record reported durable.
        """
        self._recovery_listeners.append(on_recovered)

    def roll(self) -> None:
        """
        Start a new segment with the next record appended (called at each snapshot, so
        that whole segments fall behind the oldest snapshot kept and can be purged).
        """
        self._roll_requested = True

    def replay(self, after_zxid: int) -> Iterator[tuple[int, bytes]]:
        """
        See L{IDurableLog.replay}: read back from disk.  Call it before appending.
        """
        for record in read_records(self.directory, after_zxid):
            yield record.zxid, record.payload

    def segments(self) -> list[tuple[int, str]]:
        """@return: C{(first zxid, path)} of every segment on disk, in order."""
        return list_segments(self.directory)

    def purge_before(self, zxid: int) -> defer.Deferred:
        """
        Remove the segments holding only records with zxids up to C{zxid}: they are
        not needed to replay from a snapshot taken at C{zxid}.  Runs on the writer
        thread, between batches, so it never races a roll; the open segment is never
        removed.

        @return: a Deferred firing with the paths removed.
        """
        return self._pool.call(self._writer.purge, zxid)

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or self._in_flight is not None or not self._pending:
            return
        self._flush_scheduled = True
        # Wait for the end of this reactor turn: every append made in it joins the batch.
        self._reactor.callLater(0, self._start_batch)

    def _start_batch(self) -> None:
        self._flush_scheduled = False
        if self._in_flight is not None or not self._pending or self.failure is not None:
            return
        batch, self._pending = self._pending, []
        roll_first, self._roll_requested = self._roll_requested, False
        in_flight = self._pool.call(self._encode_and_write, batch, roll_first)
        self._in_flight = in_flight
        in_flight.addCallbacks(
            self._batch_written,
            self._batch_failed,
            callbackArgs=(batch,),
            errbackArgs=(batch,),
        )

    def _encode_and_write(self, batch: list, roll_first: bool) -> None:
        """
        Encode a batch of C{(zxid, payload, ...)} and hand it to the segment writer
        (runs on the writer thread, keeping the header and CRC work off the reactor).
        """
        pack = LENGTH_ZXID.pack
        crc32 = zlib.crc32
        pack_crc = CRC.pack
        encoded: list[tuple[int, bytes]] = []
        append = encoded.append
        for zxid, payload, _done in batch:
            length_zxid = pack(len(payload), zxid)
            append((zxid, length_zxid + pack_crc(crc32(payload, crc32(length_zxid))) + payload))
        self._writer.write_batch(encoded, roll_first)

    def _batch_written(self, _: object, batch: list) -> None:
        self._in_flight = None
        self.batches += 1
        self.records_written += len(batch)
        self.batch_records.observe(len(batch))
        # Start the next sync (everything queued while this one ran) before
        # acknowledging this batch: the disk works while the reactor applies and
        # answers, instead of waiting for the end of this turn.
        if self._pending and self.failure is None:
            self._start_batch()
        last = batch[-1][0]
        self.durable_zxid = last
        for zxid, _blob, done in batch:
            if done is not None:
                done.callback(zxid)
        for on_durable, _on_failed in tuple(self._durable_listeners):
            try:
                on_durable(last)
            except Exception:
                log.failure("durable listener {listener!r} failed", listener=on_durable)
        if self._flush_waiters:
            waiters = self._flush_waiters
            while waiters and waiters[0][0] <= last:
                waiters.pop(0)[1].callback(None)
        self._schedule_flush()

    def _batch_failed(self, reason: Failure, batch: list) -> None:
        self._in_flight = None
        self.failures += 1
        self.failure = LogFailedError(
            f"writing the write-ahead log in {self.directory} failed: "
            f"{reason.getErrorMessage()}; writes are refused (reads and sessions go on) "
            f"until it works again: free disk space or file descriptors; zkreg retries "
            f"every {RECOVERY_RETRY_S:g} s by itself, no restart needed"
        )
        log.critical("{message}", message=str(self.failure), failure=reason)
        self._schedule_recovery()
        pending, self._pending = self._pending, []
        for _zxid, _blob, done in batch + pending:
            if done is not None:
                done.errback(Failure(self.failure))
        for _on_durable, on_failed in tuple(self._durable_listeners):
            try:
                on_failed(Failure(self.failure))
            except Exception:
                log.failure("durable listener {listener!r} failed", listener=on_failed)
        waiters, self._flush_waiters = self._flush_waiters, []
        for _zxid, waiting in waiters:
            waiting.errback(Failure(self.failure))

    def _schedule_recovery(self) -> None:
        if self._recovery_call is None and not self._closed:
            self._recovery_call = self._reactor.callLater(RECOVERY_RETRY_S, self._try_recovery)

    def _try_recovery(self) -> None:
        self._recovery_call = None
        if self.failure is None or self._closed or self._in_flight is not None:
            return
        next_zxid = (self.durable_zxid if self.durable_zxid is not None else 0) + 1
        attempt = self._pool.call(self._writer.recover, next_zxid)
        self._in_flight = attempt
        attempt.addCallbacks(self._recovered, self._recovery_failed)

    def _recovered(self, _: object) -> None:
        self._in_flight = None
        if self._closed:
            return
        self.failure = None
        self.recoveries += 1
        self.last_zxid = self.durable_zxid
        log.warn(
            "write-ahead log in {directory} works again; taking writes after zxid {zxid:#x}",
            directory=self.directory,
            zxid=self.durable_zxid or 0,
        )
        for on_recovered in tuple(self._recovery_listeners):
            try:
                on_recovered()
            except Exception:
                log.failure("recovery listener {listener!r} failed", listener=on_recovered)

    def _recovery_failed(self, reason: Failure) -> None:
        self._in_flight = None
        log.debug("write-ahead log still failing: {reason}", reason=reason.getErrorMessage())
        self._schedule_recovery()

    def flush(self) -> defer.Deferred:
        """
        @return: a Deferred firing when every record appended so far is durable
            (failing if the log failed).
        """
        if self.failure is not None:
            return defer.fail(self.failure)
        target = self.last_zxid
        if target is None or (self.durable_zxid is not None and target <= self.durable_zxid):
            return defer.succeed(None)
        waiting: defer.Deferred = defer.Deferred()
        self._flush_waiters.append((target, waiting))
        return waiting

    def close(self) -> defer.Deferred:
        """
        Write out what is queued, then close the segment and stop the writer thread.

        @return: a Deferred firing when done (with L{None} even if the log had failed:
            the failure was reported to each append).
        """
        if self._closed:
            return defer.succeed(None)
        self._closed = True
        flushed = self.flush() if self.failure is None else defer.succeed(None)
        flushed.addErrback(lambda _: None)

        def finish(_: object) -> defer.Deferred:
            return self._pool.call(self._writer.close_segment).addBoth(self._stop_after)

        return flushed.addCallback(finish)

    def _stop_after(self, result: object) -> None:
        self._stop_pool()
        if self.records_written:
            log.info(
                "write-ahead log closed: {records} records in {batches} batches "
                "({per_batch:.1f} per batch), {syncs} syncs",
                records=self.records_written,
                batches=self.batches,
                per_batch=self.records_written / max(self.batches, 1),
                syncs=self.syncs,
            )
        if self._shutdown_trigger is not None:
            try:
                self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            except (ValueError, KeyError):
                pass
            self._shutdown_trigger = None
        return None

    def _stop_pool(self) -> None:
        call = self._recovery_call
        if call is not None and call.active():
            call.cancel()
        self._recovery_call = None
        self._pool.stop()
