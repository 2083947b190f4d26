"""
The file write-ahead log: the embedded provider of L{IDurableLog}.

On disk
=======

The log is a sequence of I{segment} files in the data directory, named
C{log.<first zxid as 16 hex digits>} so that a plain sort orders them.  A segment is

  - a 24-byte header: the magic C{b"ZKRGWAL\\0"}, the format version (C{>I}, now 1),
    the zxid of the segment's first record (C{>Q}) and a CRC-32 of those 20 bytes (C{>I});
  - records back to back, each a 16-byte header followed by the payload::

        >I length of the payload (never 0)
        >Q zxid
        >I CRC-32 (zlib) of the 12 bytes above followed by the payload

  - zeros up to the preallocated size (C{segment_bytes}, 64 MiB by default, less on
    a volume with less free space: see L{FileWriteAheadLog}): the logical end of a
    segment is the first all-zero record header (or the end of the file).

The payload is opaque here (L{IDurableLog} records are serialized transactions keyed
by zxid); the data server writes a jute C{TxnHeader} followed by the transaction
record, as ZooKeeper's log does, which is what C{zkreg log dump} decodes.

Preallocating the segment (C{posix_fallocate}, or C{ftruncate} where that is not
supported) means the file size does not change as records are appended, so a data sync
(C{fdatasync}) has no metadata to write.  A segment is rolled when the next record would
not fit, and on request (L{FileWriteAheadLog.roll}, at each snapshot, so that old
segments can be purged whole).

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

Reading
=======

L{scan_segment} reads one segment and says where and how it is damaged;
L{open_log} checks every segment at startup, cuts a torn tail (a partial last record,
with a warning) and refuses a damaged middle with L{CorruptLogError}.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.interfaces import IDurableLog
from zkreg.summary import RecentSummary

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "FORMAT_VERSION",
    "SEGMENT_MAGIC",
    "CorruptLogError",
    "FileWriteAheadLog",
    "LogClosedError",
    "LogFailedError",
    "LogRecord",
    "SegmentDamage",
    "SegmentScan",
    "encode_record",
    "encode_segment_header",
    "list_segments",
    "open_log",
    "read_records",
    "scan_segment",
    "segment_name",
    "segments_needed_after",
]

log = Logger(namespace="zkreg.persistence.wal")

SEGMENT_MAGIC = b"ZKRGWAL\x00"
FORMAT_VERSION = 1
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: The smallest segment preallocation chosen from free space.
MIN_PREALLOC_BYTES = 64 * 1024
#: Seconds between two attempts of a failed log to recover.
RECOVERY_RETRY_S = 1.0

#: magic, format version, first zxid; followed by a CRC-32 of these 20 bytes.
_SEGMENT_HEAD = struct.Struct(">8sIQ")
_CRC = struct.Struct(">I")
SEGMENT_HEADER_BYTES = _SEGMENT_HEAD.size + _CRC.size
#: payload length, zxid, CRC-32 of (length, zxid, payload).
_RECORD_HEAD = struct.Struct(">IQI")
RECORD_HEADER_BYTES = _RECORD_HEAD.size
_LENGTH_ZXID = struct.Struct(">IQ")

_SEGMENT_NAME = re.compile(r"^log\.([0-9a-f]{16})$")


class CorruptLogError(Exception):
    """
    The log is damaged where it must not be: a bad record followed by good ones, or a
    damaged segment that is not the last.  Recovery refuses to go on, because skipping
    the record would silently lose an acknowledged write.

    @ivar path: the segment file.
    @ivar offset: the byte offset of the first bad record in it.
    @ivar reason: what is wrong there.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"write-ahead log damaged in {path} at byte offset {offset}: {reason}. "
            f"Records after this point exist, so this is not a torn tail and zkreg will "
            f"not skip it. Run 'zkreg log verify {os.path.dirname(path) or '.'}' for "
            f"every damaged place; then restore the data directory from a backup (or "
            f"from another replica), or, accepting the loss of every transaction from "
            f"this record on, run 'zkreg log truncate {path} {offset} --yes' and restart."
        )


class LogFailedError(Exception):
    """
    Writing or syncing the log failed earlier; no write is acknowledged any more.
    Reads of what was committed before stay valid; a restart recovers what is on disk.
    """


class LogClosedError(Exception):
    """
    The log was closed; it takes no more appends.
    """


@dataclass(frozen=True, slots=True)
class LogRecord:
    """
    One record as read back from a segment.

    @ivar zxid: its zxid.
    @ivar payload: the serialized transaction.
    @ivar offset: where its header starts in the segment file.
    """

    zxid: int
    payload: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class SegmentDamage:
    """
    Where and how a segment is damaged.

    @ivar offset: byte offset of the first bad byte range (a header or a record).
    @ivar reason: what is wrong there.
    @ivar next_good_offset: the offset of a valid record found after the damage, or
        L{None} when nothing valid follows (a torn tail).
    """

    offset: int
    reason: str
    next_good_offset: int | None = None

    @property
    def is_torn_tail(self) -> bool:
        """Nothing valid follows the damage within the segment."""
        return self.next_good_offset is None


@dataclass(slots=True)
class SegmentScan:
    """
    What L{scan_segment} found in one segment.

    @ivar path: the file.
    @ivar first_zxid: the zxid in its header (from its name when the header is bad).
    @ivar version: the format version in its header, or L{None} when the header is bad.
    @ivar records: the valid records up to the first damage, in order.
    @ivar end_offset: the offset just past the last valid record (where an append
        or a truncation would go).
    @ivar file_size: the size of the file.
    @ivar damage: the first damage, or L{None} for a clean segment.
    @ivar header_damaged: the segment header itself is bad (no record was read).
    """

    path: str
    first_zxid: int
    version: int | None
    records: list[LogRecord] = field(default_factory=list)
    end_offset: int = SEGMENT_HEADER_BYTES
    file_size: int = 0
    damage: SegmentDamage | None = None
    header_damaged: bool = False

    @property
    def last_zxid(self) -> int | None:
        """The zxid of the last valid record, or L{None} for an empty segment."""
        return self.records[-1].zxid if self.records else None


def segment_name(first_zxid: int) -> str:
    """
    @return: the file name of the segment whose first record has C{first_zxid}.
    """
    return f"log.{first_zxid:016x}"


def list_segments(directory: str) -> list[tuple[int, str]]:
    """
    @return: C{(first zxid, path)} of every segment file in C{directory}, in zxid order.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _SEGMENT_NAME.match(name)
        if match:
            found.append((int(match.group(1), 16), os.path.join(directory, name)))
    found.sort()
    return found


def segments_needed_after(segments: list[tuple[int, str]], zxid: int) -> list[tuple[int, str]]:
    """
    The segments that may hold a record with a zxid greater than C{zxid}.

    A segment holds the records from its first zxid up to (not including) the next
    segment's first zxid, so it can be dropped when the next segment starts at or
    before C{zxid + 1}.

    @param segments: C{(first zxid, path)} in zxid order, as from L{list_segments}.
    @return: the suffix of C{segments} to keep.
    """
    keep_from = 0
    for index in range(1, len(segments)):
        if segments[index][0] <= zxid + 1:
            keep_from = index
    return segments[keep_from:]


def encode_record(zxid: int, payload: bytes) -> bytes:
    """
    @return: the bytes of one log record (header and payload).
    @raise ValueError: for an empty payload (length 0 marks the end of a segment).
    """
    if not payload:
        raise ValueError("a log record's payload cannot be empty")
    length_zxid = _LENGTH_ZXID.pack(len(payload), zxid)
    checksum = zlib.crc32(payload, zlib.crc32(length_zxid))
    return length_zxid + _CRC.pack(checksum) + payload


def encode_segment_header(first_zxid: int) -> bytes:
    """
    @return: the 24-byte header of a segment whose first record has C{first_zxid}.
    """
    head = _SEGMENT_HEAD.pack(SEGMENT_MAGIC, FORMAT_VERSION, first_zxid)
    return head + _CRC.pack(zlib.crc32(head))


def _record_at(data: bytes, offset: int, after_zxid: int) -> tuple[LogRecord | None, str]:
    """
    Read the record at C{offset} if it is valid.

    @return: C{(record, "")}, or C{(None, reason)}.
    """
    if offset + RECORD_HEADER_BYTES > len(data):
        return None, f"partial record header ({len(data) - offset} of {RECORD_HEADER_BYTES} bytes)"
    length, zxid, checksum = _RECORD_HEAD.unpack_from(data, offset)
    if length == 0:
        return None, "record length 0 followed by non-zero bytes"
    end = offset + RECORD_HEADER_BYTES + length
    if end > len(data):
        return None, (
            f"record of {length} bytes runs past the end of the file "
            f"({len(data) - offset - RECORD_HEADER_BYTES} bytes left)"
        )
    payload = data[offset + RECORD_HEADER_BYTES : end]
    computed = zlib.crc32(payload, zlib.crc32(data[offset : offset + _LENGTH_ZXID.size]))
    if computed != checksum:
        return None, f"checksum mismatch (stored {checksum:#010x}, computed {computed:#010x})"
    if zxid <= after_zxid:
        return None, f"zxid {zxid:#x} does not follow the previous zxid {after_zxid:#x}"
    return LogRecord(zxid, payload, offset), ""


def _find_valid_record(data: bytes, start: int, content_end: int, after_zxid: int) -> int | None:
    """
    Look for any valid record starting in C{[start, content_end)}.

    Used only after damage, to tell a torn tail (nothing valid follows) from damage
    in the middle.  A candidate must carry a zxid after C{after_zxid}, fit in the file
    and match its checksum, so random bytes almost never pass.
    """
    size = len(data)
    unpack = _LENGTH_ZXID.unpack_from
    for offset in range(start, max(start, content_end)):
        if offset + RECORD_HEADER_BYTES > size:
            return None
        length, zxid = unpack(data, offset)
        if length == 0 or zxid <= after_zxid or offset + RECORD_HEADER_BYTES + length > size:
            continue
        record, _ = _record_at(data, offset, after_zxid)
        if record is not None:
            return offset
    return None


#: Zeros to compare the preallocated tail of a segment with, a megabyte at a time.
_ZERO_CHUNK = bytes(1 << 20)


def _all_zero(data: Any, start: int) -> bool:
    """Whether every byte from C{start} on is zero (memcmp speed, a chunk at a time)."""
    size = len(data)
    step = len(_ZERO_CHUNK)
    for offset in range(start, size, step):
        end = min(offset + step, size)
        if data[offset:end] != _ZERO_CHUNK[: end - offset]:
            return False
    return True


def _content_end(data: Any) -> int:
    """The offset just past the last non-zero byte."""
    step = len(_ZERO_CHUNK)
    end = len(data)
    while end > 0:
        start = max(0, end - step)
        piece = data[start:end]
        if piece != _ZERO_CHUNK[: end - start]:
            return start + len(piece.rstrip(b"\x00"))
        end = start
    return 0


def scan_segment(path: str, after_zxid: int = -1, name_zxid: int | None = None) -> SegmentScan:
    """
    Read and check one segment.

    Records are checked for length, checksum and increasing zxids.  The first bad one
    ends the scan; the rest of the file is then searched for any valid record to tell
    a torn tail (none) from damage in the middle.  The file is mapped, not read, so
    the preallocated zeros of a segment cost no copy.

    @param path: the segment file.
    @param after_zxid: the last zxid of the previous segment; every record here must
        be greater.
    @param name_zxid: the first zxid the file name says, checked against the header.
    @return: a L{SegmentScan}.
    """
    with open(path, "rb") as segment_file:
        size = os.fstat(segment_file.fileno()).st_size
        if size == 0:
            return _scan(path, b"", after_zxid, name_zxid)
        data = mmap.mmap(segment_file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _scan(path, data, after_zxid, name_zxid)
    finally:
        data.close()


def _scan(path: str, data: Any, after_zxid: int, name_zxid: int | None) -> SegmentScan:
    if name_zxid is None:
        match = _SEGMENT_NAME.match(os.path.basename(path))
        name_zxid = int(match.group(1), 16) if match else 0
    scan = SegmentScan(path=path, first_zxid=name_zxid, version=None, file_size=len(data))
    if len(data) < SEGMENT_HEADER_BYTES:
        scan.header_damaged = True
        scan.end_offset = 0
        scan.damage = SegmentDamage(0, f"partial segment header ({len(data)} bytes)")
        return scan
    magic, version, first_zxid = _SEGMENT_HEAD.unpack_from(data, 0)
    (stored_crc,) = _CRC.unpack_from(data, _SEGMENT_HEAD.size)
    header_problem = ""
    if magic != SEGMENT_MAGIC:
        header_problem = f"bad magic {magic!r} (not a zkreg log segment)"
    elif zlib.crc32(data[: _SEGMENT_HEAD.size]) != stored_crc:
        header_problem = "segment header checksum mismatch"
    elif version != FORMAT_VERSION:
        header_problem = (
            f"unsupported log format version {version} (this zkreg reads {FORMAT_VERSION})"
        )
    elif first_zxid != name_zxid:
        header_problem = (
            f"header says first zxid {first_zxid:#x} but the file name says {name_zxid:#x}"
        )
    if header_problem:
        scan.header_damaged = True
        scan.end_offset = 0
        next_good = _find_valid_record(data, SEGMENT_HEADER_BYTES, _content_end(data), after_zxid)
        scan.damage = SegmentDamage(0, header_problem, next_good)
        return scan
    scan.version = version
    scan.first_zxid = first_zxid
    offset = SEGMENT_HEADER_BYTES
    last_zxid = after_zxid
    size = len(data)
    while offset < size:
        head = data[offset : offset + RECORD_HEADER_BYTES]
        if head.count(0) == len(head) and _all_zero(data, offset):
            break  # the logical end: only preallocated zeros follow
        record, reason = _record_at(data, offset, last_zxid)
        if record is None:
            next_good = _find_valid_record(data, offset + 1, _content_end(data), last_zxid)
            scan.damage = SegmentDamage(offset, reason, next_good)
            break
        if not scan.records and record.zxid != first_zxid:
            scan.damage = SegmentDamage(
                offset,
                f"first record has zxid {record.zxid:#x}, the header says {first_zxid:#x}",
                offset,
            )
            break
        scan.records.append(record)
        last_zxid = record.zxid
        offset += RECORD_HEADER_BYTES + len(record.payload)
    scan.end_offset = offset
    return scan


def _fsync_directory(directory: str) -> None:
    """Make a file creation, rename or removal in C{directory} durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _truncate_torn_tail(path: str, offset: int) -> None:
    """Cut a segment at C{offset}, durably."""
    with open(path, "r+b") as segment_file:
        segment_file.truncate(offset)
        segment_file.flush()
        os.fsync(segment_file.fileno())


@dataclass(slots=True)
class OpenedLog:
    """
    The result of L{open_log}: the checked state of the log directory.

    @ivar directory: the data directory.
    @ivar segments: C{(first zxid, path)} of every segment kept, in order.
    @ivar last_zxid: the zxid of the last valid record, or L{None} for an empty log.
    @ivar repairs: human-readable notes of what was cut.
    """

    directory: str
    segments: list[tuple[int, str]]
    last_zxid: int | None
    repairs: list[str] = field(default_factory=list)


def open_log(directory: str, repair: bool = True) -> OpenedLog:
    """
    Check every segment of the log in C{directory} and cut a torn tail.

    A damaged record is a torn tail only when it is in the last segment holding any
    record and no valid record follows it; then the segment is truncated there (with a
    warning).  A last segment whose header is torn and that holds no valid record (a
    crash while rolling) is removed.  Any other damage raises L{CorruptLogError}.

    @param repair: cut torn tails on disk; with C{False} only report them.
    @raise CorruptLogError: for damage in the middle of the log.
    """
    segments = list_segments(directory)
    kept: list[tuple[int, str]] = []
    repairs: list[str] = []
    last_zxid: int | None = None
    for index, (first_zxid, path) in enumerate(segments):
        is_last = index == len(segments) - 1
        scan = scan_segment(path, -1 if last_zxid is None else last_zxid, first_zxid)
        damage = scan.damage
        if damage is not None:
            if not is_last or not damage.is_torn_tail:
                where = damage.next_good_offset
                detail = damage.reason
                if where is not None:
                    detail += f"; a valid record follows at offset {where}"
                elif not is_last:
                    detail += f"; later segments follow ({os.path.basename(segments[-1][1])})"
                raise CorruptLogError(path, damage.offset, detail)
            if scan.header_damaged:
                note = f"removed {path}: torn segment header ({damage.reason}), no records"
                if repair:
                    os.remove(path)
                    _fsync_directory(directory)
                log.warn("write-ahead log: {note}", note=note)
                repairs.append(note)
                continue
            lost = scan.file_size - damage.offset
            note = (
                f"cut torn tail of {path} at offset {damage.offset} ({damage.reason}); "
                f"up to {lost} bytes of a write that was never acknowledged"
            )
            if repair:
                _truncate_torn_tail(path, damage.offset)
            log.warn("write-ahead log: {note}", note=note)
            repairs.append(note)
        if not scan.records and is_last:
            # Created (or cut) and never given a record: its name is a zxid that was
            # never acknowledged, which the next append may reuse.
            note = f"removed {path}: a segment without records"
            if repair:
                os.remove(path)
                _fsync_directory(directory)
            log.info("write-ahead log: {note}", note=note)
            repairs.append(note)
            continue
        if scan.last_zxid is not None:
            last_zxid = scan.last_zxid
        kept.append((first_zxid, path))
    return OpenedLog(directory, kept, last_zxid, repairs)


def read_records(directory: str, after_zxid: int = -1) -> Iterator[LogRecord]:
    """
    Every valid record with a zxid greater than C{after_zxid}, in order.

    Meant for a log already checked by L{open_log}: damage raises L{CorruptLogError}
    (a torn tail of the last segment ends the iteration).
    """
    segments = segments_needed_after(list_segments(directory), after_zxid)
    previous = -1
    for index, (first_zxid, path) in enumerate(segments):
        scan = scan_segment(path, previous, first_zxid)
        if scan.damage is not None and (index < len(segments) - 1 or not scan.damage.is_torn_tail):
            raise CorruptLogError(path, scan.damage.offset, scan.damage.reason)
        for record in scan.records:
            if record.zxid > after_zxid:
                yield record
        if scan.last_zxid is not None:
            previous = scan.last_zxid


class _SegmentWriter:
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
                _fsync_directory(self.directory)
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
                _fsync_directory(self.directory)
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
            _fsync_directory(self.directory)
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


class _WriterThread:
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
        self._writer = _SegmentWriter(directory, segment_bytes, sync, prealloc_bytes)
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
        self._pool = _WriterThread(reactor)
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
        pack = _LENGTH_ZXID.pack
        crc32 = zlib.crc32
        pack_crc = _CRC.pack
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
