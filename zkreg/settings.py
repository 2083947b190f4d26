"""
The settings table of C{twistd zkreg}: every valued and boolean setting with its flag
(its configuration-file key is the flag with C{_} for C{-}) and its L{ServerConfig}
field, and L{build_server_config}, which merges the file's values under the command
line's into one validated L{ServerConfig}.
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


#: (flag, ServerConfig field, coerce) of every valued setting; its configuration-file
#: key is the flag with C{_} for C{-} (L{file_key}).
VALUED_SETTINGS: tuple[tuple[str, str, Any], ...] = (
    ("listen", "listen", str),
    ("data-dir", "data_dir", str),
    ("tick-time", "tick_time_ms", _whole_number),
    ("min-session-timeout", "min_session_timeout_ms", _whole_number),
    ("max-session-timeout", "max_session_timeout_ms", _whole_number),
    ("max-client-cnxns", "max_client_cnxns", _whole_number),
    ("max-packet-size", "max_packet_size", _whole_number),
    ("4lw-whitelist", "four_letter_words", str),
    ("container-check-interval", "container_check_interval_ms", _whole_number),
    ("super-digest", "super_digest", str),
    ("server-id", "server_id", _whole_number),
    ("snap-count", "snap_count", _whole_number),
    ("snap-retain-count", "snap_retain_count", _whole_number),
    ("role", "role", str),
    ("data-link-listen", "data_link_listen", str),
    ("data-server", "data_server", str),
    ("etcd", "etcd", str),
    ("etcd-prefix", "etcd_prefix", str),
    ("data-tier-timeout", "data_tier_timeout_ms", _whole_number),
    ("metrics-listen", "metrics_listen", str),
    ("admin-listen", "admin_listen", str),
    ("request-throttle-max-requests", "request_throttle_max_requests", _whole_number),
    ("request-throttle-stall-time", "request_throttle_stall_time_ms", _whole_number),
    ("connection-rate-per-ip", "connection_rate_per_ip", _whole_number),
    ("sasl-config", "sasl_config", str),
    ("connection-burst-per-ip", "connection_burst_per_ip", _whole_number),
    ("secure-listen", "secure_listen", str),
    ("ssl-keystore", "ssl_keystore", str),
    ("ssl-truststore", "ssl_truststore", str),
    ("ssl-client-auth", "ssl_client_auth", str),
    ("x509-superuser", "x509_superuser", str),
    ("data-link-ssl-keystore", "data_link_ssl_keystore", str),
    ("data-link-ssl-truststore", "data_link_ssl_truststore", str),
    ("data-link-ssl-hostname", "data_link_ssl_hostname", str),
    ("data-link-ssl-hostname-verification", "data_link_ssl_hostname_verification", parse_bool),
    ("max-output-buffer", "max_output_buffer_bytes", int),
    ("output-stall-timeout", "output_stall_timeout_ms", int),
    ("max-reply-size", "max_reply_size_bytes", int),
    ("prealloc-size", "prealloc_size_bytes", int),
    ("pause-threshold", "pause_threshold_ms", int),
    ("session-processes", "session_processes", parse_session_processes),
)

#: The boolean settings (flags); as above, each key is the flag with C{_} for C{-}.
FLAG_SETTINGS: tuple[str, ...] = (
    "extended-types",
    "no-fsync",
    "sasl-required",
    "sasl-allow-failed-clients",
)


def file_key(flag: str) -> str:
    """@return: the configuration-file key of C{--flag}: C{data-dir} is C{data_dir}."""
    return flag.replace("-", "_")


KNOWN_FILE_KEYS = frozenset(
    file_key(flag) for flag in [*(setting[0] for setting in VALUED_SETTINGS), *FLAG_SETTINGS]
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
    for flag, field_name, coerce in VALUED_SETTINGS:
        key = file_key(flag)
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
    for flag in FLAG_SETTINGS:
        key = file_key(flag)
        enabled = bool(options[flag])
        if not enabled and key in file_values:
            try:
                enabled = parse_bool(file_values[key])
            except ValueError as error:
                raise usage.UsageError(f"{key} (in {options['config']}): {error}") from error
        if flag == "no-fsync":
            settings["fsync"] = not enabled
        else:  # the ServerConfig field is the key
            settings[key] = enabled
    config = ServerConfig(**settings)
    validate_server_config(config)
    return config
