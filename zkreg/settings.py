"""
The settings table of C{twistd zkreg}: every valued and boolean setting with its flag,
its configuration-file key and its L{ServerConfig} field, and L{build_server_config},
which merges the file's values under the command line's into one validated
L{ServerConfig}.
"""

from __future__ import annotations

from typing import Any

from twisted.python import usage

from zkreg.config import ServerConfig
from zkreg.config_file import parse_bool
from zkreg.session.fourletter import FOUR_LETTER_WORDS
from zkreg.validation import validate_server_config


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def parse_session_processes(value: str) -> int | None:
    """
    Read C{--session-processes}: C{auto} (L{None}: chosen from the cores) or a
    whole number of processes, 0 for one process doing everything.
    """
    if value.strip().lower() == "auto":
        return None
    return _whole_number(value)


#: (flag, config key, ServerConfig field, coerce) of every valued setting.
VALUED_SETTINGS: tuple[tuple[str, str, str, Any], ...] = (
    ("listen", "listen", "listen", str),
    ("data-dir", "data_dir", "data_dir", str),
    ("tick-time", "tick_time", "tick_time_ms", _whole_number),
    ("min-session-timeout", "min_session_timeout", "min_session_timeout_ms", _whole_number),
    ("max-session-timeout", "max_session_timeout", "max_session_timeout_ms", _whole_number),
    ("max-client-cnxns", "max_client_cnxns", "max_client_cnxns", _whole_number),
    ("max-packet-size", "max_packet_size", "max_packet_size", _whole_number),
    ("4lw-whitelist", "4lw_whitelist", "four_letter_words", str),
    (
        "container-check-interval",
        "container_check_interval",
        "container_check_interval_ms",
        _whole_number,
    ),
    ("super-digest", "super_digest", "super_digest", str),
    ("server-id", "server_id", "server_id", _whole_number),
    ("snap-count", "snap_count", "snap_count", _whole_number),
    ("snap-retain-count", "snap_retain_count", "snap_retain_count", _whole_number),
    ("role", "role", "role", str),
    ("data-link-listen", "data_link_listen", "data_link_listen", str),
    ("data-server", "data_server", "data_server", str),
    ("etcd", "etcd", "etcd", str),
    ("etcd-prefix", "etcd_prefix", "etcd_prefix", str),
    ("data-tier-timeout", "data_tier_timeout", "data_tier_timeout_ms", _whole_number),
    ("metrics-listen", "metrics_listen", "metrics_listen", str),
    ("admin-listen", "admin_listen", "admin_listen", str),
    (
        "request-throttle-max-requests",
        "request_throttle_max_requests",
        "request_throttle_max_requests",
        _whole_number,
    ),
    (
        "request-throttle-stall-time",
        "request_throttle_stall_time",
        "request_throttle_stall_time_ms",
        _whole_number,
    ),
    ("connection-rate-per-ip", "connection_rate_per_ip", "connection_rate_per_ip", _whole_number),
    ("sasl-config", "sasl_config", "sasl_config", str),
    (
        "connection-burst-per-ip",
        "connection_burst_per_ip",
        "connection_burst_per_ip",
        _whole_number,
    ),
    ("secure-listen", "secure_listen", "secure_listen", str),
    ("ssl-keystore", "ssl_keystore", "ssl_keystore", str),
    ("ssl-truststore", "ssl_truststore", "ssl_truststore", str),
    ("ssl-client-auth", "ssl_client_auth", "ssl_client_auth", str),
    ("x509-superuser", "x509_superuser", "x509_superuser", str),
    ("data-link-ssl-keystore", "data_link_ssl_keystore", "data_link_ssl_keystore", str),
    ("data-link-ssl-truststore", "data_link_ssl_truststore", "data_link_ssl_truststore", str),
    ("data-link-ssl-hostname", "data_link_ssl_hostname", "data_link_ssl_hostname", str),
    (
        "data-link-ssl-hostname-verification",
        "data_link_ssl_hostname_verification",
        "data_link_ssl_hostname_verification",
        parse_bool,
    ),
    ("max-output-buffer", "max_output_buffer", "max_output_buffer_bytes", int),
    ("output-stall-timeout", "output_stall_timeout", "output_stall_timeout_ms", int),
    ("max-reply-size", "max_reply_size", "max_reply_size_bytes", int),
    ("prealloc-size", "prealloc_size", "prealloc_size_bytes", int),
    ("pause-threshold", "pause_threshold", "pause_threshold_ms", int),
    ("session-processes", "session_processes", "session_processes", parse_session_processes),
)

#: (flag, config key) of the boolean settings.
FLAG_SETTINGS: tuple[tuple[str, str], ...] = (
    ("extended-types", "extended_types"),
    ("no-fsync", "no_fsync"),
    ("sasl-required", "sasl_required"),
    ("sasl-allow-failed-clients", "sasl_allow_failed_clients"),
)

KNOWN_FILE_KEYS = frozenset(
    [key for _, key, _, _ in VALUED_SETTINGS] + [key for _, key in FLAG_SETTINGS]
)


def parse_four_letter_words(value: str) -> frozenset[str]:
    """
    Read a four-letter-word whitelist.

    @param value: comma-separated words, or C{*} for all (as ZooKeeper's
        C{4lw.commands.whitelist}).
    @return: the words; C{{"*"}} for all.
    @raise ValueError: for a word zkreg does not know.
    """
    words = {word.strip() for word in value.split(",") if word.strip()}
    if "*" in words:
        return frozenset({"*"})
    unknown = sorted(words - FOUR_LETTER_WORDS)
    if unknown:
        raise ValueError(
            f"unknown four-letter word(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(FOUR_LETTER_WORDS))}, or '*'"
        )
    return frozenset(words)


def build_server_config(options: Any, file_values: dict[str, str]) -> ServerConfig:
    """
    Make the L{ServerConfig} from parsed options and configuration-file values.

    @param options: a mapping of option name to value (L{None} when not given).
    @param file_values: the configuration file's values by key.
    @return: the validated configuration.
    @raise usage.UsageError: for a value of the wrong type or out of range.
    """
    settings: dict[str, Any] = {}
    for flag, key, field_name, coerce in VALUED_SETTINGS:
        raw = options[flag]
        origin = f"--{flag}"
        if raw is None and key in file_values:
            raw = file_values[key]
            origin = f"{key} (in {options['config']})"
        if raw is None:
            continue
        try:
            if flag == "4lw-whitelist":
                settings[field_name] = parse_four_letter_words(raw)
            else:
                settings[field_name] = (_whole_number if coerce is int else coerce)(raw)
        except ValueError as error:
            raise usage.UsageError(f"{origin}: {error}") from error
    for flag, key in FLAG_SETTINGS:
        enabled = bool(options[flag])
        if not enabled and key in file_values:
            try:
                enabled = parse_bool(file_values[key])
            except ValueError as error:
                raise usage.UsageError(f"{key} (in {options['config']}): {error}") from error
        if flag == "extended-types":
            settings["extended_types"] = enabled
        elif flag == "sasl-required":
            settings["sasl_required"] = enabled
        elif flag == "sasl-allow-failed-clients":
            settings["sasl_allow_failed_clients"] = enabled
        else:
            settings["fsync"] = not enabled
    config = ServerConfig(**settings)
    validate_server_config(config)
    return config
