"""
Split mode through data-server failures, with real processes: a data server (a
standalone zkreg with --data-link-listen), session servers (--role session) in front of
it, kazoo clients on different session servers writing all along.

  - the data server dies between a commit and its reply (a test hook), and is killed
    with SIGKILL, both under write load, and restarted: every acknowledged create is
    present exactly once, no session is lost, no client sees an error;
  - a session server joins during the writes and sees the same tree;
  - a session server killed and restarted: its client's session resumes through it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.servers import ZkregServer
from tests.support.split import FaultyDataServer, link_listen, session_server
from tests.support.waiting import wait_until
from tests.support.writers import Writer, acked_total, stop_all

pytestmark = pytest.mark.timeout(300)


#: Session servers hold writes through each outage (for up to a minute).
HOLD_WRITES = ("--data-tier-timeout", "60000")


def states_of(client: Any) -> list[str]:
    seen: list[str] = []
    client.add_listener(lambda state: seen.append(str(state)))
    return seen


def test_session_servers_ride_through_data_server_failures(tmp_path):
    from kazoo.client import KazooClient

    link_port = free_port()
    data = FaultyDataServer(extra_args=link_listen(link_port))
    # The 40th stamped write: the data server dies after committing it, before replying.
    data.fault = "40"
    servers: list[ZkregServer] = [data]
    clients: list[Any] = []
    try:
        data.start()
        first, second = (
            session_server(link_port, *HOLD_WRITES),
            session_server(link_port, *HOLD_WRITES),
        )
        servers += [first, second]
        first.start()
        second.start()
        a = KazooClient(hosts=first.hosts, timeout=30.0)
        b = KazooClient(hosts=second.hosts, timeout=30.0)
        clients += [a, b]
        a.start(timeout=30)
        b.start(timeout=30)
        a.ensure_path("/outage")
        sessions = (a.client_id[0], b.client_id[0])
        states = (states_of(a), states_of(b))
        writers = [Writer(a, "/outage", "a"), Writer(b, "/outage", "b")]
        for writer in writers:
            writer.start()

        def acked() -> int:
            return acked_total(writers)

        def both_linked() -> None:
            # Each outage below must be one that both session servers saw begin and end.
            for server in (first, second):
                wait_until(
                    lambda server=server: "Data link: up" in server.four_letter("srvr"),
                    timeout=60,
                    message="the session server linked again",
                )

        # 1. The fault: the data server exits between a commit and its reply.
        wait_until(lambda: not data.is_running(), timeout=60, message="the fault hook fired")
        assert "exiting between a commit and its reply" in data.log_tail(20000)
        data.kill()  # reap it
        wait_until(
            lambda: "Data link: down" in first.four_letter("srvr"),
            timeout=30,
            message="the session server noticed the fault",
        )
        data.fault = None
        data.start()
        both_linked()
        mark = acked()
        wait_until(lambda: acked() >= mark + 30, timeout=60, message="writes after the restart")

        # 2. kill -9 under load.
        data.kill()
        wait_until(
            lambda: "Data link: down" in second.four_letter("srvr"),
            timeout=30,
            message="the session server noticed",
        )
        data.start()
        both_linked()
        mark = acked()
        wait_until(lambda: acked() >= mark + 30, timeout=60, message="writes after kill -9")

        # 3. A session server joins during the writes.
        third = session_server(link_port, *HOLD_WRITES)
        servers.append(third)
        third.start()
        c = KazooClient(hosts=third.hosts, timeout=30.0)
        clients.append(c)
        c.start(timeout=30)
        mark = acked()
        wait_until(lambda: acked() >= mark + 20, timeout=60, message="writes after the join")

        stop_all(writers)

        # Every acknowledged create exactly once, and nothing applied twice.
        for client in (a, b, c):
            client.sync("/outage")
        children = a.get_children("/outage")
        assert sorted(children) == sorted(c.get_children("/outage"))
        assert sorted(children) == sorted(b.get_children("/outage"))
        datas = Counter(a.get(f"/outage/{child}")[0] for child in children)
        twice = {value: n for value, n in datas.items() if n > 1}
        assert twice == {}, f"applied twice: {twice}"
        missing = [
            value for writer in writers for value in writer.acked if value.encode() not in datas
        ]
        assert missing == []

        # No session lost, none expired, no error seen.
        assert (a.client_id[0], b.client_id[0]) == sessions
        assert all("LOST" not in state for seen in states for state in seen), states
        srvr = first.four_letter("srvr")
        assert "Mode: session" in srvr and "Data link: up" in srvr, srvr
        mntr = first.four_letter("mntr")
        assert "zk_server_state\tsession" in mntr
        outages = int(mntr.split("zk_data_link_outages\t")[1].split()[0])
        assert outages >= 2
        # After the kill -9 the session servers resumed from their zxid (the restarted
        # data server read its last commits back from the log): no snapshot needed.
        assert "resumes after zxid" in data.log_tail(200000)

        # 4. A session server killed and restarted: its client's session goes on.
        second.restart(hard=True)
        wait_until(lambda: b.connected, timeout=60, message="b reconnected")
        b.create("/outage/after-restart", b"x")
        assert b.client_id[0] == sessions[1]
        a.sync("/outage")
        assert a.exists("/outage/after-restart") is not None
    finally:
        for client in clients:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - cleanup
                pass
        for server in reversed(servers):
            server.cleanup()
