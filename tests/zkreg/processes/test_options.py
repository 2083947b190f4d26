"""
C{--session-processes} / C{session_processes}: parsing, its checks, and the shared
client endpoints (L{zkreg.processes.listeners}).
"""

from __future__ import annotations

import socket

import pytest

from zkreg.config import ServerConfig
from zkreg.processes.child import decode_config, encode_config
from zkreg.processes.listeners import StreamAddress, parse_stream_endpoint, reserve
from zkreg.processes.supervisor import default_session_processes
from zkreg.startup import StartupError
from zkreg.tap import Options


def parse(*argv: str) -> ServerConfig:
    options = Options()
    options.parseOptions(list(argv))
    return options.server_config


def test_counts_and_auto(tmp_path):
    assert parse().session_processes == 0
    assert parse().session_process_count == 0
    assert parse("--session-processes", "3").session_process_count == 3
    assert parse("--session-processes", "auto").session_processes is None
    conf = tmp_path / "zkreg.conf"
    conf.write_text("session_processes = 2\n")
    assert parse("--config", str(conf)).session_process_count == 2
    assert parse("--config", str(conf), "--session-processes", "0").session_process_count == 0


def test_auto_follows_the_cores():
    assert default_session_processes(1) == 0
    assert default_session_processes(2) == 0
    assert default_session_processes(4) == 3
    assert default_session_processes(64) == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--session-processes", "-1"], "session-processes must be auto or 0-64, got -1"),
        (["--session-processes", "65"], "session-processes must be auto or 0-64, got 65"),
        (["--session-processes", "two"], "--session-processes: expected a whole number"),
        (
            ["--session-processes", "2", "--listen", "unix:/tmp/zk.sock"],
            "listen: 'unix:/tmp/zk.sock' cannot be shared by --session-processes",
        ),
        (
            ["--role", "data", "--data-link-listen", "tcp:2888", "--session-processes", "2"],
            "--session-processes does not apply to --role data",
        ),
    ],
)
def test_bad_values_are_one_line(argv, message, capsys):
    with pytest.raises(StartupError, match=message):
        parse(*argv)
    assert "Traceback" not in capsys.readouterr().err


def test_stream_endpoints():
    assert parse_stream_endpoint("tcp:2181") == StreamAddress(socket.AF_INET, 2181, "", 50)
    assert parse_stream_endpoint("tcp:port=0:interface=127.0.0.1:backlog=9") == StreamAddress(
        socket.AF_INET, 0, "127.0.0.1", 9
    )
    six = parse_stream_endpoint("tcp6:2181:interface=\\:\\:1")
    assert six == StreamAddress(socket.AF_INET6, 2181, "::1", 50)
    assert parse_stream_endpoint(six.describe()) == six
    for bad in ("ssl:2181", "tcp:http", "tcp:99999", "tcp:1:reuse=1"):
        with pytest.raises(ValueError):
            parse_stream_endpoint(bad)


def test_reserve_resolves_port_zero_and_shares_it():
    """The parent's reservation resolves tcp:0, and a child can listen beside it."""
    held, address = reserve(parse_stream_endpoint("tcp:0:interface=127.0.0.1"))
    try:
        assert address.port != 0
        child = socket.socket()
        child.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        child.bind(("127.0.0.1", address.port))
        child.listen(1)
        child.close()
        plain = socket.socket()
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", address.port))
        plain.close()
    finally:
        held.close()


def test_config_round_trip():
    config = ServerConfig(four_letter_words=frozenset({"ruok", "mntr"}), session_processes=None)
    assert decode_config(encode_config(config)) == config
