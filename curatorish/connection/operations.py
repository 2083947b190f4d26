"""
What every operation of the ZooKeeper client protocol shares.

The operations (Java's C{ZooKeeper} methods, as methods returning Deferreds) are the
half of L{curatorish.connection.ZooKeeperConnection} that knows the requests and their
replies: each encodes its request with L{zkreg.proto}, submits it through the session
(C{_submit}, which frames, queues, times out and matches replies), decodes the reply,
registers the watch a successful read asked for, and maps paths through the chroot.
The session half (L{curatorish.connection.session}) knows nothing of individual
operations.

They are parts mixed into the connection, one kind of request each:

  - L{curatorish.connection.read_requests}: the requests that change nothing on the
    server (exists, get data, children, ACLs and config, sync, ...);
  - L{curatorish.connection.write_requests}: create, delete, set data, set ACL;
  - L{curatorish.connection.watch_requests}: adding and removing watches;
  - L{curatorish.connection.multi_requests}: transactions and multiRead, with their
    ops and results.

This module holds their common base, L{ZooKeeperOperations}: the stand-ins for what
the session provides, the reply readers and the path mapping every request uses, and
the encoding of a create (L{check_data}, C{_create_record}), which a create alone and
a create in a transaction share.  Every part subclasses it, so the method resolution
order puts it after all of them, and after the session's other parts: its stand-ins
never hide the session's real C{_submit} and C{_call_watcher}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.paths import Chroot, validate_path
from curatorish.connection.watches import WatchedEvent, Watcher, WatchManager
from zkreg.proto.consts import CreateMode, KeeperState, OpCode
from zkreg.proto.jute import Record
from zkreg.proto.records import CreateRequest, CreateTTLRequest

#: The largest TTL ZooKeeper accepts (C{EphemeralType.TTL.maxValue()}: 2**40 - 1 ms).
MAX_TTL_MS = (1 << 40) - 1


def check_data(data: object, path: str | None) -> None:
    """
    Node data is bytes (or L{None}, ZooKeeper's null): say so plainly when it is not,
    rather than failing somewhere in the encoder.

    @raise TypeError: for a C{str} (encode it first) or any other type.
    """
    if data is None or isinstance(data, bytes):
        return
    where = f" (for {path})" if path else ""
    if isinstance(data, str):
        raise TypeError(
            f"node data must be bytes, not str{where}: encode it first, e.g. data.encode()"
        )
    raise TypeError(f"node data must be bytes, not {type(data).__name__}{where}")


class ZooKeeperOperations:
    """
    What the operations share, over what the session provides: the base of every
    part of the operations.

    @ivar chroot: the L{Chroot} of the connect string.
    @ivar watches: the L{WatchManager} of this session.
    """

    chroot: Chroot
    watches: WatchManager

    # Provided by the session (ZooKeeperConnection):
    def _submit(
        self,
        opcode: int,
        record: Record | bytes | None,
        complete: Callable[[int, bytes, int], Any],
        path: str | None,
    ) -> defer.Deferred[Any]:
        raise NotImplementedError

    def _call_watcher(self, watcher: Watcher, event: WatchedEvent) -> None:
        raise NotImplementedError

    def _current_keeper_state(self) -> KeeperState:
        raise NotImplementedError

    # -- reply readers ----------------------------------------------------------------

    @staticmethod
    def _check(err: int, path: str | None) -> None:
        if err != 0:
            raise errors.error_for_code(err, path)

    def _complete_empty(self, err: int, frame: bytes, offset: int) -> None:
        return None

    def _reader(
        self, path: str | None, response_class: type[Record] | None
    ) -> Callable[[int, bytes, int], Any]:
        def complete(err: int, frame: bytes, offset: int) -> Any:
            self._check(err, path)
            if response_class is None:
                return None
            record, _ = response_class.deserialize(frame, offset)
            return record

        return complete

    def _to_server(self, path: str, sequential: bool = False) -> str:
        validate_path(path, sequential)
        return self.chroot.to_server(path)

    # -- encoding a create (alone or in a transaction) --------------------------------

    def _create_record(
        self,
        path: str,
        data: bytes | None,
        acl: Sequence[Any],
        mode: CreateMode,
        ttl: int | None,
    ) -> tuple[int, Record]:
        mode = CreateMode(mode)
        check_data(data, path)
        server_path = self._to_server(path, mode.is_sequential)
        if not acl:
            raise errors.InvalidACLError(path)
        acl_list = list(acl)
        if mode.is_ttl:
            if ttl is None or not 0 < ttl <= MAX_TTL_MS:
                raise ValueError(f"ttl must be in (0, {MAX_TTL_MS}] for {mode.name}: {ttl!r}")
            return OpCode.createTTL, CreateTTLRequest(
                server_path, data, acl_list, int(mode), int(ttl)
            )
        if ttl is not None:
            raise ValueError(f"ttl given for a {mode.name} node")
        opcode = OpCode.createContainer if mode.is_container else OpCode.create2
        return opcode, CreateRequest(server_path, data, acl_list, int(mode))
