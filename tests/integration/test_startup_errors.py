"""
Startup errors of a real C{twistd zkreg}: one line on stderr saying what is wrong and
what to do, a non-zero exit status, never a traceback or the whole usage text.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import zkreg
from curatorish.zkreg_launch import zkreg_command
from tests.support.ports import free_port
from tests.support.servers import REPO_ROOT


def twistd(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run C{twistd -n --pidfile= zkreg ARGV} to its end (bounded)."""
    return subprocess.run(
        zkreg_command(argv),
        cwd=cwd,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stdout + result.stderr, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zkreg: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_port_in_use(zkreg_server, tmp_path):
    result = twistd(
        "--listen", f"tcp:{zkreg_server.port}:interface=127.0.0.1", "--data-dir", "d",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, f"127.0.0.1:{zkreg_server.port}", "Address already in use")
    assert zkreg_server.four_letter("ruok") == "imok"


def test_invalid_endpoint(tmp_path):
    result = twistd("--listen", "tcp:99999", cwd=tmp_path)
    assert_one_line_error(result, "tcp:99999", "0-65535")
    assert not (tmp_path / "zkreg-data").exists()


def test_data_dir_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("")
    result = twistd(
        "--listen", f"tcp:{free_port()}:interface=127.0.0.1", "--data-dir", "afile",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "afile is a file", "--data-dir")


def test_data_dir_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("")
    result = twistd(
        "--listen", f"tcp:{free_port()}:interface=127.0.0.1", "--data-dir", "afile/data",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "cannot create data directory afile/data", "Not a directory")


def test_missing_config_file(tmp_path):
    result = twistd("--config", "absent.conf", cwd=tmp_path)
    assert_one_line_error(result, "cannot read config file absent.conf", "No such file")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--tick-time", "abc"], "--tick-time: expected a whole number, got 'abc'"),
        (["--bogus"], "--bogus not recognized"),
        (["--data-server", "tcp:127.0.0.1:2888"], "--data-server does not apply"),
    ],
)
def test_bad_option_is_one_line(tmp_path, argv, fragment):
    result = twistd(*argv, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert result.stdout == ""


def test_twistd_zkreg_version(tmp_path):
    result = subprocess.run(
        zkreg_command(["--version"], twistd_options=()),
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, f"zkreg {zkreg.__version__}\n")


def test_port_in_use_daemonized(zkreg_server, tmp_path):
    """
    Without -n twistd daemonizes before it listens; its waiting parent must still hear
    of the failure (exit 1 with the reason), not wait forever.
    """
    result = subprocess.run(
        zkreg_command(
            ["--listen", f"tcp:{zkreg_server.port}:interface=127.0.0.1", "--data-dir", "d"],
            twistd_options=["--pidfile=zkreg.pid", "--logfile=zkreg.log"],
        ),
        cwd=tmp_path, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{zkreg_server.port}" in result.stderr
    log_text = (tmp_path / "zkreg.log").read_text()
    assert f"zkreg: cannot listen on 127.0.0.1:{zkreg_server.port}: Address already" in log_text
    # The daemon removes its pidfile as it exits, which may be just after the parent
    # has reported the failure.
    from tests.support.waiting import wait_until

    wait_until(
        lambda: not (tmp_path / "zkreg.pid").exists(),
        timeout=30,
        message="the failed daemon removed its pidfile",
    )


def test_session_server_without_its_data_server(tmp_path):
    result = twistd(
        "--role", "session", "--data-server", f"tcp:127.0.0.1:{free_port()}",
        "--listen", f"tcp:{free_port()}:interface=127.0.0.1",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "cannot reach the data server at tcp:127.0.0.1:")


def test_session_server_port_in_use(zkreg_server, tmp_path):
    """The session role listens only once linked: its listen failure is one line too."""
    import socket

    from tests.support.waiting import wait_until

    link_port = free_port()
    data_server = subprocess.Popen(
        zkreg_command([
            "--role", "data", "--data-link-listen", f"tcp:{link_port}:interface=127.0.0.1",
            "--data-dir", "d",
        ]),
        cwd=tmp_path, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def accepting() -> bool:
            assert data_server.poll() is None, "the data server exited"
            try:
                socket.create_connection(("127.0.0.1", link_port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(accepting, timeout=60, message="the data server accepting session servers")
        result = twistd(
            "--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}",
            "--listen", f"tcp:{zkreg_server.port}:interface=127.0.0.1",
            cwd=tmp_path,
        )  # fmt: skip
        assert_one_line_error(result, f"127.0.0.1:{zkreg_server.port}", "Address already in use")
    finally:
        data_server.kill()
        data_server.wait(10)


@pytest.mark.parametrize("role", ["standalone", "data"])
def test_listening_is_logged_only_once_bound(zkreg_server, tmp_path, role):
    """
    "listening on" is logged once the port is bound: a standalone server whose client
    port, or a data server whose data-link port, is in use logs no such line (it used
    to, before the one-line error), and a server that does bind logs it once.
    """
    import socket

    from tests.support.waiting import wait_until

    flag = "--listen" if role == "standalone" else "--data-link-listen"
    taken = twistd(
        "--role", role, flag, f"tcp:{zkreg_server.port}:interface=127.0.0.1", "--data-dir", "d",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(taken, f"127.0.0.1:{zkreg_server.port}", "Address already in use")
    assert "listening on" not in taken.stdout + taken.stderr

    port = free_port()
    log = tmp_path / "bound.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            zkreg_command(
                ["--role", role, flag, f"tcp:{port}:interface=127.0.0.1", "--data-dir", "bound"]
            ),
            cwd=tmp_path, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def accepting() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(accepting, timeout=60, message=f"the {role} server accepting")
        wait_until(
            lambda: f"({role}) listening on tcp:{port}:" in log.read_text(),
            timeout=30,
            message="the listening line",
        )
        assert log.read_text().count("listening on") == 1
    finally:
        server.kill()
        server.wait(10)
