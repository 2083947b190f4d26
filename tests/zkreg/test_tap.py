"""
C{twistd zkreg} options: defaults, flags, the configuration file, validation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from zkreg.config import ServerConfig
from zkreg.tap import Options

REPO_ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> ServerConfig:
    options = Options()
    options.parseOptions(list(argv))
    return options.server_config


def test_defaults_are_zookeepers():
    config = parse()
    assert config == ServerConfig()
    assert (config.min_timeout_ms, config.max_timeout_ms) == (4000, 40000)
    assert config.four_letter_words == frozenset({"srvr"})
    assert config.fsync is True


def test_every_flag():
    config = parse(
        "--listen", "tcp:2182:interface=127.0.0.1",
        "--data-dir", "d",
        "--tick-time", "1000",
        "--min-session-timeout", "3000",
        "--max-session-timeout", "9000",
        "--max-client-cnxns", "0",
        "--max-packet-size", "4096",
        "--4lw-whitelist", "ruok, srvr,mntr",
        "--extended-types",
        "--container-check-interval", "500",
        "--super-digest", "super:abc=",
        "--server-id", "7",
        "--snap-count", "1000",
        "--snap-retain-count", "5",
        "--no-fsync",
    )  # fmt: skip
    assert config == ServerConfig(
        listen="tcp:2182:interface=127.0.0.1",
        data_dir="d",
        tick_time_ms=1000,
        min_session_timeout_ms=3000,
        max_session_timeout_ms=9000,
        max_client_cnxns=0,
        max_packet_size=4096,
        four_letter_words=frozenset({"ruok", "srvr", "mntr"}),
        extended_types=True,
        container_check_interval_ms=500,
        super_digest="super:abc=",
        server_id=7,
        snap_count=1000,
        snap_retain_count=5,
        fsync=False,
    )


def test_star_whitelist():
    assert parse("--4lw-whitelist", "*").four_letter_words == frozenset({"*"})


def test_timeouts_follow_tick_time():
    config = parse("--tick-time", "500")
    assert (config.min_timeout_ms, config.max_timeout_ms) == (1000, 10000)


def test_config_file_under_command_line(tmp_path):
    path = tmp_path / "zkreg.conf"
    path.write_text(
        "# comment\n"
        "tick_time = 1000\n"
        "listen = tcp:2999\n"
        "4lw_whitelist = *\n"
        "extended_types = true\n"
        "no_fsync = yes\n"
    )
    config = parse("--config", str(path), "--listen", "tcp:3000")
    assert config.tick_time_ms == 1000
    assert config.listen == "tcp:3000"
    assert config.four_letter_words == frozenset({"*"})
    assert config.extended_types is True
    assert config.fsync is False


def test_shipped_config_file_gives_defaults():
    """conf/zkreg.conf documents every setting with its default value."""
    assert parse("--config", str(REPO_ROOT / "conf" / "zkreg.conf")) == ServerConfig()


def test_shipped_config_file_names_every_setting():
    text = (REPO_ROOT / "conf" / "zkreg.conf").read_text()
    for key in (
        "listen", "data_dir", "tick_time", "min_session_timeout", "max_session_timeout",
        "max_client_cnxns", "max_packet_size", "4lw_whitelist", "extended_types",
        "container_check_interval", "super_digest", "server_id", "snap_count",
        "snap_retain_count", "no_fsync", "role", "data_link_listen", "data_server",
    ):  # fmt: skip
        assert f"{key} =" in text, key


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tick-time", "0"], "tick-time must be positive"),
        (["--tick-time", "abc"], "--tick-time"),
        (["--min-session-timeout", "9000", "--max-session-timeout", "5000"], "must not exceed"),
        (["--max-client-cnxns", "-1"], "max-client-cnxns"),
        (["--max-packet-size", "0"], "max-packet-size"),
        (["--4lw-whitelist", "ruok,bogus"], "unknown four-letter word(s) bogus"),
        (["--server-id", "256"], "server-id"),
        (["--snap-count", "1"], "snap-count"),
        (["--super-digest", "nocolon"], "super-digest"),
        (["--listen", "nosuchendpoint:1"], "invalid endpoint"),
        (["--container-check-interval", "0"], "container-check-interval"),
        (["--role", "leader"], "role must be one of standalone, data, session"),
        (["--role", "data"], "--role data needs --data-link-listen"),
        (["--role", "session"], "--role session needs --data-server"),
        (["--role", "session", "--data-server", "bogus:x"], "data-server: invalid endpoint"),
    ],
)
def test_validation(argv, message):
    with pytest.raises(usage.UsageError) as raised:
        parse(*argv)
    assert message in str(raised.value)


def test_bad_config_file(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("tick_time 2000\n")
    with pytest.raises(usage.UsageError, match="line 1"):
        parse("--config", str(path))


def test_unknown_config_key(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("tickTime = 2000\n")
    with pytest.raises(usage.UsageError, match="unknown setting"):
        parse("--config", str(path))


def test_missing_config_file(tmp_path):
    with pytest.raises(usage.UsageError, match="cannot read"):
        parse("--config", str(tmp_path / "absent.conf"))


def test_bad_boolean_in_file(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("extended_types = maybe\n")
    with pytest.raises(usage.UsageError, match="extended_types"):
        parse("--config", str(path))


def test_roles():
    data = parse("--role", "data", "--data-link-listen", "tcp:2888:interface=127.0.0.1")
    assert (data.role, data.data_link_listen) == ("data", "tcp:2888:interface=127.0.0.1")
    session = parse("--role", "session", "--data-server", "tcp:127.0.0.1:2888")
    assert (session.role, session.data_server) == ("session", "tcp:127.0.0.1:2888")
