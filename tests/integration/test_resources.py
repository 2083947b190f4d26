"""
Running out of disk space or file descriptors (issues #7 and #8), with real zkreg
processes and kazoo: writes fail cleanly while it lasts, reads and sessions go on,
nothing acknowledged is lost, ruok/srvr say what is wrong, and once space or
descriptors are freed writes work again without a restart.

The small volume is a real 20 MiB tmpfs (C{mount -t tmpfs}, root only: skipped
elsewhere); the descriptor limit a real C{RLIMIT_NOFILE} set with C{prlimit}.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SystemZookeeperError

from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

_KB = 1024


def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = tempfile.mkdtemp(prefix="zkreg-tmpfs-probe-")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], capture_output=True
        )
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", probe], check=True)
        return True
    finally:
        os.rmdir(probe)


@pytest.fixture
def small_volume_server() -> Iterator[ZkregServer]:
    """A zkreg whose data directory is a 20 MiB tmpfs."""
    if not _can_mount_tmpfs():
        pytest.skip("mounting a tmpfs needs root")
    server = ZkregServer()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(server.data_dir)], check=True
    )
    try:
        yield server
    finally:
        server.kill()
        subprocess.run(["umount", str(server.data_dir)], check=False)
        server.cleanup()


def _client(server: ZkregServer) -> KazooClient:
    client = KazooClient(hosts=server.hosts, timeout=10.0)
    client.start(timeout=15)
    return client


def test_disk_full_then_freed(small_volume_server):
    """
    On a 20 MiB volume zkreg starts and works (its log preallocation adapts to the
    free space).  Writes of 100 KB nodes go on until the disk is full: then writes
    fail with SystemError, reads and the session go on, ruok and srvr report it;
    once a filler file is removed writes work again by themselves, and after a
    restart every acknowledged write is there.
    """
    server = small_volume_server
    filler = Path(server.data_dir) / "filler"
    filler.write_bytes(b"\0" * (6 * 1024 * _KB))
    server.start()
    client = _client(server)
    acknowledged: dict[str, bytes] = {}
    try:
        client.create("/disk")
        refused = None
        for index in range(400):
            path = f"/disk/n{index}"
            data = bytes([index % 251]) * (100 * _KB)
            try:
                client.create(path, data)
            except SystemZookeeperError as error:
                refused = error
                break
            acknowledged[path] = data
        assert refused is not None, "20 MiB never filled up"
        assert len(acknowledged) > 20

        # Full: writes fail cleanly, reads and the session go on, and it is reported.
        with pytest.raises(SystemZookeeperError):
            client.set("/disk", b"more")
        first = next(iter(acknowledged))
        assert client.get(first)[0] == acknowledged[first]
        assert client.get_children("/disk")
        ruok = server.four_letter("ruok")
        assert ruok != "imok" and "writes refused" in ruok
        assert "Writes refused:" in server.four_letter("srvr")

        # Space is freed: writes work again, without a restart.
        filler.unlink()

        def write_works() -> bool:
            try:
                client.create("/disk/after", b"back")
            except SystemZookeeperError:
                return False
            return True

        wait_until(write_works, timeout=20, message="writes to work again")
        acknowledged["/disk/after"] = b"back"
        assert server.four_letter("ruok") == "imok"
        assert "Writes refused" not in server.four_letter("srvr")
    finally:
        client.stop()
        client.close()

    server.restart()
    client = _client(server)
    try:
        for path, data in acknowledged.items():
            assert client.get(path)[0] == data, path
        assert sorted(client.get_children("/disk")) == sorted(
            path.rsplit("/", 1)[1] for path in acknowledged
        )
    finally:
        client.stop()
        client.close()


class _LimitedZkreg(ZkregServer):
    """zkreg with a lowered RLIMIT_NOFILE (C{prlimit}) and small log segments."""

    def __init__(self, nofile: int) -> None:
        super().__init__(extra_args=["--prealloc-size", str(64 * _KB), "--max-client-cnxns", "0"])
        self.nofile = nofile

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *super().command()]


def test_out_of_descriptors_then_freed():
    """
    With 96 descriptors and enough connections to use them all, a log segment roll
    fails (EMFILE): writes fail, the server says so; once connections close, the
    roll is retried by itself and writes work again, and new connections are
    accepted again.
    """
    import socket

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) not installed")
    server = _LimitedZkreg(nofile=96)
    server.start()
    client = _client(server)
    hogs: list[socket.socket] = []
    try:
        client.create("/fd")
        # Use up the descriptors: connections the server accepts and keeps.
        for _ in range(200):
            try:
                hog = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            except OSError:
                break
            hogs.append(hog)
        pid = server.pid
        assert pid is not None
        wait_until(
            lambda: len(os.listdir(f"/proc/{pid}/fd")) >= server.nofile - 1,
            timeout=20,
            message="the server to run out of descriptors",
        )
        # Writes fill the 64 KiB segment and need a new one: no descriptor for it.
        failed = False
        for index in range(40):
            try:
                client.create(f"/fd/n{index}", b"f" * (8 * _KB))
            except SystemZookeeperError:
                failed = True
                break
        assert failed, "no segment roll failed"
        assert client.get("/fd")[0] == b""  # reads go on
        assert "writes are refused" in server.log_tail(400_000)

        for hog in hogs:
            hog.close()
        hogs.clear()

        def write_works() -> bool:
            try:
                client.create("/fd/after", b"back")
            except SystemZookeeperError:
                return False
            return True

        wait_until(write_works, timeout=20, message="writes to work again")
        assert server.four_letter("ruok") == "imok"
        fresh = _client(server)  # accepted again
        try:
            assert fresh.get("/fd/after")[0] == b"back"
        finally:
            fresh.stop()
            fresh.close()
    finally:
        for hog in hogs:
            hog.close()
        client.stop()
        client.close()
        server.cleanup()
