"""
The data tier's log on etcd (DESIGN.md, "The data tier on etcd"): a second provider
of L{zkreg.interfaces.IDurableLog} beside the file WAL, for standby data servers.

  - L{client}: the etcd v3 calls over the JSON gateway with treq;
  - L{layout}: the keys under the prefix and the encoding of a log slot;
  - L{election}: leadership on a lease, the fencing token and the epoch bump;
  - L{log}: fenced, group-committed appends (L{log.EtcdLog});
  - L{reader}: rebuilding and following the tree (a standby's warm tree);
  - L{snapshots}: tree snapshots in chunks under a manifest, log deletion and
    compaction.
"""
