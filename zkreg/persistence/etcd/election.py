"""
Leadership of the data tier: one etcd key on a lease, taken with the epoch bump.

A candidate grants itself a lease and, in one txn, creates C{<prefix>/leader} on it
(if absent) and bumps C{<prefix>/epoch} (if unchanged since it read it).  The txn's
revision is the leader key's create revision: the leader's fencing token, which
every log append compares (L{zkreg.persistence.etcd.log}).

The leader keeps its lease alive.  It considers itself deposed when a keep-alive
says the lease is gone, or when it could not renew for a whole TTL plus
L{ELECTION_GRACE_S} by its own clock (a paused process finds that out when it
wakes).  The grace is there because etcd losing its own Raft leader does not end
our lease: keep-alives go unanswered until etcd elects another leader (one to two
election timeouts), and that leader extends every lease by a TTL; stepping down
after a bare TTL made every etcd leader loss a data-server failover.  Safety
never depends on noticing in time: a deposed leader's appends fail on the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from zkreg.persistence.etcd.client import Compare, EtcdClient, EtcdError, EtcdUnavailable, put_op
from zkreg.persistence.etcd.layout import Layout

__all__ = ["ELECTION_GRACE_S", "Leadership", "campaign"]

_log = Logger(namespace="zkreg.persistence.etcd.election")

#: how long past its TTL a leader whose keep-alives go unanswered still counts
#: itself leader: an etcd Raft election (etcd's default election timeout is 1 s; an
#: election takes one to two of them), after which the lease lives a TTL more.
ELECTION_GRACE_S = 3.0


class Leadership:
    """
    Won leadership: the token, the epoch, and the lease kept alive.

    @ivar token: the fencing token.
    @ivar epoch: the ZooKeeper epoch this leader writes in.
    @ivar lease: the etcd lease id holding the leader key.
    @ivar lost: whether leadership is known lost.
    """

    def __init__(
        self,
        client: EtcdClient,
        layout: Layout,
        token: int,
        epoch: int,
        lease: int,
        ttl_s: int,
        clock: Any,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._layout = layout
        self.token = token
        self.epoch = epoch
        self.lease = lease
        self.ttl_s = ttl_s
        self.lost = False
        self._monotonic = monotonic
        self._renewed = monotonic()
        self._on_lost: list[Callable[[str], None]] = []
        self._loop = task.LoopingCall(self._renew)
        self._loop.clock = clock
        self._renewing = False

    def start(self, on_lost: Callable[[str], None]) -> None:
        """Keep the lease alive (every third of its TTL); C{on_lost(why)} when lost."""
        self._on_lost.append(on_lost)
        self._loop.start(max(self.ttl_s / 4.0, 0.1), now=False)

    def _renew(self) -> None:
        if self.lost:
            return
        if self._monotonic() - self._renewed > self.ttl_s + ELECTION_GRACE_S:
            self.lose(f"lease {self.lease:#x} not renewed for {self.ttl_s + ELECTION_GRACE_S} s")
            return
        if self._renewing:
            return
        self._renewing = True
        renewed = self._client.keep_alive(self.lease)
        renewed.addCallbacks(self._renewed_ok, self._renew_failed)
        renewed.addBoth(self._done_renewing)

    def _done_renewing(self, _ignored: Any) -> None:
        self._renewing = False

    def _renewed_ok(self, ttl: int) -> None:
        if ttl <= 0:
            self.lose(f"lease {self.lease:#x} expired")
        else:
            self._renewed = self._monotonic()

    def _renew_failed(self, failure: Any) -> None:
        if failure.check(EtcdUnavailable):
            return  # keep trying until a TTL has passed
        if failure.check(EtcdError):
            self.lose(f"lease {self.lease:#x}: {failure.getErrorMessage()}")
            return
        _log.failure("renewing the lease failed", failure)

    def lose(self, why: str) -> None:
        """Leadership is gone: stop renewing and tell the listeners once."""
        if self.lost:
            return
        self.lost = True
        if self._loop.running:
            self._loop.stop()
        _log.warn("leadership lost: {why}", why=why)
        for on_lost in self._on_lost:
            on_lost(why)

    def resign(self) -> defer.Deferred:
        """Give leadership up now (revoke the lease: the key goes at once)."""
        self.lost = True
        if self._loop.running:
            self._loop.stop()
        revoked = self._client.revoke(self.lease)
        revoked.addErrback(lambda _: None)
        return revoked


@defer.inlineCallbacks
def campaign(client: EtcdClient, layout: Layout, identity: bytes, ttl_s: int, clock: Any = None):
    """
    Try once to become leader.

    @return: Deferred firing with a L{Leadership} (not yet renewing: call
        L{Leadership.start}), or L{None} when another server leads.
    """
    if clock is None:
        from twisted.internet import reactor as clock
    current = yield client.get(layout.leader)
    if current is not None:
        return None
    epoch_kv = yield client.get(layout.epoch)
    epoch = int(epoch_kv.value) if epoch_kv is not None else 0
    epoch_mod = epoch_kv.mod_revision if epoch_kv is not None else 0
    lease = yield client.grant(ttl_s)
    compare = [
        Compare.create_revision(layout.leader, 0),
        Compare.mod_revision(layout.epoch, epoch_mod),
    ]
    success = [
        put_op(layout.leader, identity, lease),
        put_op(layout.epoch, str(epoch + 1).encode("ascii")),
    ]
    try:
        succeeded, revision, _ = yield client.txn(compare, success)
    except Exception:
        yield client.revoke(lease).addErrback(lambda _: None)
        raise
    if not succeeded:
        yield client.revoke(lease).addErrback(lambda _: None)
        return None
    _log.info("leadership taken: token {token}, epoch {epoch}", token=revision, epoch=epoch + 1)
    return Leadership(client, layout, revision, epoch + 1, lease, ttl_s, clock)
