"""
A deterministic stream of committed transactions for the durability tests: sessions,
persistent, ephemeral, container and TTL nodes, data changes, ACL changes, deletes,
successful and failed multis, and closed sessions.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

from zkreg.data import codes
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import encode_txn
from zkreg.proto.records import (
    ACL,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

OPEN_ACL = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
READ_ACL = [ACL(perms=1, id=Id(scheme="world", id="anyone"))]


def workload(count: int, seed: int = 7, start_zxid: int = 1) -> Iterator[tuple[TxnHeader, object]]:
    """
    Yield C{count} C{(header, txn)} pairs that apply cleanly in order to a fresh tree,
    zxids from C{start_zxid}.
    """
    rng = random.Random(seed)
    zxid = start_zxid
    live_sessions: list[int] = []
    paths: list[str] = []
    persistent: list[str] = ["/"]
    next_session = 0x100
    made = 0

    def header(session: int, txn_type: int) -> TxnHeader:
        return TxnHeader(
            clientId=session, cxid=made, zxid=zxid, time=1_700_000_000_000 + zxid, type=txn_type
        )

    while made < count:
        choice = rng.random()
        if not live_sessions or choice < 0.05:
            next_session += 1
            live_sessions.append(next_session)
            item = (
                header(next_session, codes.OP_CREATE_SESSION),
                CreateSessionTxn(timeOut=4000 + next_session),
            )
        elif choice < 0.08 and len(live_sessions) > 1:
            session = live_sessions.pop(rng.randrange(len(live_sessions)))
            item = (header(session, codes.OP_CLOSE_SESSION), CloseSessionTxn(paths2Delete=[]))
            # The tree removes the session's ephemerals; forget them here too.
            paths = [p for p in paths if not p.startswith(f"/e{session:x}")]
        elif choice < 0.55 or len(paths) < 3:
            parent = rng.choice(persistent)
            base = "" if parent == "/" else parent
            session = rng.choice(live_sessions)
            kind = rng.random()
            if kind < 0.15:
                path = f"/e{session:x}_{made}"
                txn = CreateTxn(
                    path=path, data=b"eph%d" % made, acl=OPEN_ACL, ephemeral=True, parentCVersion=-1
                )
                item = (header(session, codes.OP_CREATE2), txn)
                paths.append(path)
            elif kind < 0.2:
                path = f"{base}/c{made}"
                txn = CreateContainerTxn(path=path, data=b"", acl=OPEN_ACL, parentCVersion=-1)
                item = (header(session, codes.OP_CREATE_CONTAINER), txn)
                paths.append(path)
                persistent.append(path)
            elif kind < 0.25:
                path = f"{base}/t{made}"
                txn = CreateTTLTxn(
                    path=path, data=b"ttl", acl=OPEN_ACL, parentCVersion=-1, ttl=60000
                )
                item = (header(session, codes.OP_CREATE_TTL), txn)
                paths.append(path)
            else:
                path = f"{base}/n{made:06d}"
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
                txn = CreateTxn(
                    path=path, data=data, acl=OPEN_ACL, ephemeral=False, parentCVersion=-1
                )
                item = (header(session, codes.OP_CREATE), txn)
                paths.append(path)
                persistent.append(path)
        elif choice < 0.8:
            path = rng.choice(paths)
            txn = SetDataTxn(path=path, data=b"v%d" % made, version=made % 1000)
            item = (header(rng.choice(live_sessions), codes.OP_SET_DATA), txn)
        elif choice < 0.85:
            path = rng.choice(paths)
            txn = SetACLTxn(path=path, acl=READ_ACL if made % 2 else OPEN_ACL, version=made % 100)
            item = (header(rng.choice(live_sessions), codes.OP_SET_ACL), txn)
        elif choice < 0.92:
            leaves = [p for p in paths if p not in persistent or p == paths[-1]]
            if not leaves:
                continue
            path = leaves[-1]
            paths.remove(path)
            if path in persistent:
                persistent.remove(path)
            item = (header(rng.choice(live_sessions), codes.OP_DELETE), DeleteTxn(path=path))
        else:
            session = rng.choice(live_sessions)
            ops = [
                Txn(
                    type=codes.OP_CREATE,
                    data=CreateTxn(
                        path=f"/m{made}",
                        data=b"m",
                        acl=OPEN_ACL,
                        ephemeral=False,
                        parentCVersion=-1,
                    ).serialize(),
                ),
                Txn(
                    type=codes.OP_SET_DATA,
                    data=SetDataTxn(path=f"/m{made}", data=b"mm", version=1).serialize(),
                ),
            ]
            if rng.random() < 0.5:
                # A multi that failed: logged as error txns, applies nothing.
                ops = [
                    Txn(type=codes.OP_ERROR, data=ErrorTxn(err=0).serialize()),
                    Txn(type=codes.OP_ERROR, data=ErrorTxn(err=codes.NO_NODE).serialize()),
                ]
            else:
                paths.append(f"/m{made}")
                persistent.append(f"/m{made}")
            item = (header(session, codes.OP_MULTI), MultiTxn(txns=ops))
        yield item
        made += 1
        zxid += 1


def build_tree(count: int, seed: int = 7) -> tuple[DataTree, list[tuple[int, bytes]]]:
    """
    @return: the tree after C{count} workload txns, and the log records
        C{(zxid, encoded txn)} that built it.
    """
    tree = DataTree(extended_types=True)
    records = []
    for hdr, txn in workload(count, seed):
        tree.apply(hdr, txn)
        records.append((hdr.zxid, encode_txn(hdr, txn)))
    return tree, records


def scratch_directory(test_case) -> str:
    """
    A fresh temporary directory removed after the test (trial's C{mktemp} would put it
    under the current directory, the repository root under pytest).
    """
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="zkreg-durability-")
    test_case.addCleanup(shutil.rmtree, path, True)
    return os.path.join(path, "data")


def tree_state(tree: DataTree) -> tuple:
    """Everything of a tree a snapshot must carry, comparable with ==."""
    return (
        tree.digest(),
        [path for path, _ in tree.iter_nodes()],
        {session: list(paths) for session, paths in tree.ephemerals.items()},
        list(tree.containers),
        list(tree.ttls),
        dict(tree.sessions),
        tree.last_zxid,
    )
