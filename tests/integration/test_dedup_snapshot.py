"""
Exactly-once across a snapshot, with real processes: a write committed by the data
server, which dies before replying (the ZKREG_TEST_EXIT_BEFORE_REPLY hook), is held by
its session server; meanwhile the data server runs once without its data link and
takes a snapshot covering that write; restarted from that snapshot, it must answer
the resubmitted write from the reply the snapshot kept, not apply it a second time.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.split import FaultyDataServer, link_listen, session_server
from tests.support.waiting import wait_until
from zkreg.persistence.snapshot import list_snapshots

pytestmark = pytest.mark.timeout(300)


def test_write_committed_before_a_snapshot_is_answered_once_after_restart():
    from kazoo.client import KazooClient

    link_port = free_port()
    link_args = link_listen(link_port)
    data = FaultyDataServer(extra_args=link_args)
    session = session_server(link_port, "--data-tier-timeout", "120000")
    clients: list[Any] = []

    def direct_client() -> Any:
        """A client of the data server's own port (its writes are not stamped)."""
        client = KazooClient(hosts=data.hosts, timeout=30.0)
        clients.append(client)
        client.start(timeout=30)
        return client

    try:
        data.start()
        setup = direct_client()
        setup.ensure_path("/dedup")
        setup.stop()
        # The first stamped write: committed, then the data server dies unanswered.
        data.fault = "1"
        data.restart()
        session.start()
        client = KazooClient(hosts=session.hosts, timeout=30.0)
        clients.append(client)
        client.start(timeout=30)
        held = client.create_async("/dedup/n-", b"once", sequence=True)
        wait_until(lambda: not data.is_running(), timeout=60, message="the fault hook fired")
        assert "exiting between a commit and its reply" in data.log_tail(20000)
        data.kill()  # reap it

        # Out of the session server's reach (no data link), the data server recovers
        # the write from the log and snapshots it (snap-count 2: at its first commit).
        data.fault = None
        data.extra_args = ["--snap-count", "2"]
        data.start()
        padding = direct_client()
        (committed,) = padding.get_children("/dedup")
        zxid = padding.get(f"/dedup/{committed}")[1].czxid
        count = 0

        def snapshot_covers_the_write() -> bool:
            nonlocal count
            if any(at >= zxid for at, _ in list_snapshots(str(data.data_dir))):
                return True
            padding.create(f"/pad-{count}")
            count += 1
            return False

        wait_until(snapshot_covers_the_write, timeout=60, message="a snapshot after the write")
        padding.stop()
        data.stop()  # waits for a running snapshot child

        # Restarted from that snapshot with its link: the held write is resubmitted.
        data.extra_args = link_args
        data.start()
        path = held.get(timeout=90)
        assert path == f"/dedup/{committed}"
        client.sync("/dedup")
        children = client.get_children("/dedup")
        applied = [child for child in children if client.get(f"/dedup/{child}")[0] == b"once"]
        assert applied == [committed], f"the write was applied {len(applied)} times: {children}"
    finally:
        for client in clients:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - cleanup
                pass
        session.cleanup()
        data.cleanup()
