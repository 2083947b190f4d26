"""
The requests that change nothing on the server: exists, get data, get config, get
ACL, get children, the count of descendants, the session's ephemerals, sync, the
standalone check and whoAmI.

L{ReadRequests}, a part of L{curatorish.connection.session.ZooKeeperConnection}
(over L{curatorish.connection.operations.ZooKeeperOperations}), encodes each of them,
submits it and reads the reply; a read that asked for a watch registers it in the
session's L{WatchManager} once the reply says the server set it (an C{exists} on a
missing node, as an I{exist} watch).  Separate from the writes
(L{curatorish.connection.write_requests}): a read validates nothing but its path, and
the one-shot watches come with the reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.operations import ZooKeeperOperations
from curatorish.connection.watches import CHILD, DATA, EXIST, Watcher
from zkreg.proto.consts import Err, OpCode
from zkreg.proto.jute import Record
from zkreg.proto.records import (
    CheckVersionRequest,
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
    Stat,
    SyncRequest,
    SyncResponse,
    WhoAmIResponse,
)

#: The node ZooKeeper's C{getConfig} reads; never under the chroot.
CONFIG_NODE = "/zookeeper/config"

#: Paths whose getData request is kept encoded (L{ReadRequests._prepare_read}); all
#: are forgotten when there are this many, so a program reading many paths keeps few.
PREPARED_READS_MAX = 256


class ReadRequests(ZooKeeperOperations):
    """
    The reads, for the session: over C{_submit}, the reply readers, C{_to_server},
    the chroot and the session's L{WatchManager} (L{ZooKeeperOperations}).
    """

    #: path -> (encoded getData request without a watch, its reply reader)
    _prepared_reads: dict[str, tuple[bytes, Callable[[int, bytes, int], Any]]]

    # -- reads ------------------------------------------------------------------------

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
        if watcher is None and type(path) is str:
            prepared = self._prepared_reads.get(path)
            if prepared is None:
                try:
                    prepared = self._prepare_read(path)
                except ValueError as error:
                    return defer.fail(error)
            return self._submit(OpCode.getData, prepared[0], prepared[1], path)
        try:
            record = GetDataRequest(self._to_server(path), True)
        except ValueError as error:
            return defer.fail(error)
        return self._submit(OpCode.getData, record, self._data_reader(path, watcher), path)

    def _prepare_read(self, path: str) -> tuple[bytes, Callable[[int, bytes, int], Any]]:
        """
        The encoded request and the reply reader of a getData of C{path} without a
        watch, kept for the next one: they depend on nothing but the path (the
        chroot is fixed), and a program reads the same few paths over and over, so
        a read is a lookup instead of a check, an encoding and a new reader.

        @raise ValueError: for an invalid path (then nothing is kept).
        """
        body = GetDataRequest(self._to_server(path), False).serialize()
        prepared = (body, self._data_reader(path, None))
        reads = self._prepared_reads
        if len(reads) >= PREPARED_READS_MAX:
            reads.clear()
        reads[path] = prepared
        return prepared

    def _data_reader(
        self, path: str, watcher: Watcher | None
    ) -> Callable[[int, bytes, int], tuple[bytes | None, Stat]]:
        def complete(err: int, frame: bytes, offset: int) -> tuple[bytes | None, Stat]:
            if err:
                raise errors.error_for_code(err, path)
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

    def who_am_i(self) -> defer.Deferred[list[tuple[str, str]]]:
        """
        @return: Deferred firing with this session's authenticated ids as
            C{(scheme, user)} pairs.
        """
        reader = self._reader(None, WhoAmIResponse)
        return self._submit(OpCode.whoAmI, None, reader, None).addCallback(
            lambda response: [(info.authScheme, info.user) for info in response.clientInfo]
        )
