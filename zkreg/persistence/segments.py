"""
The write-ahead log's segment files: their format, and reading, checking and repairing
them.

It is its own module because everything that touches a log shares it: the C{zkreg log}
tools and recovery at start only read and check segments, and the writer
(L{zkreg.persistence.segment_writer}) and the log (L{zkreg.persistence.wal}) are built
on it.  Plain blocking functions over the files: no thread, no reactor, no state.

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
    a volume with less free space: see L{zkreg.persistence.wal.FileWriteAheadLog}): the
    logical end of a segment is the first all-zero record header (or the end of the file).

The payload is opaque here (L{zkreg.interfaces.IDurableLog} records are serialized
transactions keyed by zxid); the data server writes a jute C{TxnHeader} followed by the
transaction record, as ZooKeeper's log does, which is what C{zkreg log dump} decodes.

Reading
=======

L{scan_segment} reads one segment and says where and how it is damaged;
L{open_log} checks every segment at startup, cuts a torn tail (a partial last record,
with a warning) and refuses a damaged middle with L{CorruptLogError}.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import Logger

__all__ = [
    "CRC",
    "FORMAT_VERSION",
    "LENGTH_ZXID",
    "RECORD_HEADER_BYTES",
    "SEGMENT_HEADER_BYTES",
    "SEGMENT_MAGIC",
    "CorruptLogError",
    "LogRecord",
    "OpenedLog",
    "SegmentDamage",
    "SegmentScan",
    "encode_record",
    "encode_segment_header",
    "fsync_directory",
    "list_segments",
    "open_log",
    "read_records",
    "scan_segment",
    "segment_name",
    "segments_needed_after",
]

# The namespace of the whole write-ahead log, so that one log filter sees the repairs
# made at start (here) and the failures of writing (in L{zkreg.persistence.wal}).
log = Logger(namespace="zkreg.persistence.wal")

SEGMENT_MAGIC = b"ZKRGWAL\x00"
FORMAT_VERSION = 1

#: magic, format version, first zxid; followed by a CRC-32 of these 20 bytes.
_SEGMENT_HEAD = struct.Struct(">8sIQ")
#: a CRC-32 field (of a segment header, or of a record).
CRC = struct.Struct(">I")
SEGMENT_HEADER_BYTES = _SEGMENT_HEAD.size + CRC.size
#: payload length, zxid, CRC-32 of (length, zxid, payload).
_RECORD_HEAD = struct.Struct(">IQI")
RECORD_HEADER_BYTES = _RECORD_HEAD.size
#: the part of a record header its CRC-32 covers (before the payload).
LENGTH_ZXID = struct.Struct(">IQ")

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
    length_zxid = LENGTH_ZXID.pack(len(payload), zxid)
    checksum = zlib.crc32(payload, zlib.crc32(length_zxid))
    return length_zxid + CRC.pack(checksum) + payload


def encode_segment_header(first_zxid: int) -> bytes:
    """
    @return: the 24-byte header of a segment whose first record has C{first_zxid}.
    """
    head = _SEGMENT_HEAD.pack(SEGMENT_MAGIC, FORMAT_VERSION, first_zxid)
    return head + CRC.pack(zlib.crc32(head))


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
    computed = zlib.crc32(payload, zlib.crc32(data[offset : offset + LENGTH_ZXID.size]))
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
    unpack = LENGTH_ZXID.unpack_from
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
    (stored_crc,) = CRC.unpack_from(data, _SEGMENT_HEAD.size)
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


def fsync_directory(directory: str) -> None:
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
    @ivar scans: with C{keep_records}, the scans of the checked segments kept, in
        order (see L{records_after}); else empty.
    """

    directory: str
    segments: list[tuple[int, str]]
    last_zxid: int | None
    repairs: list[str] = field(default_factory=list)
    scans: list[SegmentScan] = field(default_factory=list)

    def records_after(self, zxid: int) -> Iterator[LogRecord]:
        """
        Every valid record with a zxid greater than C{zxid}, in order: from the
        records L{open_log} read while checking (C{keep_records}), so a recovery reads
        the log once, or else from the files (L{read_records}) when they were not kept
        or do not reach back to C{zxid}.
        """
        # The first kept scan starts at or before zxid + 1: the segments before it
        # (unchecked, or none) hold nothing after zxid.
        if not (self.scans and self.scans[0].first_zxid <= zxid + 1):
            yield from read_records(self.directory, zxid)
            return
        for scan in self.scans:
            for record in scan.records:
                if record.zxid > zxid:
                    yield record


def open_log(
    directory: str, repair: bool = True, after_zxid: int | None = None, keep_records: bool = False
) -> OpenedLog:
    """
    Check the segments of the log in C{directory} and cut a torn tail.

    A damaged record is a torn tail only when it is in the last segment holding any
    record and no valid record follows it; then the segment is truncated there (with a
    warning).  A last segment whose header is torn and that holds no valid record (a
    crash while rolling) is removed.  Any other damage raises L{CorruptLogError}.

    @param repair: cut torn tails on disk; with C{False} only report them.
    @param after_zxid: check only the segments that may hold a record after this
        zxid (L{segments_needed_after}): what a recovery from a snapshot of it
        replays.  The earlier segments are kept unread, as ZooKeeper reads only the
        log after its snapshot; should an older snapshot be needed after all,
        L{read_records} checks every record it reads.  L{None} checks them all.
    @param keep_records: keep what was read for L{OpenedLog.records_after} (every
        record of the checked segments stays in memory until the result is dropped).
    @raise CorruptLogError: for damage in the middle of the checked segments.
    """
    segments = list_segments(directory)
    checked = segments if after_zxid is None else segments_needed_after(segments, after_zxid)
    kept: list[tuple[int, str]] = segments[: len(segments) - len(checked)]
    repairs: list[str] = []
    scans: list[SegmentScan] = []
    last_zxid: int | None = None
    for index, (first_zxid, path) in enumerate(checked):
        is_last = index == len(checked) - 1
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
                    fsync_directory(directory)
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
                fsync_directory(directory)
            log.info("write-ahead log: {note}", note=note)
            repairs.append(note)
            continue
        if scan.last_zxid is not None:
            last_zxid = scan.last_zxid
        kept.append((first_zxid, path))
        if keep_records:
            scans.append(scan)
    return OpenedLog(directory, kept, last_zxid, repairs, scans)


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
