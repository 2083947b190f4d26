"""
One server per data directory: a second C{twistd zkreg} on the data directory of a
running one refuses to start (one line naming the directory and the holder's pid),
C{zkreg log truncate} refuses too while read-only tools run, and nothing the first
server acknowledged is lost.  A data directory that cannot be written stops startup
with one line instead of a server whose every session creation hangs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from curatorish.zkreg_launch import zkreg_command
from tests.support.ports import free_port
from tests.support.servers import REPO_ROOT
from zkreg.persistence.dirlock import LOCK_FILE_NAME

_ENV = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}


def run_twistd(data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The issue's command: a second server on another port, the same data dir."""
    return subprocess.run(
        zkreg_command(
            ["--listen", f"tcp:{free_port()}:interface=127.0.0.1", "--data-dir", str(data_dir)]
        ),
        cwd=cwd, env=_ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zkreg.cli", *argv],
        env=_ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_second_server_on_a_data_dir_refuses_and_nothing_is_lost(
    server_factory, kazoo_client, tmp_path
):
    first = server_factory("zkreg", extra_args=["--snap-count", "50"])
    zk = kazoo_client(first)
    for index in range(120):  # past two snapshots and a purge of the first's
        zk.create(f"/acked{index}", b"%d" % index)

    second = run_twistd(first.data_dir, tmp_path)
    assert second.returncode != 0
    assert "Traceback" not in second.stdout + second.stderr
    (line,) = second.stderr.splitlines()
    assert str(first.data_dir) in line and f"pid {first.pid}" in line, line

    # The first goes on; the tools: truncate refuses, the read-only ones run.
    zk.create("/after-refusal", b"ok")
    segment = sorted(first.data_dir.glob("log.*"))[-1]
    truncate = run_cli("log", "truncate", str(segment), "0", "--yes")
    assert truncate.returncode == 1
    assert f"pid {first.pid}" in truncate.stdout and "nothing done" in truncate.stdout
    assert segment.stat().st_size > 0
    verify = run_cli("log", "verify", str(first.data_dir))
    assert verify.returncode == 0, verify.stdout
    assert run_cli("log", "dump", str(first.data_dir)).returncode == 0

    zk.stop()
    first.restart()
    zk = kazoo_client(first)
    for index in range(120):
        assert zk.get(f"/acked{index}")[0] == b"%d" % index
    assert zk.get("/after-refusal")[0] == b"ok"


def test_lock_is_released_when_the_server_dies(server_factory, kazoo_client):
    """A killed server leaves no stale lock: it restarts at once on its directory."""
    server = server_factory("zkreg")
    kazoo_client(server).create("/before-kill", b"x")
    server.kill()
    server.start()
    assert kazoo_client(server).get("/before-kill")[0] == b"x"
    assert (server.data_dir / LOCK_FILE_NAME).read_text().strip() == str(server.pid)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


@pytest.fixture(params=["immutable", "read-only mount"])
def unwritable_dir(request, tmp_path) -> Iterator[Path]:
    """
    A data directory (with old data in it) this process cannot write to: mode 0555
    for a normal user; for root, who ignores modes (as in CI), the immutable attribute
    (chattr +i) or a read-only tmpfs mounted on it.
    """
    directory = tmp_path / "unwritable"
    directory.mkdir()
    if os.geteuid() != 0:
        if request.param != "immutable":
            pytest.skip("mounting needs root")
        (directory / "log.0000000000000001").write_bytes(b"")
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    if request.param == "immutable":
        (directory / "log.0000000000000001").write_bytes(b"")  # old data is there
        made = _run("chattr", "+i", str(directory)) if shutil.which("chattr") else None
        if made is None or made.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {made and made.stderr.strip()}")
        try:
            yield directory
        finally:
            _run("chattr", "-i", str(directory))
        return
    mounted = _run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        _run("umount", str(directory))


def test_unwritable_data_dir_stops_startup(unwritable_dir, tmp_path):
    result = run_twistd(unwritable_dir, tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"zkreg: data directory {unwritable_dir} is not writable"), line
