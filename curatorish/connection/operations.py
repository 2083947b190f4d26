"""
Every operation of the ZooKeeper client protocol, as methods returning Deferreds.

L{ZooKeeperOperations} is the half of L{curatorish.connection.ZooKeeperConnection}
that knows the requests and their replies: it encodes each request with
L{zkreg.proto}, submits it through the session (C{_submit}, which frames, queues,
times out and matches replies), decodes the reply, registers the watch a successful
read asked for, and maps paths through the chroot.  The session half
(L{curatorish.connection.session}) knows nothing of individual operations.

The ops of a C{multi} (transaction) or C{multiRead} (L{CreateOp}, L{DeleteOp}, ...)
and their results (L{CreateResult}, ..., L{ErrorResult}) are declared here too: one
place for everything about operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.paths import Chroot, validate_path
from curatorish.connection.watches import (
    CHILD,
    DATA,
    EXIST,
    PERSISTENT,
    PERSISTENT_RECURSIVE,
    WatchedEvent,
    Watcher,
    WatchManager,
)
from zkreg.proto import multi as multi_codec
from zkreg.proto.consts import (
    OPEN_ACL_UNSAFE,
    AddWatchMode,
    CreateMode,
    Err,
    KeeperState,
    OpCode,
    WatcherType,
)
from zkreg.proto.jute import Record
from zkreg.proto.records import (
    AddWatchRequest,
    CheckVersionRequest,
    CheckWatchesRequest,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    RemoveWatchesRequest,
    SetACLRequest,
    SetACLResponse,
    SetDataRequest,
    SetDataResponse,
    Stat,
    SyncRequest,
    SyncResponse,
    WhoAmIResponse,
)

#: The largest TTL ZooKeeper accepts (C{EphemeralType.TTL.maxValue()}: 2**40 - 1 ms).
MAX_TTL_MS = (1 << 40) - 1

#: The node ZooKeeper's C{getConfig} reads; never under the chroot.
CONFIG_NODE = "/zookeeper/config"


# -- the ops of a multi (transaction) or multiRead, and their results -----------------
#
# Application-level values: paths are the application's (the connection adds the
# chroot when it encodes them and removes it from the results).


@dataclass(frozen=True)
class CreateOp:
    """
    Create a node (mode CONTAINER uses createContainer, a TTL mode createTTL).
    """

    path: str
    data: bytes = b""
    acl: tuple = OPEN_ACL_UNSAFE
    mode: CreateMode = CreateMode.PERSISTENT
    ttl: int | None = None


@dataclass(frozen=True)
class DeleteOp:
    path: str
    version: int = -1


@dataclass(frozen=True)
class SetDataOp:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class CheckOp:
    """
    Fail the transaction unless the node's version is C{version}.
    """

    path: str
    version: int


@dataclass(frozen=True)
class GetDataOp:
    """A multiRead read of data (no watch)."""

    path: str


@dataclass(frozen=True)
class GetChildrenOp:
    """A multiRead read of children (no watch)."""

    path: str


@dataclass(frozen=True)
class CreateResult:
    path: str
    stat: Any = None


@dataclass(frozen=True)
class DeleteResult:
    pass


@dataclass(frozen=True)
class SetDataResult:
    stat: Any


@dataclass(frozen=True)
class CheckResult:
    pass


@dataclass(frozen=True)
class GetDataResult:
    data: bytes | None
    stat: Any


@dataclass(frozen=True)
class GetChildrenResult:
    children: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorResult:
    """
    An op that did not happen: C{err} is its code (0 for ops of a failed transaction
    that were fine themselves, RUNTIMEINCONSISTENCY for those after the failure).
    """

    err: int


MultiOp = CreateOp | DeleteOp | SetDataOp | CheckOp | GetDataOp | GetChildrenOp


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
    The operations, over what the session provides.

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

    # -- operations -------------------------------------------------------------------

    def create(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Sequence[Any] = OPEN_ACL_UNSAFE,
        mode: CreateMode = CreateMode.PERSISTENT,
        ttl: int | None = None,
    ) -> defer.Deferred[tuple[str, Stat]]:
        """
        Create a node (create2, or createContainer / createTTL for those modes).

        @param ttl: milliseconds, required for and only allowed with the TTL modes.
        @return: Deferred firing with C{(created path, stat)}; the path carries the
            sequence number of a sequential node.
        """
        try:
            opcode, record = self._create_record(path, data, acl, mode, ttl)
        except (ValueError, TypeError, errors.ZooKeeperError) as error:
            return defer.fail(error)

        def complete(err: int, frame: bytes, offset: int) -> tuple[str, Stat]:
            self._check(err, path)
            response, _ = Create2Response.deserialize(frame, offset)
            return self.chroot.to_client(response.path), response.stat

        return self._submit(opcode, record, complete, path)

    def _create_record(
        self,
        path: str,
        data: bytes | None,
        acl: Sequence[Any],
        mode: CreateMode,
        ttl: int | None,
        in_multi: bool = False,
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

    def delete(self, path: str, version: int = -1) -> defer.Deferred[None]:
        """
        Delete a node (if its version is C{version}, unless -1).
        """
        try:
            record = DeleteRequest(self._to_server(path), version)
        except ValueError as error:
            return defer.fail(error)
        return self._submit(OpCode.delete, record, self._reader(path, None), path)

    def exists(self, path: str, watcher: Watcher | None = None) -> defer.Deferred[Stat | None]:
        """
        @param watcher: called once on the node's creation, change or deletion.
        @return: Deferred firing with the node's L{Stat}, or L{None} if it does not exist.
        """
        try:
            record = ExistsRequest(self._to_server(path), watcher is not None)
        except ValueError as error:
            return defer.fail(error)

        def complete(err: int, frame: bytes, offset: int) -> Stat | None:
            if err == Err.NONODE:
                if watcher is not None:
                    self.watches.add(EXIST, path, watcher)
                return None
            self._check(err, path)
            response, _ = ExistsResponse.deserialize(frame, offset)
            if watcher is not None:
                self.watches.add(DATA, path, watcher)
            return response.stat

        return self._submit(OpCode.exists, record, complete, path)

    def get_data(
        self, path: str, watcher: Watcher | None = None
    ) -> defer.Deferred[tuple[bytes | None, Stat]]:
        """
        @return: Deferred firing with C{(data, stat)}.
        """
        try:
            record = GetDataRequest(self._to_server(path), watcher is not None)
        except ValueError as error:
            return defer.fail(error)
        return self._submit(OpCode.getData, record, self._data_reader(path, watcher), path)

    def _data_reader(
        self, path: str, watcher: Watcher | None
    ) -> Callable[[int, bytes, int], tuple[bytes | None, Stat]]:
        def complete(err: int, frame: bytes, offset: int) -> tuple[bytes | None, Stat]:
            self._check(err, path)
            response, _ = GetDataResponse.deserialize(frame, offset)
            if watcher is not None:
                self.watches.add(DATA, path, watcher)
            return response.data, response.stat

        return complete

    def get_config(
        self, watcher: Watcher | None = None
    ) -> defer.Deferred[tuple[bytes | None, Stat]]:
        """
        Read the ensemble configuration (C{/zookeeper/config}, outside any chroot).
        """
        record = GetDataRequest(CONFIG_NODE, watcher is not None)

        def complete(err: int, frame: bytes, offset: int) -> tuple[bytes | None, Stat]:
            self._check(err, CONFIG_NODE)
            response, _ = GetDataResponse.deserialize(frame, offset)
            if watcher is not None:
                self.watches.add(DATA, self.chroot.to_client(CONFIG_NODE), watcher)
            return response.data, response.stat

        return self._submit(OpCode.getData, record, complete, CONFIG_NODE)

    def set_data(self, path: str, data: bytes | None, version: int = -1) -> defer.Deferred[Stat]:
        """
        @return: Deferred firing with the node's new L{Stat}.
        """
        try:
            check_data(data, path)
            record = SetDataRequest(self._to_server(path), data, version)
        except (ValueError, TypeError) as error:
            return defer.fail(error)
        reader = self._reader(path, SetDataResponse)
        return self._submit(OpCode.setData, record, reader, path).addCallback(
            lambda response: response.stat
        )

    def get_acl(self, path: str) -> defer.Deferred[tuple[list[Any], Stat]]:
        """
        @return: Deferred firing with C{(acl list, stat)}.
        """
        try:
            record = GetACLRequest(self._to_server(path))
        except ValueError as error:
            return defer.fail(error)
        reader = self._reader(path, GetACLResponse)
        return self._submit(OpCode.getACL, record, reader, path).addCallback(
            lambda response: (list(response.acl), response.stat)
        )

    def set_acl(self, path: str, acl: Sequence[Any], version: int = -1) -> defer.Deferred[Stat]:
        """
        @param version: the expected ACL version (C{aversion}), -1 for any.
        """
        if not acl:
            return defer.fail(errors.InvalidACLError(path))
        try:
            record = SetACLRequest(self._to_server(path), list(acl), version)
        except ValueError as error:
            return defer.fail(error)
        reader = self._reader(path, SetACLResponse)
        return self._submit(OpCode.setACL, record, reader, path).addCallback(
            lambda response: response.stat
        )

    def get_children(
        self, path: str, watcher: Watcher | None = None, include_stat: bool = False
    ) -> defer.Deferred[Any]:
        """
        @return: Deferred firing with the child names, or C{(names, stat)} with
            C{include_stat} (getChildren2).
        """
        try:
            server_path = self._to_server(path)
        except ValueError as error:
            return defer.fail(error)
        watch = watcher is not None
        opcode: int
        record: Record
        if include_stat:
            opcode, record = OpCode.getChildren2, GetChildren2Request(server_path, watch)
        else:
            opcode, record = OpCode.getChildren, GetChildrenRequest(server_path, watch)

        def complete(err: int, frame: bytes, offset: int) -> Any:
            self._check(err, path)
            if include_stat:
                with_stat, _ = GetChildren2Response.deserialize(frame, offset)
                result: Any = (list(with_stat.children), with_stat.stat)
            else:
                plain, _ = GetChildrenResponse.deserialize(frame, offset)
                result = list(plain.children)
            if watcher is not None:
                self.watches.add(CHILD, path, watcher)
            return result

        return self._submit(opcode, record, complete, path)

    def get_all_children_number(self, path: str) -> defer.Deferred[int]:
        """
        @return: Deferred firing with the number of descendants of C{path}.
        """
        try:
            record = GetAllChildrenNumberRequest(self._to_server(path))
        except ValueError as error:
            return defer.fail(error)
        reader = self._reader(path, GetAllChildrenNumberResponse)
        return self._submit(OpCode.getAllChildrenNumber, record, reader, path).addCallback(
            lambda response: response.totalNumber
        )

    def get_ephemerals(self, prefix_path: str = "/") -> defer.Deferred[list[str]]:
        """
        @return: Deferred firing with this session's ephemeral nodes whose paths
            start with C{prefix_path} (a plain string prefix, as in ZooKeeper).
        """
        server_prefix = self.chroot.to_server(prefix_path)
        reader = self._reader(prefix_path, GetEphemeralsResponse)
        return self._submit(
            OpCode.getEphemerals, GetEphemeralsRequest(server_prefix), reader, prefix_path
        ).addCallback(
            lambda response: [self.chroot.to_client(path) for path in response.ephemerals]
        )

    def sync(self, path: str) -> defer.Deferred[str]:
        """
        Wait until the server we are connected to has caught up with the leader.
        """
        try:
            record = SyncRequest(self._to_server(path))
        except ValueError as error:
            return defer.fail(error)
        reader = self._reader(path, SyncResponse)
        return self._submit(OpCode.sync, record, reader, path).addCallback(
            lambda response: self.chroot.to_client(response.path)
        )

    def check(self, path: str, version: int) -> defer.Deferred[None]:
        """
        The standalone check (ZooKeeper 3.9): fail with L{errors.BadVersionError}
        unless the node's version is C{version}.  Apache ZooKeeper 3.8 (and zkreg, which
        follows it) does not answer it at all, so use it with a request timeout; a
        transaction with a L{CheckOp} works everywhere.
        """
        try:
            record = CheckVersionRequest(self._to_server(path), version)
        except ValueError as error:
            return defer.fail(error)
        return self._submit(OpCode.check, record, self._reader(path, None), path)

    def add_watch(
        self, path: str, watcher: Watcher, mode: AddWatchMode = AddWatchMode.PERSISTENT
    ) -> defer.Deferred[None]:
        """
        Add a persistent (or persistent recursive) watch: it stays until removed, and
        a recursive one sees every change below C{path} too (no child events).
        """
        try:
            record = AddWatchRequest(self._to_server(path), int(mode))
        except ValueError as error:
            return defer.fail(error)
        kind = PERSISTENT if mode == AddWatchMode.PERSISTENT else PERSISTENT_RECURSIVE

        def complete(err: int, frame: bytes, offset: int) -> None:
            self._check(err, path)
            self.watches.add(kind, path, watcher)

        return self._submit(OpCode.addWatch, record, complete, path)

    def remove_watcher(
        self,
        path: str,
        watcher: Watcher,
        watcher_type: WatcherType = WatcherType.Any,
        local: bool = False,
    ) -> defer.Deferred[None]:
        """
        Remove one watcher (Java's C{removeWatches(path, watcher, type, local)}): the
        server is asked whether it has such a watch (checkWatches); the watcher is
        then dropped here and told with a C{*WatchRemoved} event.

        @param local: do not ask the server (works while disconnected).
        @raise errors.NoWatcherError: (in the Deferred) when there is no such watcher.
        """
        return self._remove_watches(path, watcher, watcher_type, local, OpCode.checkWatches)

    def remove_all_watches(
        self, path: str, watcher_type: WatcherType = WatcherType.Any, local: bool = False
    ) -> defer.Deferred[None]:
        """
        Remove every watcher of C{watcher_type} on C{path}, here and on the server
        (removeWatches).
        """
        return self._remove_watches(path, None, watcher_type, local, OpCode.removeWatches)

    def _remove_watches(
        self,
        path: str,
        watcher: Watcher | None,
        watcher_type: WatcherType,
        local: bool,
        opcode: int,
    ) -> defer.Deferred[None]:
        try:
            server_path = self._to_server(path)
        except ValueError as error:
            return defer.fail(error)
        if not self.watches.contains(path, watcher, watcher_type):
            return defer.fail(errors.NoWatcherError(path))

        def remove_here(_: object = None) -> None:
            for removed, event_type in self.watches.remove(path, watcher, watcher_type):
                event = WatchedEvent(event_type, self._current_keeper_state(), path)
                self._call_watcher(removed, event)

        if local:
            remove_here()
            return defer.succeed(None)
        # Java's wire types are Children, Data and Any; persistent ones go as Any.
        wire_type = watcher_type if watcher_type <= WatcherType.Any else WatcherType.Any
        record_class = (
            CheckWatchesRequest if opcode == OpCode.checkWatches else RemoveWatchesRequest
        )
        record = record_class(server_path, int(wire_type))
        return self._submit(opcode, record, self._reader(path, None), path).addCallback(remove_here)

    def who_am_i(self) -> defer.Deferred[list[tuple[str, str]]]:
        """
        @return: Deferred firing with this session's authenticated ids as
            C{(scheme, user)} pairs.
        """
        reader = self._reader(None, WhoAmIResponse)
        return self._submit(OpCode.whoAmI, None, reader, None).addCallback(
            lambda response: [(info.authScheme, info.user) for info in response.clientInfo]
        )

    # -- transactions -----------------------------------------------------------------

    def multi(self, operations: Sequence[MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Apply the operations atomically.

        @return: Deferred firing with one result per op (L{CreateResult},
            L{DeleteResult}, ...).  When the transaction fails, it fails
            with the first failing op's error, whose C{results} attribute holds every
            op's L{ErrorResult} and whose C{path} is that op's path.
        """
        return self._multi(OpCode.multi, operations, raise_on_error=True)

    def multi_read(self, operations: Sequence[MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Read several nodes in one round trip (L{GetDataOp},
        L{GetChildrenOp}); a failed read is an L{ErrorResult} in
        its place, not a failure of the whole.
        """
        return self._multi(OpCode.multiRead, operations, raise_on_error=False)

    def _multi(
        self, opcode: int, operations: Sequence[MultiOp], raise_on_error: bool
    ) -> defer.Deferred[list[Any]]:
        try:
            encoded = [self._multi_record(op) for op in operations]
            body = multi_codec.encode_request(encoded)
        except (ValueError, TypeError, errors.ZooKeeperError) as error:
            return defer.fail(error)
        op_paths = [op.path for op in operations]

        def complete(err: int, frame: bytes, offset: int) -> list[Any]:
            if err != 0 and offset >= len(frame):
                raise errors.error_for_code(err, None)
            raw, _ = multi_codec.decode_response(frame, offset)
            results = [self._multi_result(kind, code, record) for kind, code, record in raw]
            if raise_on_error:
                for index, result in enumerate(results):
                    if isinstance(result, ErrorResult) and result.err != 0:
                        path = op_paths[index] if index < len(op_paths) else None
                        error = errors.error_for_code(result.err, path)
                        error.results = results  # type: ignore[attr-defined]
                        raise error
                if err != 0:
                    raise errors.error_for_code(err, None)
            return results

        return self._submit(opcode, body, complete, None)

    def _multi_record(self, op: MultiOp) -> tuple[int, Record]:
        if isinstance(op, CreateOp):
            return self._create_record(op.path, op.data, op.acl, op.mode, op.ttl, in_multi=True)
        if isinstance(op, DeleteOp):
            return OpCode.delete, DeleteRequest(self._to_server(op.path), op.version)
        if isinstance(op, SetDataOp):
            check_data(op.data, op.path)
            return OpCode.setData, SetDataRequest(self._to_server(op.path), op.data, op.version)
        if isinstance(op, CheckOp):
            return OpCode.check, CheckVersionRequest(self._to_server(op.path), op.version)
        if isinstance(op, GetDataOp):
            return OpCode.getData, GetDataRequest(self._to_server(op.path), False)
        if isinstance(op, GetChildrenOp):
            return OpCode.getChildren, GetChildrenRequest(self._to_server(op.path), False)
        raise ValueError(f"not a multi operation: {op!r}")

    def _multi_result(self, kind: int, err: int, record: Record | None) -> Any:
        if kind == OpCode.error:
            return ErrorResult(err)
        if kind == OpCode.create:
            assert isinstance(record, CreateResponse)
            return CreateResult(self.chroot.to_client(record.path))
        if kind == OpCode.create2:
            assert isinstance(record, Create2Response)
            return CreateResult(self.chroot.to_client(record.path), record.stat)
        if kind == OpCode.delete:
            return DeleteResult()
        if kind == OpCode.check:
            return CheckResult()
        if kind == OpCode.setData:
            assert record is not None
            return SetDataResult(record.stat)
        if kind == OpCode.getData:
            assert record is not None
            return GetDataResult(record.data, record.stat)
        if kind == OpCode.getChildren:
            assert record is not None
            return GetChildrenResult(list(record.children))
        raise errors.MarshallingError(None, f"unexpected multi result type {kind}")
