"""
Durability of a real C{twistd zkreg} process, with kazoo clients.

  - kill -9 under concurrent write load from several clients, restart: every write a
    client saw acknowledged is there with its exact data and stat, and nothing a
    failed multi rejected shows up;
  - the same after a torn tail (a partial record written after the last good one);
  - the same after a crash in the middle of a snapshot;
  - a restart replays to the identical tree (a digest of every path, data and stat);
  - sessions survive a restart: a session that reconnects keeps its ephemerals, one
    that never comes back loses them after its timeout counted from the restart.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

import pytest

from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

STAT_FIELDS = (
    "czxid",
    "mzxid",
    "ctime",
    "mtime",
    "version",
    "cversion",
    "aversion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
    "pzxid",
)


class DurableZkregServer(ZkregServer):
    """
    C{twistd zkreg} on its own data directory, restartable.
    """

    def __init__(self, *extra: str) -> None:
        super().__init__(extra_args=list(extra))


@pytest.fixture
def durable_server():
    """Factory of zkreg servers killed and removed at teardown."""
    started: list[DurableZkregServer] = []

    def make(*extra: str) -> DurableZkregServer:
        server = DurableZkregServer(*extra)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.cleanup()


def connect(server: ZkregServer, timeout: float = 10.0) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=server.hosts, timeout=timeout)
    client.start(timeout=15)
    return client


def close(client: Any) -> None:
    try:
        client.stop()
    finally:
        client.close()


def stat_tuple(stat: Any) -> tuple:
    return tuple(getattr(stat, name) for name in STAT_FIELDS)


def tree_digest(client: Any, root: str = "/") -> tuple[str, int]:
    """
    A digest of the whole tree as a client sees it: every path, its data and every
    stat field, children in sorted order.

    @return: the hex digest and the number of nodes.
    """
    sha = hashlib.sha256()
    count = 0
    stack = [root]
    while stack:
        path = stack.pop()
        data, stat = client.get(path)
        sha.update(path.encode() + b"\0" + (data or b"") + b"\0" + repr(stat_tuple(stat)).encode())
        count += 1
        children = sorted(client.get_children(path))
        prefix = "" if path == "/" else path
        stack.extend(f"{prefix}/{name}" for name in reversed(children))
    return sha.hexdigest(), count


class Writer(threading.Thread):
    """
    One client writing as fast as it can: creates of fresh nodes, setData on its own
    nodes, and multis that fail (a create plus a check of a missing node).

    @ivar acknowledged: path -> (data, stat tuple) of the last acknowledged write.
    @ivar uncertain: path -> the data of the write in flight when the server died
        (it may or may not have been applied).
    @ivar rejected: paths whose create was part of a failed multi.
    """

    def __init__(self, server: ZkregServer, name: str, base: str) -> None:
        super().__init__(daemon=True)
        self.client = connect(server)
        self.label = name
        self.base = base
        self.acknowledged: dict[str, tuple[bytes, tuple]] = {}
        self.uncertain: dict[str, bytes] = {}
        self.rejected: list[str] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from kazoo.exceptions import KazooException

        index = 0
        mine: list[str] = []
        while not self.stopping.is_set():
            index += 1
            path = f"{self.base}/{self.label}-{index:06d}"
            try:
                if index % 7 == 0 and mine:
                    target = mine[index % len(mine)]
                    data = b"set-%s-%d" % (self.label.encode(), index)
                    self.uncertain[target] = data
                    stat = self.client.set(target, data)
                    self.acknowledged[target] = (data, stat_tuple(stat))
                    del self.uncertain[target]
                elif index % 11 == 0:
                    transaction = self.client.transaction()
                    transaction.create(path, b"rejected")
                    transaction.check(f"{self.base}/missing-{index}", 3)
                    results = transaction.commit()
                    if not all(isinstance(result, Exception) for result in results):
                        raise AssertionError(f"the multi should have failed: {results}")
                    self.rejected.append(path)
                else:
                    data = b"data-%s-%d" % (self.label.encode(), index)
                    self.uncertain[path] = data
                    created, stat = self.client.create(path, data, include_data=True)
                    assert created == path
                    self.acknowledged[path] = (data, stat_tuple(stat))
                    del self.uncertain[path]
                    mine.append(path)
            except KazooException:
                return  # the server died: what is uncertain stays so
            except BaseException as error:  # noqa: BLE001 - reported by the test
                self.error = error
                return

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        close(self.client)


def start_writers(server: ZkregServer, base: str, count: int) -> list[Writer]:
    writers = [Writer(server, f"w{index}", base) for index in range(count)]
    for writer in writers:
        writer.start()
    return writers


def check_writes(client: Any, writers: list[Writer]) -> int:
    """
    Every acknowledged write is there exactly; uncertain ones are one of the two
    states; rejected creates are absent.

    @return: the number of acknowledged writes checked.
    """
    checked = 0
    for writer in writers:
        assert writer.error is None, f"{writer.label}: {writer.error!r}"
        for path, (data, stat) in writer.acknowledged.items():
            found = client.exists(path)
            assert found is not None, f"acknowledged {path} lost"
            got_data, got_stat = client.get(path)
            if path in writer.uncertain:
                assert got_data in (data, writer.uncertain[path]), path
                if got_data == data:
                    assert stat_tuple(got_stat) == stat, path
            else:
                assert (got_data, stat_tuple(got_stat)) == (data, stat), path
            checked += 1
        for path in writer.rejected:
            assert client.exists(path) is None, f"{path} of a failed multi is there"
        for path, data in writer.uncertain.items():
            if path not in writer.acknowledged and client.exists(path) is not None:
                assert client.get(path)[0] == data, path
    return checked


def process_exists(pid: int) -> bool:
    """Whether C{pid} is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def load_then_kill(server: ZkregServer, base: str, writers: int, acknowledged: int) -> list[Writer]:
    """
    Run writers until C{acknowledged} writes were acknowledged, then kill -9 the server
    under them (their next writes are in flight) and stop them.
    """
    setup = connect(server)
    setup.ensure_path(base)
    close(setup)
    running = start_writers(server, base, writers)
    wait_until(
        lambda: sum(len(w.acknowledged) for w in running) >= acknowledged,
        timeout=60,
        message=f"{acknowledged} writes acknowledged",
    )
    server.kill()
    for writer in running:
        writer.stop()
    return running


def test_kill9_under_load_keeps_every_acknowledged_write(durable_server) -> None:
    """kill -9 while four clients write: everything acknowledged survives, exactly."""
    server = durable_server("--snap-count", "400")
    writers = load_then_kill(server, "/load", writers=4, acknowledged=1500)
    server.start()
    client = connect(server)
    try:
        checked = check_writes(client, writers)
        assert checked > 100
        assert any(writer.rejected for writer in writers)
    finally:
        close(client)


def test_restart_replays_identical_tree(durable_server) -> None:
    """The digest of the whole tree is the same before and after restarts."""
    server = durable_server("--snap-count", "150")
    writers = load_then_kill(server, "/same", writers=3, acknowledged=600)
    server.start()
    client = connect(server)
    check_writes(client, writers)
    before, count = tree_digest(client)
    close(client)
    assert count > 50
    server.restart(hard=True)  # nothing in flight: the same tree must come back
    client = connect(server)
    try:
        assert tree_digest(client) == (before, count)
    finally:
        close(client)
    server.restart()  # a clean stop too
    client = connect(server)
    try:
        assert tree_digest(client) == (before, count)
    finally:
        close(client)


def _last_segment_end(data_dir: str) -> tuple[str, int]:
    from zkreg.persistence.segments import list_segments, scan_segment

    for _, path in reversed(list_segments(data_dir)):
        scan = scan_segment(path)
        if scan.records:
            return path, scan.end_offset
    raise AssertionError("no records in the log")


def test_torn_tail_cut_after_kill(durable_server) -> None:
    """A partial record after the last good one (a torn write) is cut with a warning."""
    from zkreg.persistence.segments import encode_record

    server = durable_server()
    writers = load_then_kill(server, "/torn", writers=3, acknowledged=300)
    segment, end = _last_segment_end(str(server.data_dir))
    torn = encode_record(1 << 40, b"\x07" * 300)[:150]
    with open(segment, "r+b") as segment_file:
        segment_file.seek(end)
        segment_file.write(torn)
    server.start()
    client = connect(server)
    try:
        assert check_writes(client, writers) > 20
        client.create("/torn/after", b"still writable")
    finally:
        close(client)
    assert "cut torn tail" in server.log_tail(200000)


def test_crash_during_snapshot(durable_server) -> None:
    """
    kill -9 while a snapshot is being written: the half-written snapshot is dropped at
    restart, the forked writer died with the server, every acknowledged write is there.
    """
    server = durable_server("--snap-count", "3000")
    data_dir = str(server.data_dir)
    setup = connect(server)
    setup.ensure_path("/big")
    payload = b"x" * 2000
    for start in range(0, 6000, 500):  # a tree big enough that a snapshot takes a while
        results = [setup.create_async(f"/big/n{i}", payload) for i in range(start, start + 500)]
        for result in results:
            result.get(timeout=30)
    close(setup)
    writers = start_writers(server, "/big", 3)

    def snapshots_in_progress() -> set[str]:
        return {name for name in os.listdir(data_dir) if name.endswith(".tmp")}

    try:
        wait_until(
            lambda: sum(len(w.acknowledged) for w in writers) > 20,
            timeout=30,
            message="writes acknowledged",
        )
        wait_until(snapshots_in_progress, timeout=120, interval=0.002, message="a snapshot child")
        server.kill()
        half_written = snapshots_in_progress()
        finished_before = sorted(n for n in os.listdir(data_dir) if n.startswith("snapshot."))
    finally:
        for writer in writers:
            writer.stop()
    # The forked writer dies with the server (its pid is in its temporary file's name),
    # so it can never finish and rename a snapshot after the crash.
    children = {int(name.rsplit(".", 2)[1]) for name in half_written}
    wait_until(lambda: not any(map(process_exists, children)), timeout=10, message="child gone")
    # Had one survived, it would have renamed a finished snapshot into place by now.
    assert sorted(n for n in os.listdir(data_dir) if n.startswith("snapshot.")) == finished_before
    server.start()
    client = connect(server)
    try:
        assert check_writes(client, writers) > 0
        assert client.get("/big/n5999")[0] == payload
        assert len(client.get_children("/big")) >= 6000
    finally:
        close(client)
    # The killed child's half-written file is gone (the restarted server, counting the
    # replayed transactions, may by now be writing a snapshot of its own).
    assert half_written
    assert not half_written & snapshots_in_progress()


def test_sessions_survive_restart(durable_server) -> None:
    """
    After kill -9 and restart, a reconnecting session keeps its ephemeral; a session
    that never returns loses its ephemeral only after its timeout, from the restart.
    """
    server = durable_server()
    keeper = connect(server, timeout=10.0)
    leaver = connect(server, timeout=6.0)
    keeper.create("/keep", b"k", ephemeral=True)
    leaver.create("/leave", b"l", ephemeral=True)
    keeper_session = keeper.client_id[0]
    leaver_timeout = leaver._session_timeout / 1000.0
    server.kill()
    # The leaver goes away while the server is down: no closeSession reaches it.
    leaver.stop()
    leaver.close()
    server.start()
    restarted = time.monotonic()
    observer = connect(server)
    try:
        assert observer.exists("/leave") is not None, "ephemeral gone at once after restart"
        wait_until(lambda: keeper.connected, timeout=20, message="keeper reconnected")
        assert keeper.client_id[0] == keeper_session
        wait_until(
            lambda: observer.exists("/leave") is None,
            timeout=leaver_timeout + 10,
            message="the leaver's ephemeral to expire",
        )
        elapsed = time.monotonic() - restarted
        assert elapsed >= leaver_timeout * 0.8, f"expired {elapsed:.1f}s after restart"
        assert observer.exists("/keep") is not None
    finally:
        close(observer)
        close(keeper)


def test_damaged_log_middle_refuses_to_start(durable_server) -> None:
    """A bad checksum in the middle: zkreg exits naming file and offset; verify agrees."""
    import io

    from tests.support.servers import ServerStartError
    from zkreg.cli import main
    from zkreg.persistence.segments import RECORD_HEADER_BYTES, list_segments, scan_segment

    server = durable_server()
    client = connect(server)
    for index in range(40):
        client.create(f"/mid{index}", b"m")
    close(client)
    server.stop()
    _, segment = list_segments(str(server.data_dir))[0]
    record = scan_segment(segment).records[10]
    with open(segment, "r+b") as segment_file:
        segment_file.seek(record.offset + RECORD_HEADER_BYTES + 3)
        segment_file.write(b"\xff\xfe")
    with pytest.raises(ServerStartError):
        server.start(deadline_s=30)
    log_text = server.log_tail(200000)
    assert segment in log_text and f"offset {record.offset}" in log_text
    assert "zkreg log verify" in log_text
    out = io.StringIO()
    assert main(["log", "verify", str(server.data_dir)], out=out) == 1
    assert f"DAMAGED {segment} at offset {record.offset}" in out.getvalue()


def test_repeated_kills_with_snapshots(durable_server) -> None:
    """
    Three rounds of load, kill -9 and restart with frequent snapshots: after each,
    every write acknowledged in any round is there, and the log verifies (at most a
    torn tail, never damage in the middle).
    """
    import io

    from zkreg.cli import main

    server = durable_server("--snap-count", "100", "--snap-retain-count", "2")
    all_writers: list[Writer] = []
    for round_index in range(3):
        all_writers += load_then_kill(server, f"/round{round_index}", writers=3, acknowledged=400)
        out = io.StringIO()
        main(["log", "verify", str(server.data_dir)], out=out)
        assert "DAMAGED" not in out.getvalue(), out.getvalue()
        server.start()
        client = connect(server)
        try:
            check_writes(client, all_writers)
        finally:
            close(client)
    # Two kept, plus at most one finished just before a kill, before its purge ran.
    snapshots = [n for n in os.listdir(server.data_dir) if n.startswith("snapshot.")]
    assert 1 <= len(snapshots) <= 3, snapshots
