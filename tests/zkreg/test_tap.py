"""
C{twistd zkreg} options: defaults, flags, the configuration file, validation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zkreg.config import ServerConfig
from zkreg.startup import StartupError
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
        "metrics_listen", "admin_listen", "request_throttle_max_requests",
        "request_throttle_stall_time", "connection_rate_per_ip", "connection_burst_per_ip",
        "sasl_required", "sasl_allow_failed_clients",
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
        (["--metrics-listen", "bogus:1"], "metrics-listen: invalid endpoint"),
        (["--admin-listen", "tcp:99999"], "admin-listen: invalid endpoint"),
        (["--request-throttle-max-requests", "-1"], "request-throttle-max-requests"),
        (["--request-throttle-stall-time", "0"], "request-throttle-stall-time"),
        (["--connection-rate-per-ip", "-2"], "connection-rate-per-ip"),
        (["--connection-burst-per-ip", "0"], "connection-burst-per-ip"),
        (["--sasl-config", "/nonexistent/jaas.conf"], "sasl-config: cannot read SASL config"),
        (["--sasl-required"], "--sasl-required needs --sasl-config"),
        (["--listen", "tcp:99999"], "port 99999 is not in 0-65535"),
        (["--role", "session", "--data-server", "tcp:127.0.0.1:70000"], "port 70000"),
        (
            ["--data-server", "tcp:127.0.0.1:2888"],
            "--data-server does not apply to --role standalone",
        ),
        (
            ["--role", "data", "--data-link-listen", "tcp:2888", "--data-server", "tcp:h:1"],
            "--data-server does not apply to --role data",
        ),
        (
            ["--role", "data", "--data-link-listen", "tcp:2888", "--listen", "tcp:2181"],
            "--listen does not apply to --role data",
        ),
        (
            ["--role", "session", "--data-server", "tcp:h:1", "--data-dir", "d"],
            "--data-dir does not apply to --role session",
        ),
        (
            ["--role", "session", "--data-server", "tcp:h:1", "--snap-count", "5"],
            "--snap-count does not apply",
        ),
        (
            ["--role", "session", "--data-server", "tcp:h:1", "--no-fsync"],
            "--no-fsync does not apply",
        ),
        (
            ["--role", "session", "--data-server", "tcp:h:1", "--data-link-listen", "tcp:2888"],
            "--data-link-listen does not apply",
        ),
        (["--bogus"], "option --bogus not recognized"),
    ],
)
def test_validation(argv, message):
    with pytest.raises(StartupError) as raised:
        parse(*argv)
    assert message in str(raised.value)


def test_bad_config_file(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("tick_time 2000\n")
    with pytest.raises(StartupError, match="line 1"):
        parse("--config", str(path))


def test_unknown_config_key(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("tickTime = 2000\n")
    with pytest.raises(StartupError, match="unknown setting"):
        parse("--config", str(path))


def test_missing_config_file(tmp_path):
    with pytest.raises(StartupError, match="cannot read"):
        parse("--config", str(tmp_path / "absent.conf"))


def test_bad_boolean_in_file(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("extended_types = maybe\n")
    with pytest.raises(StartupError, match="extended_types"):
        parse("--config", str(path))


def test_roles():
    data = parse("--role", "data", "--data-link-listen", "tcp:2888:interface=127.0.0.1")
    assert (data.role, data.data_link_listen) == ("data", "tcp:2888:interface=127.0.0.1")
    session = parse("--role", "session", "--data-server", "tcp:127.0.0.1:2888")
    assert (session.role, session.data_server) == ("session", "tcp:127.0.0.1:2888")


def test_etcd_options():
    """--etcd and --etcd-prefix: for the data and session roles, URLs checked at start."""
    data = parse(
        "--role", "data", "--data-link-listen", "tcp:2888:interface=127.0.0.1",
        "--etcd", "http://127.0.0.1:2379,http://127.0.0.1:22379", "--etcd-prefix", "/tier",
    )  # fmt: skip
    assert (data.etcd, data.etcd_prefix) == (
        "http://127.0.0.1:2379,http://127.0.0.1:22379",
        "/tier",
    )
    session = parse("--role", "session", "--etcd", "http://127.0.0.1:2379")
    assert (session.etcd, session.data_server) == ("http://127.0.0.1:2379", None)
    with pytest.raises(StartupError, match="--etcd does not apply to --role standalone"):
        parse("--etcd", "http://127.0.0.1:2379")
    with pytest.raises(StartupError, match="is not an http://host:port URL"):
        parse("--role", "session", "--etcd", "127.0.0.1:2379")
    with pytest.raises(StartupError, match="has no port"):
        parse("--role", "session", "--etcd", "http://127.0.0.1")
    with pytest.raises(StartupError, match="etcd-prefix must be an absolute key prefix"):
        parse("--role", "session", "--etcd", "http://127.0.0.1:2379", "--etcd-prefix", "zk")
    with pytest.raises(StartupError, match="needs --data-server .* or --etcd"):
        parse("--role", "session")


def test_validation_error_is_one_line(capfd):
    """A bad value prints one line on stderr, not twistd's whole usage text."""
    with pytest.raises(StartupError) as raised:
        parse("--tick-time", "abc")
    assert raised.value.code == 1
    out, err = capfd.readouterr()
    assert err == "zkreg: --tick-time: expected a whole number, got 'abc' " + (
        "(twistd zkreg --help lists the options)\n"
    )
    assert out == ""


def test_version(capsys):
    import curatorish
    import zkreg

    with pytest.raises(SystemExit) as raised:
        parse("--version")
    assert raised.value.code == 0
    assert capsys.readouterr().out == f"zkreg {zkreg.__version__}\n"
    assert curatorish.__version__ == zkreg.__version__
    setup_cfg = (REPO_ROOT / "setup.cfg").read_text()
    assert "version = attr: zkreg.__version__" in setup_cfg


def test_inline_comments(tmp_path):
    path = tmp_path / "zkreg.conf"
    path.write_text(
        "tick_time = 1000   # ms\n"
        "4lw_whitelist = ruok,srvr # two words\n"
        "super_digest = super:abc=\t# tab before the comment\n"
    )
    config = parse("--config", str(path))
    assert config.tick_time_ms == 1000
    assert config.four_letter_words == frozenset({"ruok", "srvr"})
    assert config.super_digest == "super:abc="


def test_repeated_key_names_both_lines(tmp_path):
    path = tmp_path / "zkreg.conf"
    path.write_text("tick_time = 1000\n# a comment\n\ntick_time = 3000\n")
    with pytest.raises(StartupError, match="tick_time is set twice, on line 1 and line 4"):
        parse("--config", str(path))


def test_data_server_in_file_needs_role_session(tmp_path):
    path = tmp_path / "zkreg.conf"
    path.write_text("data_server = tcp:127.0.0.1:2888\n")
    with pytest.raises(StartupError, match="data_server .* does not apply to role standalone"):
        parse("--config", str(path))
    assert parse("--config", str(path), "--role", "session").data_server == ("tcp:127.0.0.1:2888")


def _example_lines() -> list[str]:
    """The commented-out example settings of the shipped configuration file."""
    text = (REPO_ROOT / "conf" / "zkreg.conf").read_text()
    return [line for line in text.splitlines() if re.match(r"# [a-z0-9_]+ = \S", line)]


def test_shipped_config_has_examples():
    keys = {line[2:].split(" =")[0] for line in _example_lines()}
    assert {"min_session_timeout", "super_digest", "data_server", "data_link_listen"} <= keys


@pytest.mark.parametrize("example", _example_lines())
def test_every_shipped_example_works_uncommented(tmp_path, example):
    """Uncommenting any documented example gives a valid configuration that uses it."""
    text = (REPO_ROOT / "conf" / "zkreg.conf").read_text()
    path = tmp_path / "zkreg.conf"
    path.write_text(text.replace(example, example[2:]))
    key, _, value = example[2:].partition("=")
    key = key.strip()
    role = {
        "data_server": ["--role", "session"],
        "etcd": ["--role", "session"],
        "etcd_prefix": ["--role", "session", "--etcd", "http://127.0.0.1:2379"],
    }.get(key, [])
    config = parse("--config", str(path), *role)
    field_name = {
        "min_session_timeout": "min_session_timeout_ms",
        "max_session_timeout": "max_session_timeout_ms",
        "max_output_buffer": "max_output_buffer_bytes",
        "max_reply_size": "max_reply_size_bytes",
        "prealloc_size": "prealloc_size_bytes",
    }.get(key, key)
    assert str(getattr(config, field_name)) == value.split("#")[0].strip()


def test_every_whole_number_option_says_so():
    """Options added with a plain int coercion get the same readable message."""
    from zkreg.settings import VALUED_SETTINGS

    for flag, _, coerce in VALUED_SETTINGS:
        if coerce in (int,) or getattr(coerce, "__name__", "") == "_whole_number":
            with pytest.raises(StartupError, match=f"--{flag}: expected a whole number"):
                parse(f"--{flag}", "12x")
