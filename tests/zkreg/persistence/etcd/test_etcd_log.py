"""
The etcd log against a real one-member etcd: election with the epoch bump, fenced
group-committed appends (a deposed leader cannot append), standbys rebuilding and
following the log, snapshots with log deletion, compaction and the reload of a
standby whose watch revision was compacted.
"""

from __future__ import annotations

import itertools

from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.support.etcd import ModuleEtcd
from zkreg.data.txncodec import encode_txn
from zkreg.interfaces import IDurableLog
from zkreg.persistence.etcd.client import EtcdClient
from zkreg.persistence.etcd.election import campaign
from zkreg.persistence.etcd.layout import GroupDecoder, Layout, encode_group, split_slots
from zkreg.persistence.etcd.log import EtcdLog, Fenced
from zkreg.persistence.etcd.reader import LogReader
from zkreg.persistence.etcd.snapshots import save_snapshot
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateTxn, TxnHeader

_prefixes = itertools.count()
_etcd = ModuleEtcd()
setUpModule = _etcd.start
tearDownModule = _etcd.stop


def create_record(zxid: int, path: str, data: bytes = b"") -> bytes:
    """A serialized create txn, as the sequencer logs it."""
    hdr = TxnHeader(0x1234, zxid & 0xFFFF, zxid, 1_700_000_000_000, 1)
    return encode_txn(hdr, CreateTxn(path, data, list(OPEN_ACL_UNSAFE), False, 1))


async def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll C{predicate} on the reactor until true or the deadline."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        await task.deferLater(reactor, 0.05, lambda: None)


class LayoutTests(unittest.SynchronousTestCase):
    def test_group_round_trip_across_slots(self) -> None:
        """A group bigger than a slot spans several and comes back whole."""
        records = [(1, b"a" * 700_000), (2, b"b" * 700_000), (3, b"")]
        slots = split_slots(7, encode_group(records))
        self.assertEqual(len(slots), 2)
        decoder = GroupDecoder()
        self.assertEqual(decoder.feed(slots[0]), [])
        self.assertEqual(decoder.feed(slots[1]), records)

    def test_unfinished_group_of_a_deposed_leader_is_dropped(self) -> None:
        """Slots of another token after an unfinished group drop it."""
        old = split_slots(7, encode_group([(1, b"x" * 1_500_000)]))
        new = split_slots(9, encode_group([(1, b"y")]))
        decoder = GroupDecoder()
        self.assertEqual(decoder.feed(old[0]), [])
        self.assertEqual(decoder.feed(new[0]), [(1, b"y")])


class EtcdLogTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.layout = Layout(f"/test{next(_prefixes)}-{id(self)}")
        self.client = EtcdClient(_etcd.endpoints)
        self.addCleanup(self.client.close)

    async def lead(self, identity: bytes = b"a"):
        leadership = await campaign(self.client, self.layout, identity, 2)
        self.assertIsNotNone(leadership)
        return leadership

    async def test_election_bumps_epoch_once_per_leader(self) -> None:
        """The first leader writes epoch 1; a second candidate loses; the next leader 2."""
        first = await self.lead()
        self.assertEqual(first.epoch, 1)
        self.assertIsNone(await campaign(self.client, self.layout, b"b", 2))
        await first.resign()
        second = await self.lead(b"b")
        self.assertEqual(second.epoch, 2)
        self.assertGreater(second.token, first.token)
        await second.resign()

    async def test_append_group_commits_and_replays(self) -> None:
        """Many appends share few etcd txns; a reader gets every record in order."""
        leadership = await self.lead()
        log = EtcdLog(self.client, self.layout, leadership.token, 0, 0)
        verifyObject(IDurableLog, log)
        records = [(zxid, create_record(zxid, f"/n{zxid}")) for zxid in range(1, 201)]
        await defer.gatherResults([log.append(zxid, record) for zxid, record in records])
        self.assertLess(log.appends, 50)
        self.assertEqual(log.durable_zxid, 200)
        reader = LogReader(self.client, self.layout)
        await reader.load()
        self.assertEqual(reader.tree.last_zxid, 200)
        self.assertIsNotNone(reader.tree.get("/n200"))
        await leadership.resign()

    async def test_deposed_leader_cannot_append(self) -> None:
        """After another server took leadership, the old token's append fails atomically."""
        old = await self.lead()
        old_log = EtcdLog(self.client, self.layout, old.token, 0, 0)
        await old_log.append(1, create_record(1, "/a"))
        # The old leader's lease is revoked (as if it expired while paused).
        await self.client.revoke(old.lease)
        new = await self.lead(b"b")
        new_log = EtcdLog(self.client, self.layout, new.token, 1, 1)
        with self.assertRaises(Fenced):
            await old_log.append(2, create_record(2, "/stale"))
        await new_log.append(new.epoch << 32 | 1, create_record(new.epoch << 32 | 1, "/b"))
        reader = LogReader(self.client, self.layout)
        await reader.load()
        self.assertIsNone(reader.tree.get("/stale"))
        self.assertIsNotNone(reader.tree.get("/b"))
        # A later append of the deposed log fails at once.
        with self.assertRaises(Fenced):
            await old_log.append(3, create_record(3, "/later"))
        await new.resign()

    async def test_lease_loss_is_noticed(self) -> None:
        """A leader whose lease is revoked behind its back hears it at the next renewal."""
        leadership = await self.lead()
        lost: list[str] = []
        leadership.start(lost.append)
        await self.client.revoke(leadership.lease)
        await wait_for(lambda: lost)
        self.assertTrue(leadership.lost)

    async def test_standby_follows_and_reloads_after_compaction(self) -> None:
        """A standby follows the log by watch; after a snapshot compacted its revision
        away it reloads the snapshot and still has every record."""
        leadership = await self.lead()
        log = EtcdLog(self.client, self.layout, leadership.token, 0, 0)
        await log.append(1, create_record(1, "/one"))
        standby = LogReader(self.client, self.layout)
        await standby.load()
        standby.follow()
        self.addCleanup(standby.stop)
        await log.append(2, create_record(2, "/two"))
        await wait_for(lambda: standby.tree.last_zxid == 2)
        # Pause the standby's watch, write past a snapshot, compact.
        standby.stop()
        writer = LogReader(self.client, self.layout)
        for zxid in range(3, 30):
            await log.append(zxid, create_record(zxid, f"/n{zxid}"))
        await writer.load()
        manifest = await save_snapshot(
            self.client, self.layout, writer.tree, log.durable_seq, leadership.token
        )
        self.assertEqual(manifest["zxid"], 29)
        kvs, _, _ = await self.client.get_prefix(self.layout.log)
        self.assertEqual(kvs, [])
        await log.append(30, create_record(30, "/thirty"))
        standby.follow()
        await wait_for(lambda: standby.tree.last_zxid == 30)
        self.assertEqual(standby.reloads, 1)
        self.assertIsNotNone(standby.tree.get("/n17"))
        # A fresh reader starts from the snapshot.
        fresh = LogReader(self.client, self.layout)
        await fresh.load()
        self.assertEqual(fresh.tree.digest(), standby.tree.digest())
        await leadership.resign()

    async def test_large_record_spans_slots(self) -> None:
        """A record above the slot size is written in several fenced txns."""
        leadership = await self.lead()
        log = EtcdLog(self.client, self.layout, leadership.token, 0, 0)
        big = create_record(1, "/big", b"z" * 1_200_000)
        await log.append(1, big)
        self.assertEqual(log.appends, 2)
        reader = LogReader(self.client, self.layout)
        await reader.load()
        self.assertEqual(len(reader.tree.get("/big").data), 1_200_000)
        await leadership.resign()
