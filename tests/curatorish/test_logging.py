"""
curatorish through the standard C{logging} module: its C{twisted.logger} events reach
C{logging.getLogger("curatorish....")} at the matching level, so a plain program
sees connection attempts, refusals, retries, state changes and expiry.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.retry import RetryNTimes
from tests.support.waiting import wait_until


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def messages(caplog: pytest.LogCaptureFixture, level: int, name_prefix: str) -> list[str]:
    return [
        record.getMessage()
        for record in list(caplog.records)
        if record.levelno == level and record.name.startswith(name_prefix)
    ]


def test_curatorish_events_reach_the_logger_of_their_namespace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="curatorish")
    log = Logger(namespace="curatorish.test.bridge")
    log.debug("quiet {n}", n=1)
    log.info("hello {who}", who="there")
    log.warn("careful")
    log.error("broken {what!r}", what="x")
    try:
        raise KeyError("boom")
    except KeyError:
        log.failure("it failed", Failure())
    Logger(namespace="zkreg.not.ours").warn("not forwarded")
    Logger(namespace="curatorishly").warn("not forwarded either")
    seen = [
        (record.name, record.levelno, record.getMessage())
        for record in caplog.records
        if record.name.startswith("curatorish")
    ]
    assert seen == [
        ("curatorish.test.bridge", logging.DEBUG, "quiet 1"),
        ("curatorish.test.bridge", logging.INFO, "hello there"),
        ("curatorish.test.bridge", logging.WARNING, "careful"),
        ("curatorish.test.bridge", logging.ERROR, "broken 'x'"),
        ("curatorish.test.bridge", logging.CRITICAL, "it failed"),
    ]
    failure_record = caplog.records[-1]
    assert failure_record.exc_info is not None and failure_record.exc_info[0] is KeyError
    assert not [r for r in caplog.records if "not forwarded" in r.getMessage()]


def test_the_logger_level_filters_before_formatting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="curatorish")

    class Exploding:
        def __repr__(self) -> str:
            raise AssertionError("formatted although filtered out")

    Logger(namespace="curatorish.test.bridge").info("{x!r}", x=Exploding())
    Logger(namespace="curatorish.test.bridge").warn("kept")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("curatorish")] == ["kept"]


def test_an_unreachable_server_is_not_silent(
    caplog: pytest.LogCaptureFixture, make_client: Any
) -> None:
    caplog.set_level(logging.INFO, logger="curatorish")
    port = closed_port()
    client = make_client(
        f"127.0.0.1:{port}",
        start=False,
        connection_timeout_ms=600,
        retry_policy=RetryNTimes(1, 100),
    )
    client.start()
    with pytest.raises(errors.ConnectionLossError):
        client.create("/logging/unreachable", b"")
    connecting = f"Connecting to 127.0.0.1:{port}"
    refused = f"Could not connect to 127.0.0.1:{port}: connection refused; retrying in "
    wait_until(
        lambda: refused in " ".join(messages(caplog, logging.WARNING, "curatorish.connection")),
        timeout=15,
        message="a refused connection logged at WARNING",
    )
    assert connecting in messages(caplog, logging.INFO, "curatorish.connection")
    retries = messages(caplog, logging.INFO, "curatorish.framework")
    assert any(
        m.startswith("ConnectionLossError: not connected within the connection timeout; retry 1 in")
        for m in retries
    ), retries
    gave_up = messages(caplog, logging.WARNING, "curatorish.framework")
    assert any("giving up after 1 retries" in m for m in gave_up), gave_up


def test_session_establishment_state_changes_and_expiry_are_logged(
    caplog: pytest.LogCaptureFixture, server: Any, make_client: Any
) -> None:
    from curatorish.kill_session import expire_session

    caplog.set_level(logging.INFO, logger="curatorish")
    states: list[str] = []
    client = make_client(server.hosts, states=states)
    session_id = client.session_id
    wait_until(
        lambda: "State change: CONNECTED" in messages(caplog, logging.INFO, "curatorish.state"),
        message="CONNECTED logged",
    )
    established = messages(caplog, logging.INFO, "curatorish.connection")
    assert any(m.startswith(f"Session 0x{session_id:x} established on") for m in established)
    zk = client.zookeeper
    assert expire_session(server.hosts, zk.session_id, zk.session_password)
    wait_until(lambda: states[-1:] == ["RECONNECTED"], timeout=20, message="new session")
    warnings = messages(caplog, logging.WARNING, "curatorish")
    assert f"Session 0x{session_id:x} expired" in " ".join(warnings), warnings
    assert "State change: LOST" in warnings
    assert "Starting a new session" in messages(caplog, logging.INFO, "curatorish.connection")


def test_a_plain_program_sees_warnings_with_no_logging_configured() -> None:
    """No handler is installed by curatorish; Python's last-resort handler shows
    warnings on stderr (not the INFO lines) when the program configures nothing."""
    program = textwrap.dedent(
        f"""
        from curatorish import BlockingCuratorFramework, RetryOneTime, errors
        client = BlockingCuratorFramework(
            "127.0.0.1:{closed_port()}", retry_policy=RetryOneTime(100),
            connection_timeout_ms=700,
        )
        client.start()
        try:
            client.create("/x", b"")
        except errors.ConnectionLossError as error:
            print("raised", repr(error))
        client.close()
        import logging
        print("handlers", logging.getLogger("curatorish").handlers)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "raised ConnectionLossError" in result.stdout
    assert "handlers []" in result.stdout
    assert ": connection refused; retrying in " in result.stderr
    assert "giving up after 1 retries" in result.stderr
    assert "Connecting to" not in result.stderr
