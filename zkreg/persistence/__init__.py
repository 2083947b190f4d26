"""
The durable log and what it is rebuilt from: the file write-ahead log (L{wal}; its
segment format, reading and repair in L{segments}, its writer thread in
L{segment_writer}), tree snapshots (L{snapshot}), recovery at start (L{recovery}), the
durable state that ties them to a data server (L{durable}), the in-memory logs for tests
and benches (L{memlog}), and the readable dump of log records (L{txnlog}).

It is its own package so that a second provider of L{zkreg.interfaces.IDurableLog}
(etcd, for standby data servers) can sit beside the file one without touching the data
tier.  It uses L{zkreg.data} for the tree and the txn codec; the data tier sees a log
only through L{zkreg.interfaces.IDurableLog} (and L{memlog.MemoryLog} as its default).
"""
