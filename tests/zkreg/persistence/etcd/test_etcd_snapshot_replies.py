"""
Exactly-once across an etcd snapshot: the replies of stamped writes the snapshot
covers come back in a reader that loads it (the etcd snapshot is the file format,
which carries the reply cache), so a resubmission after a failover to a standby that
loaded the snapshot is still recognised.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.support.etcd import ModuleEtcd
from zkreg.data import codes
from zkreg.data.messages import WriteStamp
from zkreg.data.txncodec import encode_stamped_txn
from zkreg.persistence.etcd.client import EtcdClient
from zkreg.persistence.etcd.election import campaign
from zkreg.persistence.etcd.layout import Layout
from zkreg.persistence.etcd.log import EtcdLog
from zkreg.persistence.etcd.reader import LogReader
from zkreg.persistence.etcd.snapshots import save_snapshot
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateTxn, TxnHeader

ORIGIN = 0x5EED_0000_0002
SESSION = 0x1234

_etcd = ModuleEtcd()
setUpModule = _etcd.start
tearDownModule = _etcd.stop


def stamped_create(zxid: int, path: str) -> bytes:
    """A create txn logged with the stamp of write number C{zxid} (none acknowledged)."""
    hdr = TxnHeader(SESSION, zxid, zxid, 1_700_000_000_000, codes.OP_CREATE)
    txn = CreateTxn(path, b"", list(OPEN_ACL_UNSAFE), False, 1)
    return encode_stamped_txn(hdr, txn, WriteStamp(ORIGIN, zxid), codes.OP_CREATE)


def items(replies) -> list:
    return sorted(((s, stamp.origin, stamp.seq), out) for s, stamp, out in replies.items())


class EtcdSnapshotRepliesTests(unittest.TestCase):
    timeout = 60

    async def test_snapshot_keeps_the_replies(self) -> None:
        client = EtcdClient(_etcd.endpoints)
        self.addCleanup(client.close)
        layout = Layout(f"/dedup-snap-{id(self)}")
        leadership = await campaign(client, layout, b"a", 2)
        assert leadership is not None
        log = EtcdLog(client, layout, leadership.token, 0, 0)
        for zxid in range(1, 11):
            await log.append(zxid, stamped_create(zxid, f"/n{zxid}"))
        writer = LogReader(client, layout)
        await writer.load()
        self.assertEqual(len(writer.replies), 10)
        await save_snapshot(
            client, layout, writer.tree, log.durable_seq, leadership.token, writer.replies
        )
        # The log the snapshot covers is gone: only the snapshot has the replies now.
        kvs, _, _ = await client.get_prefix(layout.log)
        self.assertEqual(kvs, [])
        fresh = LogReader(client, layout)
        await fresh.load()
        self.assertEqual(fresh.tree.digest(), writer.tree.digest())
        self.assertEqual(items(fresh.replies), items(writer.replies))
        await leadership.resign()
