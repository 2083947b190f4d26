"""
A log that cannot be written: a real C{twistd zkreg} whose C{fdatasync} starts failing
(as on a full or failing disk) stops acknowledging writes, answers them with
SystemError, keeps serving reads and sessions, applies nothing it could not log, says
so in ruok and srvr, takes writes again by itself once the disk works, and after a
restart has exactly the writes it acknowledged.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.failing_sync import FailingSync
from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until


class FailingDiskZkregServer(FailingSync, ZkregServer):
    """zkreg whose log syncs fail once C{marker} exists."""


@pytest.fixture
def failing_disk_server():
    server = FailingDiskZkregServer()
    server.start()
    yield server
    server.cleanup()


def test_failed_log_refuses_writes_keeps_reads(failing_disk_server, kazoo_client):
    from kazoo.exceptions import SystemZookeeperError

    server = failing_disk_server
    zk = kazoo_client(server.hosts)
    zk.create("/kept", b"acknowledged")
    zk.create("/mine", b"", ephemeral=True)
    kept_stat = zk.exists("/kept")

    server.marker.touch()
    with pytest.raises(SystemZookeeperError):
        zk.set("/kept", b"refused")
    # While the disk fails, writes keep failing (the retries find it still failing).
    with pytest.raises(SystemZookeeperError):
        zk.create("/later", b"refused")

    # Reads and the session go on; nothing that failed was applied; it is reported.
    assert zk.get("/kept") == (b"acknowledged", kept_stat)
    assert zk.exists("/later") is None
    assert zk.exists("/mine") is not None
    assert "writes refused" in server.four_letter("ruok")
    assert "Writes refused:" in server.four_letter("srvr")

    # The disk works again: so do writes, without a restart.
    os.unlink(server.marker)

    def write_works() -> bool:
        try:
            zk.create("/later", b"back")
        except SystemZookeeperError:
            return False
        return True

    wait_until(write_works, timeout=20, message="writes to work again")
    assert server.four_letter("ruok") == "imok"

    # After a restart exactly the acknowledged writes are there: the bytes of the
    # write whose sync failed were cut from the log when it recovered.
    zk.stop()
    server.restart()
    zk = kazoo_client(server.hosts)
    data, stat = zk.get("/kept")
    assert (data, stat.version) == (b"acknowledged", 0)
    assert stat.czxid == kept_stat.czxid
    assert zk.get("/later")[0] == b"back"
    zk.create("/after-restart", b"ok")
    assert zk.get("/after-restart")[0] == b"ok"


def test_session_request_during_log_failure_is_answered(failing_disk_server, kazoo_client):
    """
    Once the log failed, a new session (a write: createSession) is refused by closing
    the connection at once, never left waiting for the sessionless timeout.
    """
    from kazoo.exceptions import SystemZookeeperError

    from tests.support.rawclient import RawClient
    from zkreg.proto import records as R

    server = failing_disk_server
    zk = kazoo_client(server.hosts)
    server.marker.touch()
    with pytest.raises(SystemZookeeperError):
        zk.create("/refused", b"")

    client = RawClient(server.port, io_timeout=5.0)
    client.open_socket()
    started = time.monotonic()
    client.send_frame(R.ConnectRequest(0, 0, 30000, 0, b"\x00" * 16, False).serialize())
    assert client.server_closed(timeout=5.0)
    assert time.monotonic() - started < 1.0
    # The server is still up and serving its existing session, and says what is wrong.
    assert zk.exists("/refused") is None
    assert "writes refused" in server.four_letter("ruok")
