"""
Where the data tier keeps things in etcd, and how a log slot is encoded.

Under a prefix (C{/zkreg} by default):

  - C{<prefix>/leader}: the active data server's address, on its lease; the key's
    create revision is the leader's fencing token;
  - C{<prefix>/epoch}: the ZooKeeper epoch, bumped in the txn that takes leadership;
  - C{<prefix>/log/<seq>}: log slots, C{seq} zero-padded so key order is log order;
  - C{<prefix>/snapshot}: the manifest of the latest snapshot (JSON: the slot and
    zxid it covers, its chunk keys);
  - C{<prefix>/snap/<zxid>/<n>}: the chunks of a snapshot file;
  - C{<prefix>/members/<address>}: each data server's state (role, applied zxid),
    on its own lease, for C{zkreg status}.

A slot is C{token (8 bytes) | last (1 byte) | payload}.  Consecutive slots of one
token form a group whose payloads concatenate to C{[zxid u64][length u32][record]}
repeated; the group ends at a slot with C{last} set.  A group is what one append
acknowledges (group commit); a record larger than a slot spans several.  A group
left unfinished by a deposed leader is followed by a slot of another token and is
dropped: its records were never acknowledged.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["GroupDecoder", "Layout", "encode_group", "split_slots"]

SEQ_DIGITS = 20
_SLOT_HEADER = struct.Struct(">QB")
_RECORD_HEADER = struct.Struct(">QI")
#: payload bytes per slot: with base64 and JSON, one put stays under etcd's 1.5 MiB.
SLOT_PAYLOAD_BYTES = 1_000_000 - _SLOT_HEADER.size


class Layout:
    """The keys of one zkreg data tier under C{prefix}."""

    def __init__(self, prefix: str = "/zkreg") -> None:
        base = prefix.rstrip("/").encode("utf-8")
        self.prefix = base
        self.leader = base + b"/leader"
        self.epoch = base + b"/epoch"
        self.log = base + b"/log/"
        self.manifest = base + b"/snapshot"
        self.snapshots = base + b"/snap/"
        self.members = base + b"/members/"

    def slot(self, seq: int) -> bytes:
        """@return: the key of log slot C{seq}."""
        return self.log + str(seq).zfill(SEQ_DIGITS).encode("ascii")

    def seq_of(self, key: bytes) -> int:
        """@return: the slot number of a log key."""
        return int(key[len(self.log) :])

    def chunk(self, zxid: int, index: int) -> bytes:
        """@return: the key of chunk C{index} of the snapshot at C{zxid}."""
        return self.snapshots + f"{zxid:016x}/{index:06d}".encode("ascii")

    def snapshot_chunks(self, zxid: int) -> bytes:
        """@return: the key prefix of one snapshot's chunks."""
        return self.snapshots + f"{zxid:016x}/".encode("ascii")


def encode_group(records: Iterable[tuple[int, bytes]]) -> bytes:
    """@return: the payload of one group of C{(zxid, record)}."""
    pack = _RECORD_HEADER.pack
    return b"".join(pack(zxid, len(record)) + record for zxid, record in records)


def split_slots(token: int, payload: bytes) -> list[bytes]:
    """@return: the slot values carrying one group's C{payload}."""
    pieces = [
        payload[start : start + SLOT_PAYLOAD_BYTES]
        for start in range(0, max(len(payload), 1), SLOT_PAYLOAD_BYTES)
    ]
    last = len(pieces) - 1
    return [_SLOT_HEADER.pack(token, index == last) + piece for index, piece in enumerate(pieces)]


def slot_token(value: bytes) -> int:
    """@return: the fencing token a slot was written with."""
    return _SLOT_HEADER.unpack_from(value)[0]


class GroupDecoder:
    """
    Turns slots, fed in slot order, back into C{(zxid, record)}.

    Records come out only when their group is complete.
    """

    def __init__(self) -> None:
        self._token: int | None = None
        self._parts: list[bytes] = []

    @property
    def partial(self) -> bool:
        """Whether slots of a group not yet complete were fed."""
        return bool(self._parts)

    def feed(self, value: bytes) -> list[tuple[int, bytes]]:
        """@return: the records of the group C{value} completes (often none)."""
        token, last = _SLOT_HEADER.unpack_from(value)
        if token != self._token:
            # A deposed leader's unfinished group: never acknowledged, dropped.
            self._parts = []
            self._token = token
        self._parts.append(value[_SLOT_HEADER.size :])
        if not last:
            return []
        payload = b"".join(self._parts)
        self._parts = []
        records = []
        offset = 0
        unpack = _RECORD_HEADER.unpack_from
        size = _RECORD_HEADER.size
        end = len(payload)
        while offset < end:
            zxid, length = unpack(payload, offset)
            offset += size
            records.append((zxid, payload[offset : offset + length]))
            offset += length
        return records
