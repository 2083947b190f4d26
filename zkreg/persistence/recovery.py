"""
Recovery: the newest valid snapshot, then every logged transaction after it.

This is the only place that turns files back into a L{DataTree}; the snapshot and the
log formats live in L{zkreg.persistence.snapshot} and L{zkreg.persistence.segments}.

  - Unfinished snapshot files (a crash while one was written) are removed.
  - The log after the newest snapshot is checked first
    (L{zkreg.persistence.segments.open_log}): a torn tail is cut with a warning,
    damage in the middle raises L{zkreg.persistence.segments.CorruptLogError} and
    nothing starts.  Segments wholly before that snapshot are not read, as in
    ZooKeeper; they are checked record by record if an older snapshot must be used.
  - Snapshots are tried newest first; a damaged one is reported and the next older
    one is used (the log is kept from the oldest retained snapshot on, so it can be
    replayed from any of them).
  - The log records after the snapshot's zxid are applied in order with
    L{DataTree.apply}, exactly as the data server applied them.

The replies of stamped writes (L{zkreg.data.dedup.ReplyCache}) come back the same
way: the snapshot's, then those the replayed records rebuild, so a write committed
before the snapshot and resubmitted after the restart is still answered, not applied
again.

The session table comes back with the tree (C{tree.sessions}: id to timeout); the
data server re-arms every session with its full timeout from the restart, as
ZooKeeper's session tracker does, so ephemerals stay until their session reconnects
or times out.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import Logger

from zkreg.data.applier import replayed
from zkreg.data.codes import (
    EPHEMERAL_CONTAINER,
    EPHEMERAL_NORMAL,
    EPHEMERAL_TTL,
    ephemeral_type,
)
from zkreg.data.dedup import ReplyCache
from zkreg.data.messages import Outcome, WriteStamp
from zkreg.data.node import Node
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.persistence.segments import LogRecord, list_segments, open_log
from zkreg.persistence.snapshot import (
    ReplyImage,
    SnapshotError,
    SnapshotWriter,
    iter_raw_entries,
    list_snapshots,
    read_header,
    remove_temporaries,
)
from zkreg.proto import multi
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import DecodeError
from zkreg.proto.ops import MULTI, OPS
from zkreg.proto.records import ACL, Id

__all__ = [
    "RecoveredState",
    "RecoveryError",
    "load_tree",
    "recover",
    "write_tree_snapshot",
]

log = Logger(namespace="zkreg.persistence.recovery")


class RecoveryError(Exception):
    """
    The data directory cannot be turned back into a tree (beyond a torn tail):
    the message says which file and what the operator can do.
    """


@dataclass(slots=True)
class RecoveredState:
    """
    What recovery rebuilt.

    @ivar tree: the tree at C{last_zxid}, with its session table.
    @ivar last_zxid: the zxid of the last transaction applied (0 for an empty
        directory).
    @ivar snapshot_path: the snapshot loaded, or L{None}.
    @ivar snapshot_zxid: its zxid (0 without one).
    @ivar replayed: how many log records were applied after it.
    @ivar notes: what was repaired or skipped (torn tail cut, damaged snapshot).
    @ivar seconds: how long recovery took.
    @ivar log_last_zxid: the zxid of the last record in the log (L{None} when empty).
    @ivar replies: the replies of the stamped writes (exactly-once; see
        L{zkreg.data.dedup}): the snapshot's, then those of the records replayed.
    """

    tree: DataTree
    last_zxid: int
    replies: ReplyCache = field(default_factory=ReplyCache)
    snapshot_path: str | None = None
    snapshot_zxid: int = 0
    replayed: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log_last_zxid: int | None = None


#: The opcode each response record type decodes as (any opcode answering with it).
_RESPONSE_OPCODES: dict[Any, int] = {}
for _opcode, _spec in OPS.items():
    if _spec.response is not None and _spec.response is not MULTI:
        _RESPONSE_OPCODES.setdefault(_spec.response, int(_opcode))


def _reply_image(session_id: int, stamp: WriteStamp, outcome: Outcome) -> ReplyImage:
    """A recorded reply as snapshot bytes (the client protocol's response encoding)."""
    response = outcome.response
    if response is None:
        opcode, body = 0, None
    elif isinstance(response, list):
        opcode, body = int(OpCode.multi), multi.encode_response(response)
    else:
        opcode, body = _RESPONSE_OPCODES[type(response)], response.serialize()
    return ReplyImage(session_id, stamp.origin, stamp.seq, outcome.zxid, outcome.err, opcode, body)


def _reply_of(image: ReplyImage) -> Outcome:
    """Inverse of L{_reply_image}."""
    body = image.body
    response: Any = None
    if body is not None:
        spec = OPS[image.opcode]
        if spec.response is MULTI:
            response = multi.decode_response(body)[0]
        else:
            response = spec.response.from_bytes(body)  # type: ignore[union-attr]
    return Outcome(image.zxid, image.err, response)


def write_tree_snapshot(
    directory: str,
    tree: DataTree,
    sync: bool = True,
    with_digest: bool = False,
    replies: ReplyCache | None = None,
) -> str:
    """
    Write a snapshot of C{tree} at its C{last_zxid} (sessions, then nodes parents
    first, in the tree's child order, then the recorded replies).

    @param with_digest: also store C{tree.digest()}, which L{load_tree} can check
        (costs a pass over the sorted paths).
    @param replies: the reply cache of stamped writes I{at the tree's zxid}, to keep
        (see L{zkreg.data.dedup}); L{None} for none.
    @return: the path of the snapshot.
    """
    writer = SnapshotWriter(directory, tree.last_zxid, sync)
    try:
        for session_id, timeout_ms in tree.sessions.items():
            writer.add_session(session_id, timeout_ms)
        writer.add_tree_nodes(tree.iter_nodes())
        if replies is not None:
            for session_id, stamp, outcome in replies.items():
                writer.add_reply(_reply_image(session_id, stamp, outcome))
        if with_digest:
            writer.add_digest(tree.digest())
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def load_tree(
    path: str,
    extended_types: bool = False,
    check_digest: bool = True,
    replies: ReplyCache | None = None,
) -> DataTree:
    """
    Build a L{DataTree} from one snapshot file.

    @param check_digest: when the snapshot stored a digest, compare the loaded tree's.
    @param replies: an empty reply cache to fill with the snapshot's recorded replies
        (only once the whole snapshot loaded), or L{None} to ignore them.
    @raise SnapshotError: when the file is damaged (nothing is half-loaded: the
        checksum is checked before the first node is built).
    """
    with open(path, "rb") as snapshot_file:
        data = snapshot_file.read()
    header = read_header(path, data)  # checks the whole file's checksum first
    tree = DataTree(extended_types)
    nodes: dict[str, Node] = {}
    tree.nodes = nodes
    ephemerals = tree.ephemerals
    containers = tree.containers
    ttls = tree.ttls
    # The constructor's system nodes are replaced by the snapshot's own.
    tree._acls.clear()
    acls: list[tuple] = []  # ACL list index -> the tree's shared tuple
    owned: list[tuple[int, str, int]] = []
    sessions: list[tuple[int, int]] = []
    recorded: list[ReplyImage] = []
    digest: str | None = None
    restored = Node.restored
    parent_path = ""
    parent: Node | None = None
    # The collector would scan the growing tree again and again while a million
    # nodes are made (a third of the load's time); nothing here makes a cycle.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for kind, value in iter_raw_entries(path, data):
            if kind == "node":
                node_path, node_data, fixed = value
                acl_index, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid = (
                    fixed
                )
                node = restored(
                    node_path,
                    node_data,
                    acls[acl_index],
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    owner,
                    pzxid,
                )
                if node_path != "/":
                    cut = node_path.rfind("/")
                    wanted = node_path[:cut] if cut > 0 else "/"
                    if wanted != parent_path:
                        # Siblings come together (parents first, depth first): one
                        # lookup per run of siblings.
                        parent = nodes.get(wanted)
                        parent_path = wanted
                    if parent is None:
                        raise SnapshotError(path, f"node {node_path!r} comes before its parent")
                    parent.add_child(node_path)
                nodes[node_path] = node
                if owner:
                    owned.append((czxid, node_path, owner))
            elif kind == "acl":
                acls.append(
                    tree.intern_acl(
                        ACL(perms=perms, id=Id(scheme=scheme, id=ident))
                        for perms, scheme, ident in value
                    )
                )
            elif kind == "session":
                sessions.append(value)
            elif kind == "reply":
                recorded.append(value)
            else:
                digest = value
        # The loaded nodes live as long as the tree: keep the collector from scanning
        # them at every full collection from now on (they hold no cycles; a dropped
        # tree is still freed by reference counting).
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    if "/" not in nodes:
        raise SnapshotError(path, "no root node")
    # The tree keeps these indexes in creation order, which is czxid order.
    owned.sort()
    for _, node_path, owner in owned:
        owner_kind = ephemeral_type(owner, extended_types)
        if owner_kind == EPHEMERAL_NORMAL:
            paths = ephemerals.get(owner)
            if paths is None:
                paths = ephemerals[owner] = {}
            paths[node_path] = None
        elif owner_kind == EPHEMERAL_CONTAINER:
            containers[node_path] = None
        elif owner_kind == EPHEMERAL_TTL:
            ttls[node_path] = None
    tree.sessions = dict(sessions)
    tree.last_zxid = header.zxid
    if check_digest and digest is not None and tree.digest() != digest:
        raise SnapshotError(path, "the loaded tree's digest differs from the one stored")
    # Then, as ZooKeeper's setupQuota after reading a snapshot: the replay that follows
    # keeps the quota stats nodes up to date only for paths known to have quotas.
    tree.quotas.rebuild()
    if replies is not None:
        try:
            outcomes = [(image, _reply_of(image)) for image in recorded]
        except (DecodeError, KeyError, ValueError) as error:
            raise SnapshotError(path, f"a recorded reply does not decode: {error!r}") from None
        for image, outcome in outcomes:
            replies.recorded(image.session_id, WriteStamp(image.origin, image.seq), outcome)
    return tree


def _replay(
    directory: str,
    tree: DataTree,
    after_zxid: int,
    replies: ReplyCache,
    records: Iterable[LogRecord],
) -> int:
    """
    Apply C{records}, every log record after C{after_zxid}, rebuilding C{replies}
    from the stamped ones; @return: how many.
    """
    count = 0
    first = True
    apply = tree.apply
    for record in records:
        if first:
            first = False
            same_epoch = (record.zxid >> 32) == (after_zxid >> 32)
            if after_zxid > 0 and same_epoch and record.zxid != after_zxid + 1:
                raise RecoveryError(
                    f"the log in {directory} resumes at zxid {record.zxid:#x} but the "
                    f"snapshot ends at {after_zxid:#x}: the records between are missing. "
                    f"Restore the data directory from a backup."
                )
        try:
            header, txn, stamp, opcode = decode_logged_txn(record.payload)
        except DecodeError as error:
            raise RecoveryError(
                f"log record zxid {record.zxid:#x} at offset {record.offset} in "
                f"{directory} has a valid checksum but is not a transaction ({error}); "
                f"run 'zkreg log dump {directory}' to inspect it"
            ) from None
        if header.zxid != record.zxid:
            raise RecoveryError(
                f"log record at offset {record.offset} in {directory} is keyed zxid "
                f"{record.zxid:#x} but its header says {header.zxid:#x}"
            )
        replayed(replies, tree, header, apply(header, txn), stamp, opcode)
        count += 1
    return count


def recover(
    directory: str, extended_types: bool = False, check_digest: bool = True
) -> RecoveredState:
    """
    Rebuild the tree from C{directory} (created when missing).

    @raise CorruptLogError: damage in the middle of the log (file and offset named).
    @raise RecoveryError: other unrecoverable states (a gap between snapshot and log).
    """
    started = time.monotonic()
    os.makedirs(directory, exist_ok=True)
    notes: list[str] = []
    for leftover in remove_temporaries(directory):
        note = f"removed {leftover}: a snapshot that was never finished"
        log.warn("recovery: {note}", note=note)
        notes.append(note)
    snapshots = list_snapshots(directory)
    # Only the log after the newest snapshot is checked (as ZooKeeper reads it), and
    # the records read then are the ones replayed: a restart reads the log once, and
    # not the retained segments before the snapshot (they took a quarter of the
    # recovery of a million-node tree).  Falling back to an older snapshot replays
    # through read_records, which checks every record it reads.  With no snapshot
    # the whole log is replayed, a segment at a time, not kept in memory at once.
    opened = open_log(
        directory,
        repair=True,
        after_zxid=snapshots[-1][0] if snapshots else None,
        keep_records=bool(snapshots),
    )
    notes.extend(opened.repairs)
    tree: DataTree | None = None
    snapshot_path: str | None = None
    snapshot_zxid = 0
    replies = ReplyCache()
    for zxid, path in reversed(snapshots):
        try:
            tree = load_tree(path, extended_types, check_digest, replies)
        except (SnapshotError, OSError) as error:
            note = f"skipped damaged snapshot {path}: {error}; trying an older one"
            log.error("recovery: {note}", note=note)
            notes.append(note)
            continue
        snapshot_path, snapshot_zxid = path, zxid
        break
    if tree is None:
        segments = list_segments(directory)
        # Without a usable snapshot the log must reach back to the first transaction
        # (counter 1 of its epoch); purging after a snapshot may have removed the start.
        if list_snapshots(directory) and (not segments or segments[0][0] & 0xFFFFFFFF != 1):
            raise RecoveryError(
                f"every snapshot in {directory} is damaged and the log does not go "
                f"back to the first transaction; restore the data directory from a "
                f"backup ('zkreg snapshot dump' shows what is wrong with each)"
            )
        tree = DataTree(extended_types)
    count = _replay(directory, tree, snapshot_zxid, replies, opened.records_after(snapshot_zxid))
    state = RecoveredState(
        tree=tree,
        replies=replies,
        last_zxid=tree.last_zxid,
        snapshot_path=snapshot_path,
        snapshot_zxid=snapshot_zxid,
        replayed=count,
        notes=notes,
        seconds=time.monotonic() - started,
        log_last_zxid=opened.last_zxid,
    )
    log.info(
        "recovered {directory}: snapshot {snapshot} + {replayed} log records, last zxid "
        "{zxid:#x}, {nodes} nodes, {sessions} sessions in {seconds:.2f}s",
        directory=directory,
        snapshot=snapshot_path,
        replayed=count,
        zxid=tree.last_zxid,
        nodes=tree.node_count(),
        sessions=len(tree.sessions),
        seconds=state.seconds,
    )
    return state
