"""
A log that cannot be written: a real C{twistd zkreg} whose C{fdatasync} starts failing
(as on a full or failing disk) stops acknowledging writes, answers them with
SystemError, keeps serving reads and sessions, applies nothing it could not log, and
after a restart still has every write it acknowledged.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.servers import ZkregServer

#: twistd with os.fdatasync failing (ENOSPC) while the marker file exists.
_FAULTY_TWISTD = """
import errno, os, sys
marker = os.environ["ZKREG_TEST_FAIL_SYNC_MARKER"]
real_fdatasync = os.fdatasync
def fdatasync(fd):
    if os.path.exists(marker):
        raise OSError(errno.ENOSPC, "No space left on device (injected by the test)")
    return real_fdatasync(fd)
os.fdatasync = fdatasync
from twisted.scripts.twistd import run
sys.argv[0] = "twistd"
run()
"""


class FailingDiskZkregServer(ZkregServer):
    """zkreg whose log syncs fail once C{marker} exists."""

    def __init__(self) -> None:
        super().__init__()
        self.marker = self.workdir / "fail-sync"

    def command(self) -> list[str]:
        argv = super().command()
        assert argv[1] == "-c"
        argv[2] = _FAULTY_TWISTD
        return argv

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["ZKREG_TEST_FAIL_SYNC_MARKER"] = str(self.marker)
        return env


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
    # Fail-stop: once the log failed, no write is taken, even with the disk back.
    os.unlink(server.marker)
    with pytest.raises(SystemZookeeperError):
        zk.create("/later", b"refused")

    # Reads and the session go on; nothing that failed was applied.
    assert zk.get("/kept") == (b"acknowledged", kept_stat)
    assert zk.exists("/later") is None
    assert zk.exists("/mine") is not None
    assert server.four_letter("ruok") == "imok"

    # After a restart on a healthy disk every acknowledged write is there.  A write
    # whose sync failed may or may not have reached the disk (its client was told it
    # failed, as with a connection loss); if it did, it is there whole.
    zk.stop()
    server.restart()
    zk = kazoo_client(server.hosts)
    data, stat = zk.get("/kept")
    assert (data, stat.version) in {(b"acknowledged", 0), (b"refused", 1)}
    assert stat.czxid == kept_stat.czxid
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
    # The server is still up and serving its existing session.
    assert zk.exists("/refused") is None
    assert server.four_letter("ruok") == "imok"
