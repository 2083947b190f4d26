"""
curatorish.testing: the zkreg TestingServer as curator-test users (and kazoo users)
would use it.
"""

from __future__ import annotations

import os
from typing import Any

from curatorish import CreateMode
from curatorish.blocking import BlockingCuratorFramework
from curatorish.kill_session import expire_session
from curatorish.testing import TestingServer, testing_server_fixture
from tests.support.waiting import wait_until

#: The fixture factory, used as a user would in a conftest.
module_server = testing_server_fixture(scope="module", tick_time_ms=1000)


def test_fixture_factory_gives_a_running_server(module_server: TestingServer) -> None:
    assert module_server.is_running
    assert module_server.tick_time_ms == 1000
    assert module_server.four_letter_word("ruok") == "imok"


def test_kazoo_against_the_testing_server(module_server: TestingServer) -> None:
    from kazoo.client import KazooClient
    from kazoo.protocol.states import KazooState

    client = KazooClient(hosts=module_server.connect_string, timeout=5.0)
    states: list[str] = []
    client.add_listener(states.append)
    client.start(timeout=15)
    try:
        client.create("/kazoo-user/node", b"v", makepath=True, ephemeral=True)
        assert module_server.expire_session(client)  # kazoo's client_id
        wait_until(lambda: KazooState.LOST in states, timeout=20, message="kazoo LOST")
        wait_until(lambda: client.connected, timeout=20, message="kazoo reconnected")
        assert client.exists("/kazoo-user/node") is None
    finally:
        client.stop()
        client.close()


def test_expire_unknown_session_reports_false(module_server: TestingServer) -> None:
    assert expire_session(module_server.connect_string, 0x7F00000000000001, b"\0" * 16) is False


def test_subprocess_server_stop_restart_and_close() -> None:
    server = TestingServer()
    try:
        port, data_dir = server.port, server.data_dir
        # zkreg under twistd keeps its state in memory for now: after the restart our
        # last zxid is ahead of the server's, which refuses the session (as ZooKeeper
        # does) until the simulated expiration (a 4 s session here) starts a new one.
        client = BlockingCuratorFramework(
            server.connect_string,
            call_timeout_s=30,
            session_timeout_ms=4000,
            connection_timeout_ms=20_000,
        )
        client.start()
        try:
            client.create("/before", b"x")
            server.stop()
            assert not server.is_running
            server.start()
            assert server.port == port
            # The client finds the server again on the same port.
            assert client.exists("/") is not None
        finally:
            client.close()
    finally:
        server.close()
    assert not os.path.exists(data_dir)


def test_in_process_server_on_the_shared_reactor() -> None:
    server = TestingServer(in_process=True)
    try:
        assert server.is_running and server.four_letter_word("ruok") == "imok"
        states: list[str] = []
        client = BlockingCuratorFramework(server.connect_string, call_timeout_s=30)
        client.add_connection_state_listener(lambda c, state: states.append(state.value))
        with client:
            assert client.create("/in-process", b"1", mode=CreateMode.EPHEMERAL).path
            session: Any = client.zookeeper
            session_id = session.session_id
            server.drop_connections()
            wait_until(lambda: states[-1:] == ["RECONNECTED"], timeout=15, message="back")
            assert states == ["CONNECTED", "SUSPENDED", "RECONNECTED"]
            assert session.session_id == session_id
            assert client.exists("/in-process") is not None
            assert server.expire_session(session.session_id, session.session_password)
            wait_until(lambda: "LOST" in states, timeout=15, message="LOST")
        server.stop()
        assert not server.is_running
    finally:
        server.close()


def test_pytest_plugin_as_a_kazoo_user_would_use_it(tmp_path: Any) -> None:
    """The README recipe: a project's conftest loads curatorish.testing, its tests
    use the zkreg_testing_server fixture with kazoo."""
    import subprocess
    import sys

    from curatorish.zkreg_launch import ZKREG_ROOT

    (tmp_path / "conftest.py").write_text('pytest_plugins = ["curatorish.testing"]\n')
    (tmp_path / "test_user.py").write_text(
        "from kazoo.client import KazooClient\n"
        "\n"
        "def test_my_service(zkreg_testing_server):\n"
        "    zk = KazooClient(hosts=zkreg_testing_server.connect_string)\n"
        "    zk.start(timeout=15)\n"
        "    zk.create('/svc/node', b'x', makepath=True, ephemeral=True)\n"
        "    assert zkreg_testing_server.expire_session(zk)\n"
        "    zk.stop(); zk.close()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ZKREG_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
