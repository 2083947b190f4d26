"""
L{DurabilityFeed}: every kind of log reports durability through the same listener.
"""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.trial import unittest

from zkreg.persistence.durability import DurabilityFeed
from zkreg.persistence.memlog import ManualLog, MemoryLog


class DurabilityFeedTests(unittest.TestCase):
    def feed(self, log):
        durable: list[int] = []
        failed: list[Failure] = []
        return DurabilityFeed(log, durable.append, failed.append), durable, failed

    def test_memory_log_is_durable_on_return(self):
        feed, durable, failed = self.feed(MemoryLog())
        feed.append(1, b"a")
        feed.append(2, b"b")
        self.assertEqual((durable, failed), ([1, 2], []))

    def test_deferred_acks_report_only_the_acknowledged_prefix(self):
        log = ManualLog()
        feed, durable, failed = self.feed(log)
        for zxid in (1, 2, 3, 4):
            feed.append(zxid, b"x")
        # 3 and 4 acknowledged first: 1 and 2 are not, so nothing is durable yet.
        for _, acknowledged in reversed(log.waiting[2:]):
            acknowledged.callback(None)
        log.waiting = log.waiting[:2]
        self.assertEqual(durable, [])
        log.flush(count=1)
        self.assertEqual(durable, [1])
        log.flush()
        self.assertEqual(durable, [1, 4])
        self.assertEqual(failed, [])

    def test_a_failed_append_is_reported_once(self):
        log = ManualLog()
        feed, durable, failed = self.feed(log)
        feed.append(1, b"a")
        feed.append(2, b"b")
        log.fail(OSError("disk full"))
        log.fail(OSError("again"))
        self.assertEqual(durable, [])
        self.assertEqual(len(failed), 1)
        self.assertTrue(failed[0].check(OSError))

    def test_which_logs_may_report_during_append(self):
        """
        Sessions submit writes past their waiting reads only when no append reports
        durability before it returns (see L{zkreg.session.pipeline}).
        """

        class EtcdLike(ManualLog):
            acknowledges_later = True

        class Quiet:
            def append_quiet(self, zxid, record):
                pass

            def add_durable_listener(self, on_durable, on_failed):
                pass

        self.assertTrue(self.feed(MemoryLog())[0].reports_during_append)
        self.assertTrue(self.feed(ManualLog())[0].reports_during_append)
        self.assertFalse(self.feed(EtcdLike())[0].reports_during_append)
        self.assertFalse(self.feed(Quiet())[0].reports_during_append)

    def test_a_closed_log_raises_on_append(self):
        log = MemoryLog()
        feed, durable, failed = self.feed(log)
        log.close()
        self.assertRaises(RuntimeError, feed.append, 1, b"a")
