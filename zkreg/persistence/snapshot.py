"""
Snapshot files: the whole tree, session table and reply cache at one zxid.

On disk
=======

A snapshot is the file C{snapshot.<zxid as 16 hex digits>} in the data directory,
written under a C{.tmp} name, synced, then renamed (and the directory synced), so a
snapshot file that exists is complete unless the disk damaged it afterwards.

  - header (32 bytes): magic C{b"ZKRGSNAP"}, format version C{>I} (now 1), the zxid
    of the last transaction in it C{>q}, the time it was taken (ms) C{>q}, and a
    CRC-32 of those 28 bytes C{>I};
  - entries, each a one-byte tag then its fields (strings and byte strings are a
    C{>I} length then the bytes):

      - C{S} a session: id C{>q}, timeout in ms C{>i};
      - C{A} an ACL list: its index C{>I}, the count C{>I}, then per ACL the perms
        C{>i}, the scheme and the id (strings); nodes refer to ACL lists by index,
        as ZooKeeper's ACL cache does, because a registry shares a few ACLs among
        many nodes;
      - C{N} a node, parents before children and children in the tree's order: the
        path, the data (a C{>i} length, -1 for null data, then the bytes), its ACL
        list index C{>I}, then C{czxid, mzxid, ctime, mtime}
        C{>q}, C{version, cversion, aversion} C{>i} (cversion is the stored one),
        C{ephemeralOwner, pzxid} C{>q};
      - C{G} the tree's digest as the tree computes it, as a string (optional; a
        loaded tree must give the same);
      - C{R} a recorded reply of a stamped write (exactly-once, see
        L{zkreg.data.dedup}): session id C{>q}, origin C{>q}, seq C{>q}, zxid C{>q},
        err C{>i}, the opcode its body decodes as C{>i}, then the body (the client
        protocol's response bytes: a C{>i} length, -1 for none, then the bytes).
        Added after format 1 was out: snapshots without C{R} entries (an empty reply
        cache, or written before) load with an empty cache;
      - C{E} the end: the number of nodes C{>Q} and of sessions C{>Q};

  - trailer (12 bytes): a CRC-32 C{>I} of every entry byte, and C{b"ZKRGEND\\0"}.

The reader checks the header, the trailer and the CRC before it parses an entry, so
a torn or damaged snapshot is rejected whole (recovery then falls back to an older
one) and never half-loaded.
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMAT_VERSION",
    "ReplyImage",
    "SNAPSHOT_MAGIC",
    "SnapshotError",
    "SnapshotHeader",
    "SnapshotWriter",
    "list_snapshots",
    "read_snapshot",
    "snapshot_name",
    "write_snapshot",
]

SNAPSHOT_MAGIC = b"ZKRGSNAP"
END_MAGIC = b"ZKRGEND\x00"
FORMAT_VERSION = 1

_HEAD = struct.Struct(">8sIqq")
_CRC = struct.Struct(">I")
HEADER_BYTES = _HEAD.size + _CRC.size
TRAILER_BYTES = _CRC.size + len(END_MAGIC)
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_SESSION = struct.Struct(">qi")
_ACL_HEAD = struct.Struct(">II")
_NODE_FIXED = struct.Struct(">Iqqqqiiiqq")
_END = struct.Struct(">QQ")
_REPLY_FIXED = struct.Struct(">qqqqii")
_NULL_DATA = _I32.pack(-1)

_SNAPSHOT_NAME = re.compile(r"^snapshot\.([0-9a-f]{16})$")

#: Bytes buffered before one write to the file.
_WRITE_CHUNK = 1 << 20


class SnapshotError(Exception):
    """
    A snapshot file is damaged or not a zkreg snapshot.

    @ivar path: the file.
    @ivar reason: what is wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"snapshot {path} is not usable: {reason}")


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    """
    @ivar zxid: the zxid of the last transaction the snapshot includes.
    @ivar taken_ms: when it was taken, ms since the epoch.
    @ivar version: the format version.
    """

    zxid: int
    taken_ms: int
    version: int


@dataclass(slots=True)
class NodeImage:
    """
    One node as a snapshot holds it (the persisted fields of a znode).

    @ivar acl: a tuple of C{(perms, scheme, id)}.
    """

    path: str
    data: bytes | None
    acl: tuple
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    pzxid: int


@dataclass(frozen=True, slots=True)
class ReplyImage:
    """
    One recorded reply of a stamped write as a snapshot holds it.

    @ivar opcode: the opcode whose response C{body} decodes as.
    @ivar body: the response bytes, or L{None} (an error or a reply without a body).
    """

    session_id: int
    origin: int
    seq: int
    zxid: int
    err: int
    opcode: int
    body: bytes | None


@dataclass(slots=True)
class SnapshotContent:
    """
    Everything read from a snapshot.

    @ivar sessions: C{(session id, timeout ms)} in the order written.
    @ivar nodes: L{NodeImage}s, parents before children.
    @ivar digest: the digest the writer's tree reported, or L{None}.
    @ivar replies: L{ReplyImage}s of the recorded replies of stamped writes.
    """

    path: str
    header: SnapshotHeader
    sessions: list[tuple[int, int]] = field(default_factory=list)
    nodes: list[NodeImage] = field(default_factory=list)
    digest: str | None = None
    replies: list[ReplyImage] = field(default_factory=list)


def snapshot_name(zxid: int) -> str:
    """@return: the file name of the snapshot taken at C{zxid}."""
    return f"snapshot.{zxid:016x}"


def list_snapshots(directory: str) -> list[tuple[int, str]]:
    """
    @return: C{(zxid, path)} of every snapshot file in C{directory}, oldest first
        (temporary files of unfinished snapshots are not listed).
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _SNAPSHOT_NAME.match(name)
        if match:
            found.append((int(match.group(1), 16), os.path.join(directory, name)))
    found.sort()
    return found


def _pack_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _U32.pack(len(raw)) + raw


class SnapshotWriter:
    """
    Streams one snapshot to a temporary file and renames it into place at the end.

    Used from the forked snapshot child (and in tests directly), so it only uses
    plain file I/O: no logging, no reactor.

    @ivar node_count: nodes written so far.
    @ivar session_count: sessions written so far.
    """

    def __init__(self, directory: str, zxid: int, sync: bool = True) -> None:
        self.directory = directory
        self.zxid = zxid
        self.sync = sync
        self.final_path = os.path.join(directory, snapshot_name(zxid))
        self.temp_path = f"{self.final_path}.{os.getpid()}.tmp"
        self.node_count = 0
        self.session_count = 0
        self._acl_index: dict[Any, int] = {}
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._crc = 0
        self._file = open(self.temp_path, "wb")
        head = _HEAD.pack(SNAPSHOT_MAGIC, FORMAT_VERSION, zxid, int(time.time() * 1000))
        self._file.write(head + _CRC.pack(zlib.crc32(head)))

    def _emit(self, chunk: bytes) -> None:
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= _WRITE_CHUNK:
            self._drain()

    def _drain(self) -> None:
        blob = b"".join(self._buffer)
        # Cleared in place: L{add_tree_nodes} holds the list in a local.
        self._buffer.clear()
        self._buffered = 0
        self._crc = zlib.crc32(blob, self._crc)
        self._file.write(blob)

    def add_session(self, session_id: int, timeout_ms: int) -> None:
        """Write one session of the session table."""
        self._emit(b"S" + _SESSION.pack(session_id, timeout_ms))
        self.session_count += 1

    def _acl_ref(self, acl: Iterable) -> int:
        """The index of an ACL list, writing its definition the first time it is seen."""
        key = acl if isinstance(acl, tuple) else tuple(acl)
        index = self._acl_index.get(key)
        if index is not None:
            return index
        index = len(self._acl_index)
        self._acl_index[key] = index
        parts = [b"A", _ACL_HEAD.pack(index, len(key))]
        for entry in key:
            perms, scheme, ident = _acl_triple(entry)
            parts.append(_I32.pack(perms))
            parts.append(_pack_str(scheme))
            parts.append(_pack_str(ident))
        self._emit(b"".join(parts))
        return index

    def add_node(
        self,
        path: str,
        data: bytes | None,
        acl: Iterable,
        czxid: int,
        mzxid: int,
        ctime: int,
        mtime: int,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        pzxid: int,
    ) -> None:
        """Write one node; parents must come before their children."""
        acl_index = self._acl_ref(acl)
        raw_path = path.encode("utf-8")
        self._emit(
            b"N"
            + _U32.pack(len(raw_path))
            + raw_path
            + (_NULL_DATA if data is None else _I32.pack(len(data)) + data)
            + _NODE_FIXED.pack(
                acl_index,
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                pzxid,
            )
        )
        self.node_count += 1

    def add_tree_nodes(self, items: Iterable[tuple[str, Any]]) -> None:
        """
        Write many nodes straight from the tree's node objects: what L{add_node}
        does per node, in one loop.  The forked snapshot child spends its time
        here (at 364,000 znodes a call per node with twelve arguments took about
        twice as long, and that child shares the machine's other core with
        everything else), so the loop keeps its lookups in locals and knows an
        ACL by the identity of the tree's interned tuple.

        @param items: C{(path, node)} pairs, parents before children; a node has
            a L{zkreg.data.node.Node} (its C{persisted_fields}), and its C{acl} tuple stays
            alive (the tree holds it) while this runs.
        """
        acl_refs: dict[int, int] = {}
        pack_u32 = _U32.pack
        pack_i32 = _I32.pack
        pack_fixed = _NODE_FIXED.pack
        buffer = self._buffer
        append = buffer.append
        buffered = self._buffered
        count = 0
        for path, node in items:
            acl = node.acl
            acl_index = acl_refs.get(id(acl))
            if acl_index is None:
                self._buffered = buffered
                acl_index = acl_refs[id(acl)] = self._acl_ref(acl)
                buffered = self._buffered
            raw_path = path.encode("utf-8")
            data = node.data
            chunk = (
                b"N"
                + pack_u32(len(raw_path))
                + raw_path
                + (_NULL_DATA if data is None else pack_i32(len(data)) + data)
                + pack_fixed(acl_index, *node.persisted_fields())
            )
            append(chunk)
            count += 1
            buffered += len(chunk)
            if buffered >= _WRITE_CHUNK:
                self._drain()
                buffered = 0
        self._buffered = buffered
        self.node_count += count

    def add_digest(self, digest: object) -> None:
        """Record the writer's tree digest, for checking the loaded tree."""
        self._emit(b"G" + _pack_str(str(digest)))

    def add_reply(self, reply: ReplyImage) -> None:
        """Record one reply of a stamped write (exactly-once across restarts)."""
        body = reply.body
        self._emit(
            b"R"
            + _REPLY_FIXED.pack(
                reply.session_id, reply.origin, reply.seq, reply.zxid, reply.err, reply.opcode
            )
            + (_NULL_DATA if body is None else _I32.pack(len(body)) + body)
        )

    def finish(self) -> str:
        """
        Write the end entry and trailer, sync, and rename into place.

        @return: the final path.
        """
        self._emit(b"E" + _END.pack(self.node_count, self.session_count))
        self._drain()
        self._file.write(_CRC.pack(self._crc) + END_MAGIC)
        self._file.flush()
        if self.sync:
            os.fsync(self._file.fileno())
        self._file.close()
        os.rename(self.temp_path, self.final_path)
        if self.sync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self.final_path

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._file.close()
        finally:
            try:
                os.remove(self.temp_path)
            except FileNotFoundError:
                pass


def _acl_triple(entry: Any) -> tuple[int, str, str]:
    """An ACL as C{(perms, scheme, id)}, from a jute ACL record or a triple."""
    if isinstance(entry, tuple):
        return entry
    return entry.perms, entry.id.scheme, entry.id.id


def write_snapshot(
    directory: str,
    zxid: int,
    sessions: Iterable[tuple[int, int]],
    nodes: Iterable[tuple],
    digest: object = None,
    sync: bool = True,
) -> str:
    """
    Write a whole snapshot.

    @param sessions: C{(session id, timeout ms)}.
    @param nodes: the arguments of L{SnapshotWriter.add_node} as tuples, parents
        first.
    @return: the path written.
    """
    writer = SnapshotWriter(directory, zxid, sync)
    try:
        for session_id, timeout_ms in sessions:
            writer.add_session(session_id, timeout_ms)
        for node in nodes:
            writer.add_node(*node)
        if digest is not None:
            writer.add_digest(digest)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def read_header(path: str, data: bytes | None = None) -> SnapshotHeader:
    """
    Read and check a snapshot's header (and, when C{data} is the whole file, its
    trailer and checksum).

    @raise SnapshotError: when the file is damaged or not a snapshot.
    """
    if data is None:
        with open(path, "rb") as snapshot_file:
            data = snapshot_file.read(HEADER_BYTES)
        whole = False
    else:
        whole = True
    if len(data) < HEADER_BYTES:
        raise SnapshotError(path, f"file of {len(data)} bytes is shorter than the header")
    magic, version, zxid, taken_ms = _HEAD.unpack_from(data, 0)
    (header_crc,) = _CRC.unpack_from(data, _HEAD.size)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(path, f"bad magic {magic!r} (not a zkreg snapshot)")
    if zlib.crc32(data[: _HEAD.size]) != header_crc:
        raise SnapshotError(path, "header checksum mismatch")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            path, f"unsupported snapshot format version {version} (this zkreg reads 1)"
        )
    if whole:
        if len(data) < HEADER_BYTES + TRAILER_BYTES or not data.endswith(END_MAGIC):
            raise SnapshotError(path, "no end marker: the snapshot is truncated")
        (stored,) = _CRC.unpack_from(data, len(data) - TRAILER_BYTES)
        computed = zlib.crc32(memoryview(data)[HEADER_BYTES : len(data) - TRAILER_BYTES])
        if stored != computed:
            raise SnapshotError(
                path, f"checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )
    return SnapshotHeader(zxid, taken_ms, version)


def iter_entries(path: str, data: bytes) -> Iterator[tuple[str, Any]]:
    """
    The entries of a checked snapshot, as C{("session", (id, timeout))},
    C{("node", NodeImage)}, C{("digest", str)}, C{("reply", ReplyImage)}.

    @raise SnapshotError: for an entry that does not parse.
    """
    acls: list[tuple] = []
    for kind, value in iter_raw_entries(path, data):
        if kind == "node":
            node_path, node_data, fixed = value
            yield "node", NodeImage(node_path, node_data, acls[fixed[0]], *fixed[1:])
        elif kind == "acl":
            acls.append(value)
        else:
            yield kind, value


def iter_raw_entries(path: str, data: bytes) -> Iterator[tuple[str, Any]]:
    """
    The entries of a checked snapshot as they lie in the file, for a loader that
    builds its own objects (a million L{NodeImage}s cost a restart seconds):
    C{("acl", (perms, scheme, id) triples)} in index order, then C{("node", (path,
    data, fixed))} where C{fixed} is C{(acl index, czxid, mzxid, ctime, mtime,
    version, cversion, aversion, ephemeral owner, pzxid)}, and the C{"session"},
    C{"digest"} and C{"reply"} entries of L{iter_entries}.

    @raise SnapshotError: for an entry that does not parse, or a node naming an ACL
        list not defined before it.
    """
    unpack_u32 = _U32.unpack_from
    unpack_i32 = _I32.unpack_from
    unpack_fixed = _NODE_FIXED.unpack_from
    acl_count = 0
    offset = HEADER_BYTES
    end = len(data) - TRAILER_BYTES
    counted_nodes = counted_sessions = 0
    try:
        while offset < end:
            tag = data[offset]
            offset += 1
            if tag == 0x4E:  # N
                (path_len,) = unpack_u32(data, offset)
                offset += 4
                node_path = data[offset : offset + path_len].decode("utf-8")
                offset += path_len
                (data_len,) = unpack_i32(data, offset)
                offset += 4
                if data_len < 0:
                    node_data = None
                else:
                    node_data = data[offset : offset + data_len]
                    offset += data_len
                fixed = unpack_fixed(data, offset)
                offset += _NODE_FIXED.size
                counted_nodes += 1
                if fixed[0] >= acl_count:
                    raise SnapshotError(path, f"node {node_path!r} names undefined ACL list")
                yield "node", (node_path, node_data, fixed)
            elif tag == 0x41:  # A
                index, count = _ACL_HEAD.unpack_from(data, offset)
                offset += _ACL_HEAD.size
                entries = []
                for _ in range(count):
                    (perms,) = _I32.unpack_from(data, offset)
                    offset += 4
                    scheme, offset = _read_str(data, offset)
                    ident, offset = _read_str(data, offset)
                    entries.append((perms, scheme, ident))
                if index != acl_count:
                    raise SnapshotError(path, f"ACL list {index} out of order at {offset}")
                acl_count += 1
                yield "acl", tuple(entries)
            elif tag == 0x53:  # S
                session = _SESSION.unpack_from(data, offset)
                offset += _SESSION.size
                counted_sessions += 1
                yield "session", session
            elif tag == 0x52:  # R
                session_id, origin, seq, zxid, err, opcode = _REPLY_FIXED.unpack_from(data, offset)
                offset += _REPLY_FIXED.size
                (body_len,) = unpack_i32(data, offset)
                offset += 4
                body = None
                if body_len >= 0:
                    body = data[offset : offset + body_len]
                    offset += body_len
                    if len(body) != body_len:
                        raise SnapshotError(path, f"reply body cut short at offset {offset}")
                yield "reply", ReplyImage(session_id, origin, seq, zxid, err, opcode, body)
            elif tag == 0x47:  # G
                digest, offset = _read_str(data, offset)
                yield "digest", digest
            elif tag == 0x45:  # E
                nodes, sessions = _END.unpack_from(data, offset)
                offset += _END.size
                if (nodes, sessions) != (counted_nodes, counted_sessions):
                    raise SnapshotError(
                        path,
                        f"end entry counts {nodes} nodes and {sessions} sessions, "
                        f"the file holds {counted_nodes} and {counted_sessions}",
                    )
                if offset != end:
                    raise SnapshotError(path, f"{end - offset} bytes after the end entry")
                return
            else:
                raise SnapshotError(path, f"unknown entry tag {tag:#x} at offset {offset - 1}")
    except (struct.error, UnicodeDecodeError, IndexError) as error:
        raise SnapshotError(path, f"entry at offset {offset} does not parse: {error}") from None
    raise SnapshotError(path, "no end entry")


def _read_str(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = _U32.unpack_from(data, offset)
    offset += 4
    return data[offset : offset + length].decode("utf-8"), offset + length


def read_snapshot(
    path: str,
    on_node: Callable[[NodeImage], None] | None = None,
) -> SnapshotContent:
    """
    Read and check a whole snapshot.

    @param on_node: called with each node instead of collecting them in
        C{content.nodes} (saves a list of a million entries when loading a tree).
    @raise SnapshotError: when the snapshot is damaged; nothing was passed to
        C{on_node} then unless the damage is past the checksum (an entry that does
        not parse although its checksum matches: a writer bug).
    """
    with open(path, "rb") as snapshot_file:
        data = snapshot_file.read()
    header = read_header(path, data)
    content = SnapshotContent(path, header)
    for kind, value in iter_entries(path, data):
        if kind == "node":
            if on_node is None:
                content.nodes.append(value)
            else:
                on_node(value)
        elif kind == "session":
            content.sessions.append(value)
        elif kind == "reply":
            content.replies.append(value)
        else:
            content.digest = value
    return content


def remove_temporaries(directory: str) -> list[str]:
    """
    Remove the temporary files of snapshots that never finished (a crash while
    writing one).

    @return: the paths removed.
    """
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        if name.startswith("snapshot.") and name.endswith(".tmp"):
            path = os.path.join(directory, name)
            os.remove(path)
            removed.append(path)
    return removed
