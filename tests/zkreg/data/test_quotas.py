"""Quota stats nodes kept up to date as ZooKeeper's DataTree does (zkCli setquota)."""

from __future__ import annotations

from datahelpers import Harness, replay

from zkreg.data.quotas import format_stats, parse_stats
from zkreg.data.replica import copy_tree


def stats_of(h: Harness, path: str) -> bytes:
    return h.tree.get("/zookeeper/quota" + path + "/zookeeper_stats").data


def setquota(h: Harness, path: str) -> None:
    quota = "/zookeeper/quota" + path
    h.create("/zookeeper/quota" + path.rsplit("/", 1)[0]) if path.count("/") > 1 else None
    assert h.create(quota).err == 0
    assert h.create(quota + "/zookeeper_limits", b"count=10,bytes=-1").err == 0
    assert h.create(quota + "/zookeeper_stats", b"count=1,bytes=0").err == 0


def test_stats_follow_creates_deletes_and_set_data():
    h = Harness()
    h.create("/q", b"abc")
    h.create("/q/old", b"12")
    setquota(h, "/q")
    # Creating the stats node recounts the subtree: /q and /q/old.
    assert stats_of(h, "/q") == b"count=2,bytes=5"
    stat_before = h.stat("/zookeeper/quota/q/zookeeper_stats")
    h.create("/q/a", b"12345")
    h.create("/q/b", b"")
    h.set_data("/q/a", b"1234567")
    h.delete("/q/b")
    h.delete("/q/old")
    assert stats_of(h, "/q") == b"count=2,bytes=10"
    # The stats node's stat does not move: the server writes its data without a txn.
    stat_after = h.stat("/zookeeper/quota/q/zookeeper_stats")
    assert (stat_after.mzxid, stat_after.version) == (stat_before.mzxid, stat_before.version)
    # Nodes outside the quota'd path leave it alone.
    h.create("/other", b"xyz")
    assert stats_of(h, "/q") == b"count=2,bytes=10"


def test_deepest_quota_wins_and_deleting_limits_stops_tracking():
    h = Harness()
    h.create("/q")
    h.create("/q/sub")
    setquota(h, "/q")
    setquota(h, "/q/sub")
    h.create("/q/sub/x", b"1")
    assert stats_of(h, "/q/sub") == b"count=2,bytes=1"
    assert stats_of(h, "/q") == b"count=2,bytes=0"
    h.delete("/zookeeper/quota/q/sub/zookeeper_limits")
    h.create("/q/sub/y", b"22")
    assert stats_of(h, "/q/sub") == b"count=2,bytes=1"
    assert stats_of(h, "/q") == b"count=3,bytes=2"


def test_replay_copy_and_rebuild_agree():
    h = Harness()
    h.create("/q")
    setquota(h, "/q")
    h.create("/q/a", b"123")
    assert replay(h.log).digest() == h.tree.digest()
    copy = copy_tree(h.tree)
    copy.quotas.paths.clear()
    copy.quotas.rebuild()
    assert copy.quotas.paths == h.tree.quotas.paths
    assert copy.digest() == h.tree.digest()


def test_stats_track_format():
    assert parse_stats(b"count=1,bytes=2=;countHardLimit=5") == {
        "count": 1,
        "bytes": 2,
        "countHardLimit": 5,
    }
    assert format_stats({"count": 1, "bytes": 2, "countHardLimit": 5, "byteHardLimit": 9}) == (
        b"count=1,bytes=2=;byteHardLimit=9;countHardLimit=5"
    )
    assert format_stats({}) == b"count=-1,bytes=-1"
