"""
The data role on etcd (C{twistd zkreg --role data --etcd ...}): one active data
server per etcd cluster and prefix, the others standing by with a warm tree.

A data server starts as a standby: it loads the tree from etcd (snapshot and log)
and follows the log by watch.  Every L{CAMPAIGN_S} it tries to take leadership
(L{zkreg.persistence.etcd.election}); once it wins it reads the log to its end, builds
the L{zkreg.data.server.DataServer} on its warm tree with the new epoch and the
fenced L{zkreg.persistence.etcd.log.EtcdLog}, and only then listens for session
servers (C{--data-link-listen}).  A standby does not listen, so session servers given
every data server in C{--data-server} find the active one by trying them in turn.

When leadership goes (its lease lost, or an append refused by the fence) it steps
down in this order: stop listening and drop every session server's link, so that
they resubmit their writes in flight to the new leader (exactly once: the stamps);
then fail what was pending; then load the tree from etcd again and stand by.

Each data server also keeps C{<prefix>/members/<data link>} (on its own short lease)
saying its state and applied zxid, for C{zkreg status --etcd}.

Snapshots are taken by a forked child (L{zkreg.persistence.etcd.cache}): the active
data server uploads them to etcd; with C{--data-dir} every data server, active or
standby, also keeps its own there, which it loads instead of etcd's when the etcd
log continues them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.config import ServerConfig
from zkreg.persistence.etcd.cache import LocalSnapshot, LocalSnapshots
from zkreg.persistence.etcd.client import EtcdClient, EtcdError
from zkreg.persistence.etcd.config import etcd_endpoints
from zkreg.persistence.etcd.election import Leadership, campaign
from zkreg.persistence.etcd.layout import Layout
from zkreg.persistence.etcd.log import EtcdLog, Fenced
from zkreg.persistence.etcd.reader import LogReader
from zkreg.persistence.etcd.snapshots import upload_snapshot
from zkreg.startup import describe_listen_failure, stop_running_startup

__all__ = ["EtcdDataRoleService", "data_link_address"]

_log = Logger(namespace="zkreg.etcd_role")

#: how often a standby tries to take leadership
CAMPAIGN_S = 0.2
#: the leader's lease (DESIGN.md: a few seconds; failover within about this)
LEASE_TTL_S = 2
#: how often the member key is refreshed, and its lease
MEMBER_REFRESH_S = 1.0
MEMBER_TTL_S = 5
#: how often the leader checks whether a snapshot is due
SNAPSHOT_CHECK_S = 1.0


def data_link_address(listen: str) -> str:
    """
    @param listen: a server endpoint (C{tcp:2888:interface=127.0.0.1}).
    @return: the client endpoint session servers use for it (C{tcp:127.0.0.1:2888}).
    """
    fields = listen.split(":")
    port = ""
    host = "127.0.0.1"
    for field in fields[1:]:
        if field.startswith("interface="):
            host = field.split("=", 1)[1] or host
        elif "=" not in field and not port:
            port = field
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"tcp:{host}:{port}"


class EtcdDataRoleService(service.MultiService):
    """
    A data server on etcd: standby or active.

    @ivar state: C{"loading"}, C{"standby"} or C{"active"}.
    @ivar data_server: the L{DataServer} while active, else L{None}.
    @ivar reader: the L{LogReader} while standing by.
    @ivar leadership: the L{Leadership} while active.
    @ivar log: the L{EtcdLog} while active.
    @ivar takeovers: how many times this server became active.
    @ivar snapshots: where its snapshots are written (its local cache with C{--data-dir}).
    @ivar snapshots_uploaded: snapshots this server wrote to etcd.
    @ivar local_snapshots: snapshots it wrote to its cache only (as a standby).
    """

    def __init__(
        self,
        config: ServerConfig,
        reactor: Any = None,
        operations: Any = None,
        cache_dir: str | None = None,
    ) -> None:
        """
        @param cache_dir: the local snapshot cache (C{--data-dir}), or L{None}.
        @raise zkreg.persistence.dirlock.DataDirLocked: another process uses it.
        @raise zkreg.persistence.dirlock.DataDirUnwritable: it cannot be written.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        assert config.etcd is not None and config.data_link_listen is not None
        self.config = config
        self.reactor = reactor
        self.operations = operations
        self.endpoints = etcd_endpoints(config.etcd)
        self.layout = Layout(config.etcd_prefix)
        self.address = data_link_address(config.data_link_listen)
        self.client = EtcdClient(self.endpoints, reactor)
        self.state = "loading"
        self.data_server: Any = None
        self.reader: LogReader | None = None
        self.leadership: Leadership | None = None
        self.log: EtcdLog | None = None
        self.link_factory: Any = None
        self._listening: Any = None
        self._campaigning = False
        self._member_lease = 0
        self._snapshotting = False
        self._snapshot_zxid = 0
        self._loaded_from = "none"
        self._loaded_zxid = 0
        self.takeovers = 0
        self.snapshots_uploaded = 0
        self.local_snapshots = 0
        self.snapshots = LocalSnapshots(cache_dir, config.snap_retain_count, config.fsync, reactor)
        self._loops: list[task.LoopingCall] = []
        if operations is not None:
            operations.add_etcd_data_role(self)

    # -- service -------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        for interval, work in (
            (CAMPAIGN_S, self._campaign),
            (MEMBER_REFRESH_S, self._refresh_member),
            (SNAPSHOT_CHECK_S, self._maybe_snapshot),
        ):
            loop = task.LoopingCall(work)
            loop.clock = self.reactor
            loop.start(interval, now=False)
            self._loops.append(loop)
        self._stand_by()

    @defer.inlineCallbacks
    def stopService(self):
        for loop in self._loops:
            if loop.running:
                loop.stop()
        if self.reader is not None:
            self.reader.stop()
        yield super().stopService()
        if self.leadership is not None and not self.leadership.lost:
            yield self.leadership.resign()
        if self._member_lease:
            yield self.client.revoke(self._member_lease).addErrback(lambda _: None)
        yield self.client.close()
        self.snapshots.close()

    # -- standing by -----------------------------------------------------------------

    def _stand_by(self) -> None:
        self.state = "loading"
        reader = LogReader(
            self.client,
            self.layout,
            self.config.extended_types,
            self.reactor,
            cache=self.snapshots,
        )
        self.reader = reader

        def loaded(_ignored: Any) -> None:
            if self.reader is not reader or not self.running:
                return
            self.state = "standby"
            self._snapshot_zxid = reader.loaded_zxid
            reader.follow()
            _log.info(
                "zkreg (data, standby) on etcd {etcd}{prefix}: tree at zxid {zxid:#x}",
                etcd=",".join(self.endpoints),
                prefix=self.config.etcd_prefix,
                zxid=reader.tree.last_zxid,
            )

        def failed(failure: Failure) -> None:
            if self.reader is not reader or not self.running:
                return
            _log.warn(
                "loading the tree from etcd failed: {why}; retrying", why=failure.getErrorMessage()
            )
            retry = task.deferLater(self.reactor, 1.0, self._stand_by)
            retry.addErrback(lambda _: None)

        reader.load().addCallbacks(loaded, failed)

    def _campaign(self) -> None:
        if self.state != "standby" or self._campaigning:
            return
        self._campaigning = True
        attempt = campaign(
            self.client, self.layout, self.address.encode("utf-8"), LEASE_TTL_S, self.reactor
        )
        attempt.addCallback(self._won)
        attempt.addErrback(self._campaign_failed)
        attempt.addBoth(self._campaign_done)

    def _campaign_done(self, _ignored: Any) -> None:
        self._campaigning = False

    def _campaign_failed(self, failure: Failure) -> None:
        if not failure.check(EtcdError):
            _log.failure("campaign failed", failure)

    @defer.inlineCallbacks
    def _won(self, leadership: Leadership | None):
        if leadership is None:
            return
        if not self.running or self.state != "standby" or self.reader is None:
            yield leadership.resign()
            return
        reader = self.reader
        reader.stop()
        self.leadership = leadership
        try:
            # The log is final now: a deposed leader's appends fail on the fence.
            yield reader.catch_up()
        except Exception:
            _log.failure("reading the log at takeover failed; giving leadership up")
            yield leadership.resign()
            self.leadership = None
            self._stand_by()
            return
        self._become_active(leadership, reader)

    def _become_active(self, leadership: Leadership, reader: LogReader) -> None:
        from zkreg.data.server import DataServer
        from zkreg.link.serve import DataLinkServerFactory
        from zkreg.roles import data_link_service

        config = self.config
        self.reader = None
        self._loaded_from, self._loaded_zxid = reader.loaded_from, reader.loaded_zxid
        self.log = EtcdLog(
            self.client,
            self.layout,
            leadership.token,
            reader.next_seq,
            reader.tree.last_zxid,
            self.reactor,
            on_fenced=self._fenced,
            last_slot_value=reader.last_slot_value,
        )
        self.data_server = DataServer(
            config,
            log=self.log,
            clock=self.reactor,
            tree=reader.tree,
            epoch=leadership.epoch,
            replies=reader.replies,
        )
        self.data_server.setServiceParent(self)
        self._snapshot_zxid = reader.tree.last_zxid
        self.link_factory = DataLinkServerFactory(self.data_server)
        try:
            # Over mutual TLS when the data-link stores are given, as any data server.
            self._listening = data_link_service(config, self.link_factory)
            self._listening.setServiceParent(self)
        except (CannotListenError, OverflowError) as error:
            stop_running_startup(self.reactor, describe_listen_failure(error))
            return
        operations = self.operations
        if operations is not None and operations.admin is not None:
            operations.admin.data_server = self.data_server
        self.state = "active"
        self.takeovers += 1
        leadership.start(self._lost)
        _log.info(
            "zkreg (data, active) on etcd: epoch {epoch}, token {token}, tree at zxid "
            "{zxid:#x}; session servers on {listen}",
            epoch=leadership.epoch,
            token=leadership.token,
            zxid=reader.tree.last_zxid,
            listen=config.data_link_listen,
        )

    # -- stepping down -----------------------------------------------------------------

    def _lost(self, why: str) -> None:
        """The lease is gone: fail the log (which steps down first)."""
        if self.log is not None:
            self.log.fail(Failure(Fenced(f"leadership lost: {why}")))

    def _fenced(self) -> None:
        """The log refused an append, or the lease went: step down, then stand by."""
        if self.state != "active":
            return
        _log.warn("stepping down: no longer the leader; standing by")
        self.state = "loading"
        if self.leadership is not None and not self.leadership.lost:
            self.leadership.lose("an append was fenced off")
        # Drop session servers first: they hold and resubmit their writes in flight.
        if self._listening is not None:
            listening, self._listening = self._listening, None
            listening.disownServiceParent()
        if self.link_factory is not None:
            for connection in tuple(self.link_factory.fanout.connections):
                transport = connection.transport
                if transport is not None:
                    transport.abortConnection()
        data_server, self.data_server = self.data_server, None
        if self.operations is not None and self.operations.admin is not None:
            self.operations.admin.data_server = None
        if data_server is not None:
            # Failing the log's pending appends (right after this returns) fails their
            # writes; nobody hears of it but the dropped links.
            self.reactor.callLater(0, data_server.disownServiceParent)
        self.log = None
        self.leadership = None
        self.reactor.callLater(0, self._stand_by)

    # -- snapshots -----------------------------------------------------------------------

    def _due(self, zxid: int) -> bool:
        """Whether C{snap-count} txns were applied since the last snapshot."""
        covered = self._snapshot_zxid
        # txns since the last snapshot (a new epoch restarts the counter at 1)
        same_epoch = zxid >> 32 == covered >> 32
        since = (zxid & 0xFFFFFFFF) - (covered & 0xFFFFFFFF if same_epoch else 0)
        return since >= self.config.snap_count

    def _maybe_snapshot(self) -> None:
        if self._snapshotting:
            return
        if self.state == "active":
            self._maybe_upload_snapshot()
        elif self.state == "standby" and self.snapshots.persistent:
            self._maybe_local_snapshot()

    def _maybe_upload_snapshot(self) -> None:
        log = self.log
        data_server = self.data_server
        if log is None or data_server is None or log.last_slot_value is None:
            return
        tree = data_server.tree
        # Only at a group boundary with nothing in flight: the tree is then exactly
        # the log up to the last slot written.
        if data_server.in_flight or tree.last_zxid != log.durable_zxid:
            return
        if log.next_seq != log.durable_seq + 1 or not self._due(tree.last_zxid):
            return
        self._snapshotting = True
        # The child is forked now, before take() returns: the tree as it is here.
        taking = self.snapshots.take(
            tree, data_server.replies, log.durable_seq, log.last_slot_value
        )
        taking.addCallback(self._upload, log.token)
        taking.addErrback(
            lambda failure: _log.warn(
                "snapshot to etcd failed: {why}", why=failure.getErrorMessage()
            )
        )
        taking.addBoth(self._snapshot_done)

    @defer.inlineCallbacks
    def _upload(self, local: LocalSnapshot, token: int):
        try:
            yield upload_snapshot(
                self.client,
                self.layout,
                local.path,
                local.zxid,
                local.seq,
                token,
                local.file_digest,
            )
        finally:
            self.snapshots.discard(local)
        self.snapshots_uploaded += 1
        self._snapshot_zxid = local.zxid

    def _maybe_local_snapshot(self) -> None:
        reader = self.reader
        if reader is None or not reader.at_group_boundary or not self._due(reader.tree.last_zxid):
            return
        assert reader.last_slot_value is not None
        self._snapshotting = True
        taking = self.snapshots.take(
            reader.tree, reader.replies, reader.next_seq - 1, reader.last_slot_value
        )

        def taken(local: LocalSnapshot) -> None:
            self.local_snapshots += 1
            self._snapshot_zxid = local.zxid

        taking.addCallbacks(
            taken,
            lambda failure: _log.warn(
                "local snapshot failed: {why}", why=failure.getErrorMessage()
            ),
        )
        taking.addBoth(self._snapshot_done)

    def _snapshot_done(self, _ignored: Any) -> None:
        self._snapshotting = False

    def standby_tree(self) -> Any:
        """
        @return: the warm tree while standing by (loaded and following the log),
            else L{None}.
        """
        if self.state != "standby" or self.reader is None:
            return None
        return self.reader.tree

    # -- the member key ----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What this data server reports about itself (status, admin, member key)."""
        if self.data_server is not None:
            zxid = self.data_server.last_zxid
        elif self.reader is not None:
            zxid = self.reader.tree.last_zxid
        else:
            zxid = 0
        described: dict[str, Any] = {
            "state": self.state,
            "data_link": self.address,
            "applied_zxid": zxid,
            "pid": os.getpid(),
            "etcd": self.endpoints,
            "etcd_endpoint": self.client.current_endpoint,
            "etcd_prefix": self.config.etcd_prefix,
            "takeovers": self.takeovers,
            "snapshots_uploaded": self.snapshots_uploaded,
            "local_snapshots": self.local_snapshots,
            "snapshot_cache": self.snapshots.directory if self.snapshots.persistent else None,
            "longest_snapshot_pause_ms": round(self.snapshots.longest_pause * 1000, 3),
        }
        if self.reader is not None:
            described["loaded_from"] = self.reader.loaded_from
            described["loaded_zxid"] = self.reader.loaded_zxid
        else:
            described["loaded_from"] = self._loaded_from
            described["loaded_zxid"] = self._loaded_zxid
        if self.leadership is not None:
            described["epoch"] = self.leadership.epoch
            described["token"] = self.leadership.token
        return described

    @defer.inlineCallbacks
    def _refresh_member(self):
        client = self.client
        try:
            if self._member_lease:
                ttl = yield client.keep_alive(self._member_lease)
                if ttl <= 0:
                    self._member_lease = 0
            if not self._member_lease:
                self._member_lease = yield client.grant(MEMBER_TTL_S)
            key = self.layout.members + self.address.encode("utf-8")
            value = json.dumps(self.describe()).encode("utf-8")
            yield client.put(key, value, self._member_lease)
        except EtcdError:
            pass
