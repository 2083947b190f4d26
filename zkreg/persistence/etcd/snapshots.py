"""
Tree snapshots kept in etcd, so a data server's disk holds nothing needed to recover.

A snapshot is the file format of L{zkreg.persistence.snapshot} (checksummed), written
by a forked child (L{zkreg.persistence.etcd.cache}), cut in chunks of at most a
slot's size, each put in its own fenced txn under C{<prefix>/snap/<zxid>/}; then one
fenced txn writes the manifest C{<prefix>/snapshot} (JSON: C{seq}, C{zxid},
C{chunks}, C{size}, C{sha256} of the file).  Only then is the log
before the covered slot deleted, older snapshots' chunks with it, and etcd's
history compacted up to now: an etcd under continuous writes stays far below its
quota.  A standby whose watch revision was compacted loads the manifest's snapshot
and replays the slots after it.  The file format carries the reply cache of stamped
writes too (exactly-once across a snapshot, see L{zkreg.data.dedup}).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from zkreg.data.dedup import ReplyCache
from zkreg.data.tree import DataTree
from zkreg.persistence.etcd.cache import file_digest
from zkreg.persistence.etcd.client import (
    Compare,
    EtcdClient,
    delete_op,
    prefix_end,
    put_op,
)
from zkreg.persistence.etcd.layout import SLOT_PAYLOAD_BYTES, Layout
from zkreg.persistence.etcd.log import Fenced
from zkreg.persistence.recovery import load_tree, write_tree_snapshot

__all__ = ["load_snapshot", "read_manifest", "save_snapshot", "upload_snapshot"]

_log = Logger(namespace="zkreg.persistence.etcd.snapshots")


def _read_chunk(path: str, index: int) -> bytes:
    """@return: chunk C{index} of the snapshot file at C{path}."""
    with open(path, "rb") as snapshot_file:
        snapshot_file.seek(index * SLOT_PAYLOAD_BYTES)
        return snapshot_file.read(SLOT_PAYLOAD_BYTES)


def _tree_from(data: bytes, extended_types: bool, replies: ReplyCache | None) -> DataTree:
    directory = tempfile.mkdtemp(prefix="zkreg-etcd-snap-")
    try:
        path = os.path.join(directory, "snapshot")
        with open(path, "wb") as snapshot_file:
            snapshot_file.write(data)
        return load_tree(path, extended_types, replies=replies)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@defer.inlineCallbacks
def save_snapshot(
    client: EtcdClient,
    layout: Layout,
    tree: DataTree,
    covered_seq: int,
    token: int,
    replies: ReplyCache | None = None,
):
    """
    Serialize C{tree} (whose state is the log up to slot C{covered_seq}) here and
    now, then L{upload_snapshot} it.  The data server does not use this: it forks
    (L{zkreg.persistence.etcd.cache.LocalSnapshots}) so the reactor does not wait.

    @param replies: the reply cache of stamped writes, at the tree's zxid.
    @return: Deferred firing with the manifest written (a dict).
    """
    directory = tempfile.mkdtemp(prefix="zkreg-etcd-snap-")
    try:
        path = write_tree_snapshot(directory, tree, False, with_digest=True, replies=replies)
        manifest = yield upload_snapshot(
            client, layout, path, tree.last_zxid, covered_seq, token, file_digest(path)
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return manifest


@defer.inlineCallbacks
def upload_snapshot(
    client: EtcdClient,
    layout: Layout,
    path: str,
    zxid: int,
    covered_seq: int,
    token: int,
    sha256: str,
):
    """
    Write the snapshot file at C{path} (the tree at C{zxid}, the log applied up to
    slot C{covered_seq}; C{sha256} its digest) to etcd in chunks, each read on a
    thread, then the manifest, then delete the log it covers and compact.

    @return: Deferred firing with the manifest written (a dict).
    @raise Fenced: when leadership was lost on the way (nothing is deleted then).
    """
    fence = Compare.create_revision(layout.leader, token)
    size = os.path.getsize(path)
    count = max(1, -(-size // SLOT_PAYLOAD_BYTES))
    for index in range(count):
        chunk = yield threads.deferToThread(_read_chunk, path, index)
        succeeded, _, _ = yield client.txn([fence], [put_op(layout.chunk(zxid, index), chunk)])
        if not succeeded:
            raise Fenced("snapshot chunk refused: leadership lost")
    previous = yield client.get(layout.manifest)
    manifest = {
        "seq": covered_seq,
        "zxid": zxid,
        "chunks": count,
        "size": size,
        "sha256": sha256,
    }
    succeeded, revision, _ = yield client.txn(
        [fence], [put_op(layout.manifest, json.dumps(manifest).encode("utf-8"))]
    )
    if not succeeded:
        raise Fenced("snapshot manifest refused: leadership lost")
    # The manifest is in: what it covers can go.
    removals = [delete_op(layout.log, layout.slot(covered_seq + 1))]
    if previous is not None:
        old = json.loads(previous.value)
        if old.get("zxid") != zxid:
            old_prefix = layout.snapshot_chunks(old["zxid"])
            removals.append(delete_op(old_prefix, prefix_end(old_prefix)))
    yield client.txn([fence], removals)
    yield client.compact(revision)
    _log.info(
        "snapshot of zxid {zxid:#x} in etcd ({size} bytes, {chunks} chunks); log up to "
        "slot {seq} deleted, compacted at revision {revision}",
        zxid=zxid,
        size=size,
        chunks=count,
        seq=covered_seq,
        revision=revision,
    )
    return manifest


@defer.inlineCallbacks
def read_manifest(client: EtcdClient, layout: Layout):
    """@return: Deferred firing with etcd's snapshot manifest (a dict), or L{None}."""
    manifest_kv = yield client.get(layout.manifest)
    if manifest_kv is None:
        return None
    return json.loads(manifest_kv.value)


@defer.inlineCallbacks
def load_snapshot(
    client: EtcdClient,
    layout: Layout,
    extended_types: bool,
    replies: ReplyCache | None = None,
    manifest: dict[str, Any] | None = None,
):
    """
    Download and load etcd's latest snapshot (in a thread: the reactor goes on).

    @param replies: an empty reply cache to fill with the snapshot's recorded replies.
    @param manifest: the manifest if already read (else it is read here).
    @return: Deferred firing with C{(tree, covered seq)} from the latest snapshot,
        or L{None} when there is none yet.
    """
    if manifest is None:
        manifest = yield read_manifest(client, layout)
        if manifest is None:
            return None
    prefix = layout.snapshot_chunks(manifest["zxid"])
    parts: list[bytes] = []
    start: bytes | None = None
    while True:
        kvs, more, _ = yield client.get_prefix(prefix, start=start, limit=8)
        parts.extend(kv.value for kv in kvs)
        if not more or not kvs:
            break
        start = kvs[-1].key + b"\x00"
    if len(parts) != manifest["chunks"]:
        raise ValueError(f"snapshot {manifest} has {len(parts)} chunks in etcd")
    tree = yield threads.deferToThread(_tree_from, b"".join(parts), extended_types, replies)
    return tree, int(manifest["seq"])
