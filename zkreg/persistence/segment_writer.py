"""
The writer side of the write-ahead log: the blocking I/O on the open segment
(L{SegmentWriter}), the single thread it runs on (L{WriterThread}), and the error a
call fails with once that thread has stopped (L{LogClosedError}).

It is separate from L{zkreg.persistence.wal}, which decides what to write and when
(group commit, acknowledgement, recovery, all on the reactor thread), because
everything here runs off the reactor thread, one call at a time, and touches the disk.

Preallocating the segment (C{posix_fallocate}, or C{ftruncate} where that is not
supported) means the file size does not change as records are appended, so a data sync
(C{fdatasync}) has no metadata to write.  A segment is rolled when the next record would
not fit, and on request (L{zkreg.persistence.wal.FileWriteAheadLog.roll}, at each
snapshot, so that old segments can be purged whole).
"""

from __future__ import annotations

import errno
import os
import queue
import threading
import time
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from zkreg.persistence.segments import (
    SEGMENT_HEADER_BYTES,
    encode_segment_header,
    fsync_directory,
    list_segments,
    segment_name,
    segments_needed_after,
)
from zkreg.summary import RecentSummary

__all__ = [
    "MIN_PREALLOC_BYTES",
    "LogClosedError",
    "SegmentWriter",
    "WriterThread",
]

#: The smallest segment preallocation chosen from free space.
MIN_PREALLOC_BYTES = 64 * 1024


class LogClosedError(Exception):
    """
    The log was closed; it takes no more appends.
    """


class SegmentWriter:
    """
    The writer thread's half of the log: the open segment and the blocking I/O.

    Only ever called from the single writer thread (or before it starts), one batch
    at a time, so it needs no lock.
    """

    def __init__(
        self, directory: str, segment_bytes: int, sync: bool, prealloc_bytes: int | None = None
    ) -> None:
        self.directory = directory
        #: the size a segment is rolled at (the open one's may be smaller: L{limit})
        self.segment_bytes = segment_bytes
        self.prealloc_bytes = prealloc_bytes
        self.sync = sync
        self.fd: int | None = None
        self.path: str | None = None
        self.logical_end = 0
        #: the end of the last record synced in the open segment
        self.synced_end = 0
        #: the open segment's roll size
        self.limit = segment_bytes
        self.segments_created = 0
        self.syncs = 0
        #: seconds of each C{fdatasync} of records (observed on the writer thread)
        self.sync_seconds = RecentSummary()

    def _segment_size(self) -> tuple[int, int]:
        """
        @return: C{(preallocation, roll size)} of a new segment: configured, or a
            quarter of the volume's free space up to C{segment_bytes}, so that a
            small volume holds several segments (and the purge can free old ones).
        """
        configured = self.prealloc_bytes
        if configured is not None:
            return configured, configured or self.segment_bytes
        try:
            stats = os.statvfs(self.directory)
            free = stats.f_bavail * stats.f_frsize
        except OSError:
            return self.segment_bytes, self.segment_bytes
        size = min(self.segment_bytes, max(MIN_PREALLOC_BYTES, free // 4 // 65536 * 65536))
        return size, size

    def _open_segment(self, first_zxid: int) -> None:
        path = os.path.join(self.directory, segment_name(first_zxid))
        prealloc, limit = self._segment_size()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if prealloc:
                try:
                    os.posix_fallocate(fd, 0, prealloc)
                except OSError as error:
                    if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    os.ftruncate(fd, prealloc)
            header = encode_segment_header(first_zxid)
            os.pwrite(fd, header, 0)
            if self.sync:
                os.fsync(fd)
                fsync_directory(self.directory)
        except BaseException:
            # Leave no half-made segment behind (a retry creates it again).
            os.close(fd)
            try:
                os.remove(path)
            except OSError:
                pass
            raise
        self.fd = fd
        self.path = path
        self.logical_end = self.synced_end = len(header)
        self.limit = limit
        self.segments_created += 1

    def recover(self, next_zxid: int) -> None:
        """
        After a failed batch: keep only what was synced, then open a new segment for
        C{next_zxid} (runs on the writer thread).

        @raise OSError: when the disk (or the descriptor table) still refuses; the
            log stays failed and is retried later.
        """
        if self.fd is not None:
            fd, path = self.fd, self.path
            assert path is not None
            if self.synced_end <= SEGMENT_HEADER_BYTES:
                # No record of it was synced: it goes (a new one takes its name).
                os.close(fd)
                self.fd = None
                os.remove(path)
            else:
                os.ftruncate(fd, self.synced_end)
                if self.sync:
                    os.fsync(fd)
                os.close(fd)
                self.fd = None
            if self.sync:
                fsync_directory(self.directory)
        self._open_segment(next_zxid)
        # The call that failed, tried on the new segment: a disk still failing keeps
        # the log failed rather than let it flap between working and failing writes.
        self._sync()

    def close_segment(self) -> None:
        """Close the open segment (its records are already synced)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _write(self, chunks: list[bytes]) -> None:
        if not chunks:
            return
        assert self.fd is not None
        blob = b"".join(chunks)
        view = memoryview(blob)
        written = 0
        while written < len(blob):
            count = os.pwrite(self.fd, view[written:], self.logical_end + written)
            if count <= 0:
                raise OSError(errno.EIO, "short write to the write-ahead log")
            written += count
        self.logical_end += len(blob)

    def _sync(self) -> None:
        if self.sync and self.fd is not None:
            started = time.perf_counter()
            os.fdatasync(self.fd)
            self.sync_seconds.observe(time.perf_counter() - started)
            self.syncs += 1
        self.synced_end = self.logical_end

    def purge(self, zxid: int) -> list[str]:
        """
        Remove every segment not needed to replay records after C{zxid} (never the
        open one).

        @return: the paths removed.
        """
        segments = list_segments(self.directory)
        needed = {path for _, path in segments_needed_after(segments, zxid)}
        removed = []
        for _, path in segments:
            if path in needed or (self.fd is not None and path == self.path):
                continue
            os.remove(path)
            removed.append(path)
        if removed and self.sync:
            fsync_directory(self.directory)
        return removed

    def write_batch(self, batch: list[tuple[int, bytes]], roll_first: bool) -> None:
        """
        Write and sync a batch of encoded records (runs on the writer thread).

        @param batch: C{(zxid, encoded record)} in zxid order.
        @param roll_first: start a new segment with the batch's first record.
        """
        if roll_first and self.fd is not None and self.logical_end > SEGMENT_HEADER_BYTES:
            self.close_segment()
        if self.fd is not None:
            # The usual batch fits in the open segment: one write, no per-record checks.
            blobs = [encoded for _zxid, encoded in batch]
            if self.logical_end + sum(map(len, blobs)) <= self.limit:
                self._write(blobs)
                self._sync()
                return
        chunks: list[bytes] = []
        chunk_bytes = 0
        for zxid, encoded in batch:
            if self.fd is None:
                self._open_segment(zxid)
            elif (
                self.logical_end + chunk_bytes + len(encoded) > self.limit
                and self.logical_end + chunk_bytes > SEGMENT_HEADER_BYTES
            ):
                self._write(chunks)
                self._sync()
                chunks, chunk_bytes = [], 0
                self.close_segment()
                self._open_segment(zxid)
            chunks.append(encoded)
            chunk_bytes += len(encoded)
        self._write(chunks)
        self._sync()


class WriterThread:
    """
    The log's single writer thread: runs calls one at a time, in order, and reports
    each result to the reactor thread.

    Lighter than a Twisted C{ThreadPool} of one thread (no context tracking, no team
    coordination, a C{SimpleQueue} instead of a Python condition variable), which
    matters because it is paid once per group commit on the reactor thread.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._stopped = False

    def _ensure_thread(self) -> None:
        """
        Start the thread on the first call, and again in a forked process: the log is
        opened before twistd daemonizes (a fork), and a thread does not survive a fork
        (the daemon's writes would wait forever).
        """
        if self._thread is None or self._thread_pid != os.getpid():
            self._calls = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._run, name="zkreg-wal-writer", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()

    def call(self, function: Any, *args: Any) -> defer.Deferred:
        """
        Run C{function(*args)} on the writer thread after every earlier call.

        @return: a Deferred firing on the reactor thread with its result or failure.
        """
        result: defer.Deferred = defer.Deferred()
        if self._stopped:
            result.errback(LogClosedError("the write-ahead log writer has stopped"))
            return result
        self._ensure_thread()
        self._calls.put((function, args, result))
        return result

    def _run(self) -> None:
        calls = self._calls  # this thread's queue (a forked process makes a new one)
        call_from_thread = self._reactor.callFromThread
        while True:
            item = calls.get()
            if item is None:
                return
            function, args, result = item
            try:
                value = function(*args)
            except BaseException:
                call_from_thread(result.errback, Failure())
            else:
                call_from_thread(result.callback, value)

    def stop(self) -> None:
        """Let the queued calls finish, then end the thread (waiting for it)."""
        self._stopped = True
        thread, self._thread = self._thread, None
        if thread is not None and self._thread_pid == os.getpid():
            self._calls.put(None)
            thread.join()
