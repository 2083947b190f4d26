"""
C{twistd zkreg}: the command-line options and the service tree of one zkreg process.

Every setting is a flag and a key of the configuration file (C{--tick-time} is
C{tick_time}); the command line wins over the file, the file over the defaults of
L{zkreg.config.ServerConfig}.  The result is one L{ServerConfig} that every layer reads.
"""

from __future__ import annotations

import os
from typing import Any

from OpenSSL.SSL import Error as SSLError
from twisted.application import service
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from zkreg import __version__
from zkreg.config import ServerConfig
from zkreg.config_file import ConfigFileError, load_config_file, parse_bool
from zkreg.operations import OperationsEndpoints
from zkreg.session.fourletter import FOUR_LETTER_WORDS
from zkreg.startup import (
    GuardedStartup,
    fail_startup,
)


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


#: (flag, config key, ServerConfig field, coerce) of every valued setting.
_VALUED_SETTINGS: tuple[tuple[str, str, str, Any], ...] = (
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
    ("max-output-buffer", "max_output_buffer", "max_output_buffer_bytes", int),
    ("output-stall-timeout", "output_stall_timeout", "output_stall_timeout_ms", int),
    ("max-reply-size", "max_reply_size", "max_reply_size_bytes", int),
    ("prealloc-size", "prealloc_size", "prealloc_size_bytes", int),
    ("pause-threshold", "pause_threshold", "pause_threshold_ms", int),
)

#: (flag, config key) of the boolean settings.
_FLAG_SETTINGS: tuple[tuple[str, str], ...] = (
    ("extended-types", "extended_types"),
    ("no-fsync", "no_fsync"),
    ("sasl-required", "sasl_required"),
    ("sasl-allow-failed-clients", "sasl_allow_failed_clients"),
)

_KNOWN_FILE_KEYS = frozenset(
    [key for _, key, _, _ in _VALUED_SETTINGS] + [key for _, key in _FLAG_SETTINGS]
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


class Options(usage.Options):
    """
    The options of C{twistd zkreg}.

    Valued options default to L{None} here so that L{postOptions} can tell "given on
    the command line" from "not given" and let the configuration file fill the rest.

    @ivar server_config: the merged L{ServerConfig}, set by L{postOptions}.
    """

    synopsis = "[options]"
    longdesc = (
        "Run zkreg, a ZooKeeper-compatible registry server. Every option can also be "
        "set in the configuration file given with --config (key = value, the option "
        "name with '_' for '-', e.g. tick_time = 2000); the command line wins."
    )

    optFlags = [
        ["extended-types", None, "Enable TTL nodes (ZooKeeper's extendedTypesEnabled)."],
        [
            "no-fsync",
            None,
            "UNSAFE: acknowledge writes before they are synced to disk "
            "(a power loss can lose acknowledged writes). For benchmarks and tests only.",
        ],
        [
            "sasl-required",
            None,
            "Refuse every request of a client that has not SASL-authenticated "
            "(ZooKeeper's sessionRequireClientSASLAuth); needs --sasl-config.",
        ],
        [
            "sasl-allow-failed-clients",
            None,
            "Keep a client whose SASL exchange failed, unauthenticated, instead of "
            "closing it (ZooKeeper's allowSaslFailedClients); not with --sasl-required.",
        ],
    ]

    optParameters = [
        ["config", "c", None, "Configuration file (key = value lines)."],
        ["listen", "l", None, "Client endpoint (Twisted strports). [default: tcp:2181]"],
        ["data-dir", "d", None, "Directory of the log and snapshots. [default: ./zkreg-data]"],
        [
            "secure-listen",
            None,
            None,
            "TLS client endpoint beside --listen (ZooKeeper's secureClientPort), "
            "e.g. tcp:2281:interface=127.0.0.1; needs --ssl-keystore. [default: off]",
        ],
        [
            "ssl-keystore",
            None,
            None,
            "PEM file with the TLS listener's private key and certificate chain.",
        ],
        [
            "ssl-truststore",
            None,
            None,
            "PEM file of the CAs whose client certificates are accepted.",
        ],
        [
            "ssl-client-auth",
            None,
            None,
            "none, want or need: whether TLS clients must present a certificate. [default: need]",
        ],
        [
            "x509-superuser",
            None,
            None,
            "Subject DN (RFC 2253, e.g. CN=admin,O=Example) whose client certificate "
            "passes every ACL (zookeeper.X509AuthenticationProvider.superUser).",
        ],
        [
            "data-link-ssl-keystore",
            None,
            None,
            "PEM key and certificate this process presents on the data link; with "
            "--data-link-ssl-truststore the data link is mutual TLS.",
        ],
        [
            "data-link-ssl-truststore",
            None,
            None,
            "PEM CA certificates the other side of the data link must chain to.",
        ],
        ["tick-time", None, None, "Basic time unit in milliseconds. [default: 2000]"],
        [
            "min-session-timeout",
            None,
            None,
            "Smallest negotiated session timeout in ms. [default: 2 ticks]",
        ],
        [
            "max-session-timeout",
            None,
            None,
            "Largest negotiated session timeout in ms. [default: 20 ticks]",
        ],
        [
            "max-client-cnxns",
            None,
            None,
            "Connections allowed from one client IP; 0 means unlimited. [default: 60]",
        ],
        [
            "max-packet-size",
            None,
            None,
            "Largest request frame in bytes (jute.maxbuffer). [default: 1048575]",
        ],
        [
            "4lw-whitelist",
            None,
            None,
            "Comma-separated four-letter words answered, '*' for all. [default: srvr]",
        ],
        [
            "container-check-interval",
            None,
            None,
            "Milliseconds between sweeps for empty containers and expired TTL nodes. "
            "[default: 60000]",
        ],
        [
            "super-digest",
            None,
            None,
            "super:<base64 sha1> whose holder passes every ACL (as "
            "zookeeper.DigestAuthenticationProvider.superDigest).",
        ],
        ["server-id", None, None, "Server id 0-255, the top byte of session ids. [default: 0]"],
        ["snap-count", None, None, "Transactions between snapshots. [default: 100000]"],
        [
            "snap-retain-count",
            None,
            None,
            "Snapshots (and their logs) kept when purging. [default: 3]",
        ],
        [
            "role",
            None,
            None,
            "standalone (everything), data (data server only) or session (session "
            "server of --data-server). [default: standalone]",
        ],
        [
            "data-link-listen",
            None,
            None,
            "Endpoint on which a data or standalone server accepts session servers "
            "(e.g. tcp:2888:interface=127.0.0.1). [required for --role data]",
        ],
        [
            "data-server",
            None,
            None,
            "Client endpoints of the data servers, for --role session, comma-separated, "
            "tried in turn (e.g. tcp:127.0.0.1:2888,tcp:127.0.0.1:2889).",
        ],
        [
            "etcd",
            None,
            None,
            "For --role data: keep the log on this etcd cluster (client URLs, "
            "comma-separated, e.g. http://127.0.0.1:2379); data servers on one cluster "
            "elect one active, the others stand by. For --role session: follow the "
            "active data server named there. [default: the file log]",
        ],
        [
            "etcd-prefix",
            None,
            None,
            "For --role data with --etcd: the key prefix of this data tier. [default: /zkreg]",
        ],
        [
            "data-tier-timeout",
            None,
            None,
            "For --role session: how long (ms) writes are held while no data server is "
            "linked before they fail and client connections close. "
            "[default: the max session timeout]",
        ],
        [
            "metrics-listen",
            None,
            None,
            "Endpoint serving Prometheus metrics at /metrics (e.g. tcp:7000). [default: off]",
        ],
        [
            "admin-listen",
            None,
            None,
            "Endpoint of the admin HTTP server: ZooKeeper's AdminServer commands under "
            "/commands/<name>, /healthz, /readyz (e.g. tcp:8080). [default: off]",
        ],
        [
            "request-throttle-max-requests",
            None,
            None,
            "Writes in the pipeline at once over all connections; more wait "
            "(ZooKeeper's request_throttle_max_requests); 0 is no limit. [default: 0]",
        ],
        [
            "request-throttle-stall-time",
            None,
            None,
            "Milliseconds a connection is not read from when the throttler's queue is "
            "full (request_throttle_stall_time). [default: 100]",
        ],
        [
            "connection-rate-per-ip",
            None,
            None,
            "New connections accepted per second from one client IP; 0 is no limit. [default: 0]",
        ],
        [
            "sasl-config",
            None,
            None,
            "JAAS-style file whose Server section lists SASL DIGEST-MD5 users "
            '(user_<name>="<password>"); enables SASL and the sasl ACL scheme. [default: off]',
        ],
        [
            "connection-burst-per-ip",
            None,
            None,
            "New connections one client IP may open at once before the rate applies. [default: 10]",
        ],
        [
            "max-output-buffer",
            None,
            None,
            "Unsent reply bytes a connection may hold before it is no longer read "
            "until they drain. [default: max-packet-size + 4 MiB]",
        ],
        [
            "output-stall-timeout",
            None,
            None,
            "Milliseconds a connection may stay over --max-output-buffer (a client "
            "that stopped reading) before it is closed; 0: never. [default: 30000]",
        ],
        [
            "max-reply-size",
            None,
            None,
            "Largest multiRead or getChildren reply in bytes; a larger one is refused "
            "with MarshallingError. [default: 4 x max-packet-size]",
        ],
        [
            "prealloc-size",
            None,
            None,
            "Bytes preallocated per log segment. [default: 64 MiB, less when the data "
            "directory's volume has less free space]",
        ],
        [
            "pause-threshold",
            None,
            None,
            "Milliseconds the server may not run (SIGSTOP, a heavy request) before "
            "the gap is a pause that session expiry does not count; 0: count every "
            "gap. [default: 500]",
        ],
    ]

    compData = usage.Completions(
        optActions={
            "config": usage.CompleteFiles("*.conf"),
            "data-dir": usage.CompleteDirs(),
        }
    )

    def opt_version(self) -> None:
        """
        Print zkreg's version and exit (twistd's own --version prints Twisted's).
        """
        print(f"zkreg {__version__}")
        raise SystemExit(0)

    def parseOptions(self, options: Any = None) -> None:
        """
        Parse like L{usage.Options}, but a bad option or value stops with one line
        on stderr (twistd would print the whole usage text before it).

        @raise zkreg.startup.StartupError: naming the option and what is wrong.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            fail_startup(f"{error} (twistd zkreg --help lists the options)")

    def postOptions(self) -> None:
        """
        Merge the configuration file under the command line and validate the result.

        @raise usage.UsageError: naming the setting and what is wrong with it.
        """
        file_values: dict[str, str] = {}
        if self["config"] is not None:
            try:
                file_values = load_config_file(self["config"])
            except ConfigFileError as error:
                raise usage.UsageError(str(error)) from error
            unknown = sorted(set(file_values) - _KNOWN_FILE_KEYS)
            if unknown:
                raise usage.UsageError(
                    f"{self['config']}: unknown setting(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(_KNOWN_FILE_KEYS))}"
                )
        self.server_config = build_server_config(self, file_values)
        _check_role_options(self, file_values, self.server_config.role)


def build_server_config(options: Any, file_values: dict[str, str]) -> ServerConfig:
    """
    Make the L{ServerConfig} from parsed options and configuration-file values.

    @param options: a mapping of option name to value (L{None} when not given).
    @param file_values: the configuration file's values by key.
    @return: the validated configuration.
    @raise usage.UsageError: for a value of the wrong type or out of range.
    """
    settings: dict[str, Any] = {}
    for flag, key, field_name, coerce in _VALUED_SETTINGS:
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
    for flag, key in _FLAG_SETTINGS:
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


#: Options that mean something only to one side of the split, given on the command
#: line (a shared configuration file may well name them all): the roles they fit.
_ROLE_ONLY_OPTIONS: dict[str, tuple[str, ...]] = {
    "data-server": ("session",),
    "etcd": ("data", "session"),
    "etcd-prefix": ("data", "session"),
    "data-tier-timeout": ("session",),
    "listen": ("standalone", "session"),
    "data-dir": ("standalone", "data"),
    "snap-count": ("standalone", "data"),
    "snap-retain-count": ("standalone", "data"),
    "no-fsync": ("standalone", "data"),
    "container-check-interval": ("standalone", "data"),
    "data-link-listen": ("standalone", "data"),
    "request-throttle-max-requests": ("standalone", "session"),
    "request-throttle-stall-time": ("standalone", "session"),
    "connection-rate-per-ip": ("standalone", "session"),
    "connection-burst-per-ip": ("standalone", "session"),
    "sasl-required": ("standalone", "session"),
    "sasl-allow-failed-clients": ("standalone", "session"),
    "secure-listen": ("standalone", "session"),
    "ssl-keystore": ("standalone", "session"),
    "ssl-truststore": ("standalone", "session"),
    "ssl-client-auth": ("standalone", "session"),
    "x509-superuser": ("standalone", "session"),
    "prealloc-size": ("standalone", "data"),
    "pause-threshold": ("standalone", "data"),
    "max-output-buffer": ("standalone", "session"),
    "output-stall-timeout": ("standalone", "session"),
    "max-reply-size": ("standalone", "session"),
}


#: Keys of the configuration file checked like L{_ROLE_ONLY_OPTIONS}: those with no
#: default (the others are set in the shipped file, which serves every role).
_ROLE_ONLY_FILE_KEYS = ("data-server", "data-link-listen", "etcd", "etcd-prefix")


def _check_role_options(options: Any, file_values: dict[str, str], role: str) -> None:
    """
    Refuse an option the role would silently ignore (a session server given
    C{--data-dir} keeps no data there).

    @raise usage.UsageError: naming the option and the roles it belongs to.
    """
    for flag, roles in _ROLE_ONLY_OPTIONS.items():
        fits = " or ".join(roles)
        if options[flag] and role not in roles:
            raise usage.UsageError(f"--{flag} does not apply to --role {role} (only to {fits})")
        key = flag.replace("-", "_")
        if flag in _ROLE_ONLY_FILE_KEYS and key in file_values and role not in roles:
            raise usage.UsageError(
                f"{key} (in {options['config']}) does not apply to role {role} (only to {fits})"
            )


def _check_port(description: str, origin: str) -> None:
    """
    Check the port of a C{tcp:} endpoint string, which Twisted checks only when it
    binds or connects (C{tcp:99999} would fail then, with a traceback).
    """
    kind, _, rest = description.partition(":")
    if kind not in ("tcp", "tcp6", "ssl"):
        return
    parts = [part for part in rest.split(":") if "=" not in part]
    port_text = parts[-1] if origin == "data-server" and parts else (parts[0] if parts else "")
    if port_text.isdigit() and not 0 <= int(port_text) <= 65535:
        raise usage.UsageError(
            f"{origin}: invalid endpoint {description!r}: port {port_text} is not in 0-65535"
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise usage.UsageError(message)


def validate_server_config(config: ServerConfig) -> None:
    """
    Check the ranges and relations of the settings.

    @raise usage.UsageError: for the first setting out of range.
    """
    _require(config.tick_time_ms > 0, f"tick-time must be positive, got {config.tick_time_ms}")
    _require(
        config.min_timeout_ms > 0,
        f"min-session-timeout must be positive, got {config.min_timeout_ms}",
    )
    _require(
        config.min_timeout_ms <= config.max_timeout_ms,
        f"min-session-timeout ({config.min_timeout_ms} ms) must not exceed "
        f"max-session-timeout ({config.max_timeout_ms} ms)",
    )
    _require(
        config.max_client_cnxns >= 0,
        f"max-client-cnxns must be 0 (unlimited) or positive, got {config.max_client_cnxns}",
    )
    _require(
        config.max_packet_size > 0,
        f"max-packet-size must be positive, got {config.max_packet_size}",
    )
    _require(
        config.max_output_buffer > 0,
        f"max-output-buffer must be positive, got {config.max_output_buffer}",
    )
    _require(
        config.output_stall_timeout_ms >= 0,
        f"output-stall-timeout must be 0 (never) or positive, got {config.output_stall_timeout_ms}",
    )
    _require(
        config.pause_threshold_ms >= 0,
        f"pause-threshold must be 0 (off) or positive, got {config.pause_threshold_ms}",
    )
    _require(
        config.max_reply_size > 0,
        f"max-reply-size must be positive, got {config.max_reply_size}",
    )
    _require(
        config.prealloc_size_bytes is None or config.prealloc_size_bytes >= 0,
        f"prealloc-size must be 0 (none) or positive, got {config.prealloc_size_bytes}",
    )
    _require(
        config.container_check_interval_ms > 0,
        f"container-check-interval must be positive, got {config.container_check_interval_ms}",
    )
    _require(
        0 <= config.server_id <= 255,
        f"server-id must be between 0 and 255, got {config.server_id}",
    )
    _require(config.snap_count >= 2, f"snap-count must be at least 2, got {config.snap_count}")
    _require(
        config.snap_retain_count >= 1,
        f"snap-retain-count must be at least 1, got {config.snap_retain_count}",
    )
    if config.super_digest is not None:
        user, separator, digest = config.super_digest.partition(":")
        _require(
            bool(separator and user and digest),
            f"super-digest must look like user:base64digest, got {config.super_digest!r}",
        )
    try:
        serverFromString(reactor, config.listen)
    except (ValueError, KeyError, TypeError) as error:
        raise usage.UsageError(f"listen: invalid endpoint {config.listen!r}: {error}") from error
    except (OSError, SSLError) as error:
        # An ssl: endpoint reads its certificate and key when parsed.
        raise usage.UsageError(
            f"listen: cannot use the TLS files of {config.listen!r}: {_tls_failure(error)}"
        ) from error
    _validate_tls(config)
    _check_port(config.listen, "listen")
    _require(
        config.role in ROLES,
        f"role must be one of {', '.join(ROLES)}, got {config.role!r}",
    )
    if config.role == "data":
        _require(
            config.data_link_listen is not None,
            "--role data needs --data-link-listen (where session servers connect)",
        )
    if config.etcd is not None:
        from zkreg.persistence.etcd.config import check_etcd_settings

        problem = check_etcd_settings(config.etcd, config.etcd_prefix)
        _require(problem is None, problem or "")
    if config.role == "session":
        if config.data_server is None and config.etcd is None:
            raise usage.UsageError(
                "--role session needs --data-server (the data server's endpoint) "
                "or --etcd (to follow the active data server of an etcd data tier)"
            )
        from zkreg.link.endpoints import parse_data_servers

        try:
            described = (
                parse_data_servers(reactor, config.data_server)
                if config.data_server is not None
                else []
            )
        except (ValueError, KeyError, TypeError) as error:
            raise usage.UsageError(
                f"data-server: invalid endpoint {config.data_server!r}: {error}"
            ) from error
        for description, _ in described:
            _check_port(description, "data-server")
        _require(
            config.data_tier_timeout > 0,
            f"data-tier-timeout must be positive, got {config.data_tier_timeout}",
        )
    _require(
        config.request_throttle_max_requests >= 0,
        "request-throttle-max-requests must be 0 (no limit) or positive, "
        f"got {config.request_throttle_max_requests}",
    )
    _require(
        config.request_throttle_stall_time_ms > 0,
        f"request-throttle-stall-time must be positive, got {config.request_throttle_stall_time_ms}",
    )
    _require(
        config.connection_rate_per_ip >= 0,
        f"connection-rate-per-ip must be 0 (no limit) or positive, got {config.connection_rate_per_ip}",
    )
    _require(
        config.connection_burst_per_ip > 0,
        f"connection-burst-per-ip must be positive, got {config.connection_burst_per_ip}",
    )
    _require(
        not config.sasl_required or config.sasl_config is not None,
        "--sasl-required needs --sasl-config (the users who may authenticate)",
    )
    if config.sasl_config is not None:
        from zkreg.session.sasl import JaasConfigError, load_jaas_users

        try:
            load_jaas_users(config.sasl_config)
        except JaasConfigError as error:
            raise usage.UsageError(f"sasl-config: {error}") from error
    for origin, endpoint in (
        ("metrics-listen", config.metrics_listen),
        ("admin-listen", config.admin_listen),
    ):
        if endpoint is not None:
            try:
                serverFromString(reactor, endpoint)
            except (ValueError, KeyError, TypeError) as error:
                raise usage.UsageError(
                    f"{origin}: invalid endpoint {endpoint!r}: {error}"
                ) from error
            _check_port(endpoint, origin)
    if config.data_link_listen is not None:
        try:
            serverFromString(reactor, config.data_link_listen)
        except (ValueError, KeyError, TypeError) as error:
            raise usage.UsageError(
                f"data-link-listen: invalid endpoint {config.data_link_listen!r}: {error}"
            ) from error
        _check_port(config.data_link_listen, "data-link-listen")


def _tls_failure(error: BaseException) -> str:
    """One line for a certificate or key file Twisted's C{ssl:} endpoint could not use."""
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
    return f"not a PEM certificate or key ({error})"


def _validate_tls(config: ServerConfig) -> None:
    """
    Check the TLS settings: the secure listener's endpoint and stores, the client
    auth mode, the x509 super user's DN, and the data link's stores.

    @raise usage.UsageError: naming the setting and the file at fault.
    """
    from zkreg.tls import CLIENT_AUTH_MODES, TLSConfigError, client_tls_options, server_tls_options

    _require(
        config.ssl_client_auth in CLIENT_AUTH_MODES,
        f"ssl-client-auth must be one of {', '.join(CLIENT_AUTH_MODES)}, "
        f"got {config.ssl_client_auth!r}",
    )
    if config.secure_listen is not None:
        _require(
            config.ssl_keystore is not None,
            "--secure-listen needs --ssl-keystore (the server's PEM key and certificate)",
        )
        try:
            serverFromString(reactor, config.secure_listen)
        except (ValueError, KeyError, TypeError) as error:
            raise usage.UsageError(
                f"secure-listen: invalid endpoint {config.secure_listen!r}: {error}"
            ) from error
        _check_port(config.secure_listen, "secure-listen")
        assert config.ssl_keystore is not None
        try:
            server_tls_options(config.ssl_keystore, config.ssl_truststore, config.ssl_client_auth)
        except TLSConfigError as error:
            raise usage.UsageError(f"secure-listen: {error}") from error
    if config.x509_superuser is not None:
        _require(
            "=" in config.x509_superuser,
            f"x509-superuser must be a subject DN like CN=admin,O=Example, "
            f"got {config.x509_superuser!r}",
        )
    keystore = config.data_link_ssl_keystore
    truststore = config.data_link_ssl_truststore
    if (keystore is None) != (truststore is None):
        raise usage.UsageError(
            "data-link TLS needs both --data-link-ssl-keystore and --data-link-ssl-truststore"
        )
    if keystore is not None and truststore is not None:
        _require(
            config.etcd is None or config.role != "session",
            "data-link TLS does not yet work with --etcd leader discovery on a session "
            "server; give --data-server instead",
        )
        try:
            server_tls_options(keystore, truststore, "need")
            client_tls_options("localhost", truststore, keystore)
        except TLSConfigError as error:
            raise usage.UsageError(f"data link: {error}") from error


#: The roles of one process (DESIGN.md).
ROLES = ("standalone", "data", "session")


def makeService(options: Options) -> service.MultiService:
    """
    Build the services of one zkreg process for its role.

      - standalone: the durable state of the data directory (recovered here, before
        anything listens), the data server on it, and the client listener; with
        C{--data-link-listen}, also a listener for session servers;
      - data: the same without the client listener (session servers connect);
      - session: a session server whose data link connects to C{--data-server}
        when the service starts; clients are accepted once its replica is loaded.

    @param options: parsed L{Options}.
    @return: a L{MultiService} to run under twistd.
    @raise zkreg.startup.StartupError: when the data directory cannot be used or
        recovered (a damaged log middle): one line says which file, where, and what
        to do.
    """
    config: ServerConfig = options.server_config
    twistd_options = getattr(options, "parent", None)
    top = GuardedStartup(
        detached=twistd_options is not None and not twistd_options.get("nodaemon", True)
    )
    operations = OperationsEndpoints(config)
    operations.listen(top)
    if config.role == "session":
        from zkreg.roles import SessionRoleService

        SessionRoleService(config, reactor, operations).setServiceParent(top)
        return top

    if config.etcd is not None:
        from zkreg.etcd_role import EtcdDataRoleService

        EtcdDataRoleService(config, reactor, operations).setServiceParent(top)
        return top

    from zkreg.persistence.dirlock import DataDirLocked, DataDirUnwritable
    from zkreg.persistence.durable import open_durable_state
    from zkreg.persistence.recovery import RecoveryError
    from zkreg.persistence.wal import CorruptLogError
    from zkreg.roles import assemble_data_role

    _check_data_dir(config.data_dir)
    try:
        durable = open_durable_state(config)
    except (CorruptLogError, RecoveryError) as error:
        fail_startup(f"cannot start from {config.data_dir}: {error}")
    except (DataDirLocked, DataDirUnwritable) as error:
        fail_startup(str(error))
    except OSError as error:
        fail_startup(
            f"cannot use data directory {config.data_dir}: "
            f"{error.strerror or error}{'' if not error.filename else f' ({error.filename})'}"
        )
    assemble_data_role(config, durable, top, operations)
    _log.info(
        "zkreg ({role}) listening on {listen}, data in {data_dir} "
        "(recovered up to zxid 0x{zxid:x})",
        role=config.role,
        listen=config.listen if config.role == "standalone" else config.data_link_listen,
        data_dir=config.data_dir,
        zxid=durable.last_zxid,
    )
    return top


def _check_data_dir(directory: str) -> None:
    """
    Make the data directory if needed, and stop with one line when it is not a
    directory or cannot be made.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        fail_startup(f"data directory {directory} is a file, not a directory (see --data-dir)")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        fail_startup(
            f"cannot create data directory {directory}: {error.strerror or error} (see --data-dir)"
        )


_log = Logger()
