"""
The file write-ahead log: records round-trip, group commit shares one sync, a failed
write fails every unacknowledged append, a torn tail is cut and damage in the middle
is refused with the file and offset.
"""

from __future__ import annotations

import errno
import os
import threading

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.support.waiting import reactor_wait_until
from zkreg.interfaces import IDurableLog
from zkreg.persistence import wal as walmod
from zkreg.persistence.segment_writer import SegmentWriter
from zkreg.persistence.segments import (
    FORMAT_VERSION,
    RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
    CorruptLogError,
    encode_record,
    encode_segment_header,
    list_segments,
    open_log,
    read_records,
    scan_segment,
    segment_name,
    segments_needed_after,
)
from zkreg.persistence.wal import FileWriteAheadLog, LogFailedError

try:
    from durability_workload import scratch_directory
except ImportError:  # tests/zkreg/persistence made a package
    from .durability_workload import scratch_directory


def payload(zxid: int, size: int = 40) -> bytes:
    """A recognisable payload for C{zxid}."""
    stem = f"txn-{zxid:x}-".encode()
    return (stem * (size // len(stem) + 1))[:size]


class WalTestCase(unittest.TestCase):
    """Opens logs in a fresh directory and closes them after each test."""

    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)
        self.logs: list[FileWriteAheadLog] = []

    def tearDown(self) -> defer.Deferred:
        return defer.gatherResults([wal.close() for wal in self.logs])

    def open_wal(self, **options: object) -> FileWriteAheadLog:
        options.setdefault("segment_bytes", 1 << 20)
        wal = FileWriteAheadLog.open(self.directory, **options)  # type: ignore[arg-type]
        self.logs.append(wal)
        return wal

    @defer.inlineCallbacks
    def write(self, zxids: range, size: int = 40, **options: object):
        wal = self.open_wal(**options)
        results = yield defer.gatherResults([wal.append(z, payload(z, size)) for z in zxids])
        yield wal.close()
        return wal, results


class RoundTripTests(WalTestCase):
    def test_provides_interface(self) -> None:
        """The file log is an IDurableLog provider."""
        self.assertTrue(verifyObject(IDurableLog, self.open_wal()))

    @defer.inlineCallbacks
    def test_append_then_replay(self):
        """Every appended record comes back from a reopened log, in order, exactly."""
        _, results = yield self.write(range(1, 21))
        self.assertEqual(results, list(range(1, 21)))
        reopened = self.open_wal()
        self.assertEqual(reopened.last_zxid, 20)
        self.assertEqual(list(reopened.replay(0)), [(z, payload(z)) for z in range(1, 21)])
        self.assertEqual([z for z, _ in reopened.replay(15)], [16, 17, 18, 19, 20])
        self.assertEqual(reopened.repairs, [])

    @defer.inlineCallbacks
    def test_appends_after_reopen_go_to_new_segment(self):
        """A reopened log appends to a new segment and replay spans both."""
        yield self.write(range(1, 6))
        wal = self.open_wal()
        yield wal.append(6, payload(6))
        self.assertEqual([z for z, _ in list_segments(self.directory)], [1, 6])
        self.assertEqual([z for z, _ in wal.replay(0)], [1, 2, 3, 4, 5, 6])

    def test_zxid_must_increase(self) -> None:
        """Appending a zxid not above the last one is a programming error."""
        wal = self.open_wal()
        wal.append(5, b"x")
        self.assertRaises(ValueError, wal.append, 5, b"y")
        self.assertRaises(ValueError, wal.append, 4, b"y")
        return wal.flush()

    @defer.inlineCallbacks
    def test_record_layout(self):
        """A segment is the header, then length/zxid/CRC headed records, then zeros."""
        yield self.write(range(7, 9), size=10)
        ((first_zxid, path),) = list_segments(self.directory)
        self.assertEqual((first_zxid, os.path.basename(path)), (7, segment_name(7)))
        with open(path, "rb") as segment_file:
            data = segment_file.read()
        self.assertEqual(data[:8], b"ZKRGWAL\x00")
        first = encode_record(7, payload(7, 10))
        self.assertEqual(data[SEGMENT_HEADER_BYTES : SEGMENT_HEADER_BYTES + len(first)], first)
        self.assertEqual(len(first), RECORD_HEADER_BYTES + 10)
        end = SEGMENT_HEADER_BYTES + 2 * len(first)
        self.assertEqual(data[end:], bytes(len(data) - end))


class GroupCommitTests(WalTestCase):
    @defer.inlineCallbacks
    def test_one_turn_one_sync(self):
        """Appends made in one reactor turn are written and synced together, once."""
        wal = self.open_wal()
        fired: list[int] = []
        appends = [wal.append(z, payload(z)).addCallback(fired.append) for z in range(1, 201)]
        self.assertEqual(fired, [], "nothing is acknowledged before the sync")
        yield defer.gatherResults(appends)
        self.assertEqual(fired, list(range(1, 201)), "acknowledged in zxid order")
        self.assertEqual((wal.batches, wal.syncs, wal.records_written), (1, 1, 200))

    @defer.inlineCallbacks
    def test_appends_during_sync_share_next_sync(self):
        """Records queued while a sync is in flight all go in the next single batch."""
        wal = self.open_wal()
        entered, release = threading.Event(), threading.Event()
        real_write = wal._writer.write_batch

        def slow_write(batch, roll_first):
            entered.set()
            release.wait(10)
            return real_write(batch, roll_first)

        wal._writer.write_batch = slow_write
        first = wal.append(1, payload(1))
        yield reactor_wait_until(entered.is_set)
        later = [wal.append(z, payload(z)) for z in range(2, 52)]
        release.set()
        yield defer.gatherResults([first, *later])
        self.assertEqual((wal.batches, wal.syncs), (2, 2))

    @defer.inlineCallbacks
    def test_sync_off(self):
        """With sync off (unsafe) records are written but never synced."""
        wal, _ = yield self.write(range(1, 11), sync=False)
        self.assertEqual(wal.syncs, 0)
        self.assertEqual(open_log(self.directory).last_zxid, 10)

    @defer.inlineCallbacks
    def test_sync_runs_off_the_reactor_thread(self):
        """fdatasync is called on the writer thread, never the reactor's."""
        wal = self.open_wal()
        threads_seen: list[threading.Thread] = []
        real_sync = wal._writer._sync

        def recording_sync():
            threads_seen.append(threading.current_thread())
            real_sync()

        wal._writer._sync = recording_sync
        yield wal.append(1, b"one")
        self.assertEqual(len(threads_seen), 1)
        self.assertIsNot(threads_seen[0], threading.main_thread())


class FailureTests(WalTestCase):
    @defer.inlineCallbacks
    def test_failed_sync_fails_batch_pending_and_later(self):
        """A failed sync fails its batch, the queued appends and every later append."""
        wal = self.open_wal()
        yield wal.append(1, b"ok")

        def broken_sync():
            raise OSError(errno.EIO, "Input/output error")

        wal._writer._sync = broken_sync
        batch = [wal.append(z, b"lost") for z in range(2, 5)]
        for append in batch:
            failure = yield self.assertFailure(append, LogFailedError)
            self.assertIn("Input/output error", str(failure))
        later = wal.append(9, b"later")
        yield self.assertFailure(later, LogFailedError)
        self.assertIsNotNone(wal.failure)
        self.flushLoggedErrors(OSError)

    @defer.inlineCallbacks
    def test_disk_full(self):
        """A write failing with ENOSPC is reported as a log failure, not acknowledged."""
        wal = self.open_wal()

        def full(batch, roll_first):
            raise OSError(errno.ENOSPC, "No space left on device")

        wal._writer.write_batch = full
        failure = yield self.assertFailure(wal.append(1, b"x"), LogFailedError)
        self.assertIn("No space left", str(failure))
        self.flushLoggedErrors(OSError)


class RecoveryTests(WalTestCase):
    """A failed log recovers by itself once the disk works again (issue #7/#8)."""

    def setUp(self) -> None:
        super().setUp()
        self.patch(walmod, "RECOVERY_RETRY_S", 0.01)

    def recovered(self, wal: FileWriteAheadLog) -> defer.Deferred:
        done: defer.Deferred = defer.Deferred()
        wal.add_recovery_listener(lambda: done.called or done.callback(None))
        return done

    @defer.inlineCallbacks
    def test_failed_sync_is_cut_and_appends_go_on_after_the_last_durable(self):
        """
        The bytes of a batch whose sync failed are cut from the segment; once syncs
        work again the log takes appends after the last durable zxid, in a new
        segment, and a restart reads exactly the acknowledged records.
        """
        wal = self.open_wal()
        yield defer.gatherResults([wal.append(z, payload(z)) for z in (1, 2)])
        recovered = self.recovered(wal)
        real_sync = wal._writer._sync
        failures = [2]  # the batch, then the first recovery attempt's new segment

        def flaky_sync():
            raise OSError(errno.EIO, "Input/output error")

        wal._writer._sync = flaky_sync
        yield self.assertFailure(wal.append(3, payload(3)), LogFailedError)
        self.assertIsNotNone(wal.failure)
        real_open = wal._writer._open_segment

        def refusing_open(first_zxid):
            if failures[0]:
                failures[0] -= 1
                raise OSError(errno.EMFILE, "Too many open files")
            return real_open(first_zxid)

        wal._writer._sync = real_sync
        wal._writer._open_segment = refusing_open
        yield recovered
        self.assertIsNone(wal.failure)
        self.assertEqual(wal.recoveries, 1)
        yield wal.append(3, payload(3, 60))
        yield wal.append(4, payload(4))
        yield wal.close()
        opened = open_log(self.directory, repair=False)
        self.assertEqual(opened.last_zxid, 4)
        records = [(r.zxid, r.payload) for r in read_records(self.directory)]
        self.assertEqual(
            records, [(1, payload(1)), (2, payload(2)), (3, payload(3, 60)), (4, payload(4))]
        )
        self.flushLoggedErrors(OSError)

    @defer.inlineCallbacks
    def test_segment_that_could_not_be_made_leaves_nothing_behind(self):
        """ENOSPC while preallocating a new segment: no file is left, and the retry
        makes it."""
        wal = self.open_wal(prealloc_bytes=64 * 1024)
        recovered = self.recovered(wal)
        real_fallocate = os.posix_fallocate
        calls = [0]

        def full(fd, offset, length):
            calls[0] += 1
            if calls[0] == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fallocate(fd, offset, length)

        self.patch(os, "posix_fallocate", full)
        yield self.assertFailure(wal.append(1, b"x"), LogFailedError)
        yield recovered
        self.assertEqual(len(list_segments(self.directory)), 1)
        yield wal.append(1, b"y")
        yield wal.close()
        self.assertEqual([r.payload for r in read_records(self.directory)], [b"y"])
        self.flushLoggedErrors(OSError)

    def test_preallocation_adapts_to_free_space(self):
        """With no size configured a segment takes a quarter of the free space, at
        most segment_bytes, at least 64 KiB."""
        writer = SegmentWriter(self.directory, 64 << 20, sync=False)
        stats = os.statvfs(self.directory)
        free = stats.f_bavail * stats.f_frsize
        prealloc, limit = writer._segment_size()
        self.assertEqual(prealloc, limit)
        self.assertLessEqual(prealloc, min(64 << 20, max(64 * 1024, free // 4)))
        self.assertGreaterEqual(prealloc, 64 * 1024)
        self.assertEqual(
            SegmentWriter(self.directory, 1 << 20, False, 0)._segment_size(),
            (0, 1 << 20),
        )


class SegmentTests(WalTestCase):
    @defer.inlineCallbacks
    def test_preallocated(self):
        """A new segment is preallocated to the segment size at once."""
        wal = self.open_wal(segment_bytes=256 * 1024)
        yield wal.append(1, b"x")
        ((_, path),) = list_segments(self.directory)
        self.assertEqual(os.path.getsize(path), 256 * 1024)

    @defer.inlineCallbacks
    def test_roll_at_size(self):
        """Records that would overflow a segment start a new one named by its zxid."""
        wal = self.open_wal(segment_bytes=4096)
        # 1100-byte payloads (1116 with the header): three fit in a 4096-byte segment.
        for start in range(1, 31, 5):
            yield defer.gatherResults(
                [wal.append(z, payload(z, 1100)) for z in range(start, start + 5)]
            )
        firsts = [z for z, _ in list_segments(self.directory)]
        self.assertEqual(firsts, list(range(1, 31, 3)))
        self.assertEqual(list(wal.replay(0)), [(z, payload(z, 1100)) for z in range(1, 31)])

    @defer.inlineCallbacks
    def test_oversized_record_gets_own_segment(self):
        """A record larger than a segment is still written, alone in its segment."""
        wal = self.open_wal(segment_bytes=4096)
        yield wal.append(1, b"small")
        yield wal.append(2, payload(2, 10000))
        yield wal.append(3, b"after")
        self.assertEqual([z for z, _ in list_segments(self.directory)], [1, 2, 3])
        self.assertEqual([z for z, _ in wal.replay(0)], [1, 2, 3])

    @defer.inlineCallbacks
    def test_roll_on_request(self):
        """roll() makes the next append start a new segment."""
        wal = self.open_wal()
        yield wal.append(1, b"a")
        yield wal.append(2, b"b")
        wal.roll()
        yield wal.append(3, b"c")
        self.assertEqual([z for z, _ in list_segments(self.directory)], [1, 3])

    @defer.inlineCallbacks
    def test_purge_keeps_what_replay_needs(self):
        """Purging before a snapshot zxid keeps the segment holding the next zxid."""
        wal = self.open_wal()
        for zxids in ([1, 2, 3], [4, 5, 6], [7, 8]):
            wal.roll()
            yield defer.gatherResults([wal.append(z, b"p") for z in zxids])
        removed = yield wal.purge_before(4)
        self.assertEqual([os.path.basename(p) for p in removed], [segment_name(1)])
        self.assertEqual([z for z, _ in wal.replay(4)], [5, 6, 7, 8])
        removed = yield wal.purge_before(8)
        self.assertEqual([os.path.basename(p) for p in removed], [segment_name(4)])
        self.assertEqual([z for z, _ in list_segments(self.directory)], [7])

    def test_segments_needed_after(self) -> None:
        """A segment is needed unless the next one starts at or before zxid + 1."""
        segments = [(1, "a"), (10, "b"), (20, "c")]
        self.assertEqual(segments_needed_after(segments, 0), segments)
        self.assertEqual(segments_needed_after(segments, 8), segments)
        self.assertEqual(segments_needed_after(segments, 9), segments[1:])
        self.assertEqual(segments_needed_after(segments, 25), segments[2:])


class DamageTests(WalTestCase):
    @defer.inlineCallbacks
    def written(self, count: int = 10, **options: object):
        yield self.write(range(1, count + 1), **options)
        (_, path), *_ = list_segments(self.directory)
        scan = scan_segment(path)
        return path, [record.offset for record in scan.records]

    @defer.inlineCallbacks
    def test_torn_tail_truncated_file(self):
        """A file cut inside its last record is a torn tail: cut with a warning."""
        path, offsets = yield self.written()
        os.truncate(path, offsets[-1] + RECORD_HEADER_BYTES + 7)
        warnings: list[dict] = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(warnings.append)
        self.addCleanup(globalLogPublisher.removeObserver, warnings.append)
        wal = self.open_wal()
        self.assertEqual(wal.last_zxid, 9)
        self.assertEqual(os.path.getsize(path), offsets[-1])
        self.assertEqual(len(wal.repairs), 1)
        self.assertIn(f"at offset {offsets[-1]}", wal.repairs[0])
        self.assertTrue(any(e.get("log_level").name == "warn" for e in warnings if "note" in e))
        yield wal.append(10, b"again")
        self.assertEqual([z for z, _ in wal.replay(0)], list(range(1, 11)))

    @defer.inlineCallbacks
    def test_torn_tail_in_preallocated_area(self):
        """A half-written last record followed by the preallocated zeros is cut."""
        path, offsets = yield self.written()
        with open(path, "r+b") as segment_file:
            segment_file.seek(offsets[-1] + RECORD_HEADER_BYTES + 5)
            segment_file.write(bytes(100))
        opened = open_log(self.directory)
        self.assertEqual(opened.last_zxid, 9)
        self.assertEqual(os.path.getsize(path), offsets[-1])

    @defer.inlineCallbacks
    def test_torn_header_only(self):
        """A partial record header at the end is cut too."""
        path, offsets = yield self.written()
        os.truncate(path, offsets[-1] + 3)
        self.assertEqual(open_log(self.directory).last_zxid, 9)

    @defer.inlineCallbacks
    def test_corrupt_middle_refused(self):
        """A bad checksum with valid records after it names the file and offset."""
        path, offsets = yield self.written()
        with open(path, "r+b") as segment_file:
            segment_file.seek(offsets[3] + RECORD_HEADER_BYTES + 2)
            segment_file.write(b"\xff")
        size_before = os.path.getsize(path)
        error = self.assertRaises(CorruptLogError, FileWriteAheadLog.open, self.directory)
        self.assertEqual((error.path, error.offset), (path, offsets[3]))
        message = str(error)
        self.assertIn(path, message)
        self.assertIn(f"offset {offsets[3]}", message)
        self.assertIn("checksum mismatch", message)
        self.assertIn("zkreg log verify", message)
        self.assertEqual(os.path.getsize(path), size_before, "nothing was cut")

    @defer.inlineCallbacks
    def test_corrupt_length_in_middle_refused(self):
        """A length field damaged into running past the end is not taken as a torn tail."""
        path, offsets = yield self.written()
        with open(path, "r+b") as segment_file:
            segment_file.seek(offsets[2])
            segment_file.write(b"\x7f")
        error = self.assertRaises(CorruptLogError, open_log, self.directory)
        self.assertEqual(error.offset, offsets[2])

    @defer.inlineCallbacks
    def test_damaged_earlier_segment_refused(self):
        """Any damage in a segment that is not the last is refused, even at its end."""
        wal = self.open_wal()
        yield wal.append(1, b"one")
        yield wal.append(2, b"two")
        wal.roll()
        yield wal.append(3, b"three")
        yield wal.close()
        first = os.path.join(self.directory, segment_name(1))
        offsets = [r.offset for r in scan_segment(first).records]
        os.truncate(first, offsets[-1] + 5)
        error = self.assertRaises(CorruptLogError, open_log, self.directory)
        self.assertEqual((error.path, error.offset), (first, offsets[-1]))

    @defer.inlineCallbacks
    def test_torn_new_segment_header_removed(self):
        """A last segment with a partial header and no records (crash in a roll) goes."""
        yield self.write(range(1, 4))
        torn = os.path.join(self.directory, segment_name(4))
        with open(torn, "wb") as torn_file:
            torn_file.write(b"ZKRGW")
        opened = open_log(self.directory)
        self.assertEqual(opened.last_zxid, 3)
        self.assertFalse(os.path.exists(torn))

    @defer.inlineCallbacks
    def test_empty_last_segment_removed(self):
        """
        A last segment with a header and no record (a crash right after a roll) is
        removed, so its zxid can be appended again.
        """
        yield self.write(range(1, 4))
        with open(os.path.join(self.directory, segment_name(4)), "wb") as empty:
            empty.write(encode_segment_header(4) + bytes(1000))
        wal = self.open_wal()
        self.assertEqual(wal.last_zxid, 3)
        yield wal.append(4, b"four")
        self.assertEqual([z for z, _ in wal.replay(0)], [1, 2, 3, 4])

    @defer.inlineCallbacks
    def test_verify_only_does_not_cut(self):
        """open_log(repair=False) reports a torn tail without touching the file."""
        path, offsets = yield self.written()
        os.truncate(path, offsets[-1] + 20)
        opened = open_log(self.directory, repair=False)
        self.assertEqual(opened.last_zxid, 9)
        self.assertEqual(os.path.getsize(path), offsets[-1] + 20)


assert FORMAT_VERSION == 1


class DamagePropertyTests(unittest.TestCase):
    """Whatever the damage, recovery returns an exact prefix of the log or refuses."""

    def test_any_damage_gives_prefix_or_refusal(self) -> None:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        records = [(z, payload(z, 10 + (z * 7) % 90)) for z in range(1, 31)]

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(
            cut=st.one_of(st.none(), st.integers(0, 4000)),
            flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 255)), max_size=3),
        )
        def check(cut, flips) -> None:
            directory = scratch_directory(self)
            os.makedirs(directory)
            writer = SegmentWriter(directory, 8192, sync=False)
            for zxid, data in records:
                writer.write_batch([(zxid, encode_record(zxid, data))], False)
            writer.close_segment()
            (_, path), *_ = list_segments(directory)
            with open(path, "r+b") as segment_file:
                size = os.path.getsize(path)
                for offset, xor in flips:
                    if offset < size:
                        segment_file.seek(offset)
                        (old,) = segment_file.read(1)
                        segment_file.seek(offset)
                        segment_file.write(bytes([old ^ xor]))
            if cut is not None:
                os.truncate(path, min(cut, os.path.getsize(path)))
            try:
                opened = open_log(directory)
            except CorruptLogError as error:
                self.assertEqual(error.path, path)
                return
            replayed = [(r.zxid, r.payload) for r in read_records(directory)]
            self.assertEqual(replayed, records[: len(replayed)])
            self.assertEqual(opened.last_zxid, replayed[-1][0] if replayed else None)
            if cut is None and not flips:
                self.assertEqual(replayed, records)

        check()


class QuietAppendTests(WalTestCase):
    """append_quiet: no Deferred per record, one listener call per synced batch."""

    @defer.inlineCallbacks
    def test_listener_told_once_per_batch_after_sync(self):
        wal = self.open_wal()
        told: list[int] = []
        synced_before: list[int] = []
        wal.add_durable_listener(
            lambda zxid: (told.append(zxid), synced_before.append(wal.syncs)),
            lambda reason: self.fail(f"unexpected failure {reason}"),
        )
        for zxid in range(1, 101):
            wal.append_quiet(zxid, payload(zxid))
        self.assertEqual(told, [], "nothing is durable before the sync")
        yield wal.flush()
        self.assertEqual(told, [100])
        self.assertEqual(synced_before, [1])
        self.assertEqual(wal.durable_zxid, 100)
        # Mixed with Deferred appends, in one batch.
        wal.append_quiet(101, b"q")
        last = wal.append(102, b"d")
        self.assertEqual((yield last), 102)
        # The listener is told after the batch's Deferreds have fired.
        yield reactor_wait_until(lambda: len(told) == 2)
        self.assertEqual(told, [100, 102])
        self.assertEqual([z for z, _ in wal.replay(0)], list(range(1, 103)))

    def test_refuses_out_of_order_and_empty(self):
        wal = self.open_wal()
        wal.append_quiet(5, b"x")
        self.assertRaises(ValueError, wal.append_quiet, 5, b"y")
        self.assertRaises(ValueError, wal.append_quiet, 6, b"")
        return wal.flush()

    @defer.inlineCallbacks
    def test_failure_reported_to_listener_and_later_appends_raise(self):
        wal = self.open_wal()
        durable: list[int] = []
        failures: list = []
        wal.add_durable_listener(durable.append, failures.append)
        wal.append_quiet(1, b"ok")
        yield wal.flush()

        def broken_sync():
            raise OSError(errno.EIO, "Input/output error")

        wal._writer._sync = broken_sync
        wal.append_quiet(2, b"lost")
        yield self.assertFailure(wal.flush(), LogFailedError)
        self.assertEqual(durable, [1], "the failed batch is never reported durable")
        self.assertEqual(len(failures), 1)
        self.assertTrue(failures[0].check(LogFailedError))
        self.assertRaises(LogFailedError, wal.append_quiet, 3, b"later")
        self.flushLoggedErrors(OSError)

    @defer.inlineCallbacks
    def test_next_batch_starts_before_acknowledgements(self):
        """Records queued during a sync are handed to the writer before the acks fire."""
        wal = self.open_wal()
        entered, release = threading.Event(), threading.Event()
        real_write = wal._writer.write_batch
        calls: list[int] = []

        def slow_write(batch, roll_first):
            calls.append(len(batch))
            if len(calls) == 1:
                entered.set()
                release.wait(10)
            return real_write(batch, roll_first)

        wal._writer.write_batch = slow_write
        in_flight_at_ack: list[bool] = []
        first = wal.append(1, payload(1))
        first.addCallback(lambda _: in_flight_at_ack.append(wal._in_flight is not None))
        yield reactor_wait_until(entered.is_set)
        later = [wal.append(z, payload(z)) for z in range(2, 12)]
        release.set()
        yield defer.gatherResults([first, *later])
        self.assertEqual(in_flight_at_ack, [True])
        self.assertEqual(calls, [1, 10])
