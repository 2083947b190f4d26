"""
Checks of a merged L{ServerConfig} before anything starts: ranges and relations of
the settings, endpoint strings, TLS files, and options given to a role they do not
apply to.  Each failure is a L{usage.UsageError} naming the setting, which
L{zkreg.tap.Options} turns into one line on stderr.
"""

from __future__ import annotations

from typing import Any

from OpenSSL.SSL import Error as SSLError
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.python import usage

from zkreg.config import ServerConfig

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
    "session-processes": ("standalone",),
    "max-output-buffer": ("standalone", "session"),
    "output-stall-timeout": ("standalone", "session"),
    "max-reply-size": ("standalone", "session"),
    "data-link-ssl-hostname": ("session",),
    "data-link-ssl-hostname-verification": ("session",),
}


#: Keys of the configuration file checked like L{_ROLE_ONLY_OPTIONS}: those with no
#: default (the others are set in the shipped file, which serves every role).
_ROLE_ONLY_FILE_KEYS = ("data-server", "data-link-listen", "etcd", "etcd-prefix")


def check_role_options(options: Any, file_values: dict[str, str], role: str) -> None:
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
    _validate_session_processes(config)
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
        from zkreg.link.tcp import parse_data_servers

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


#: The most session processes one zkreg runs (beyond that, run the split by hand).
MAX_SESSION_PROCESSES = 64


def _validate_session_processes(config: ServerConfig) -> None:
    """
    Check C{--session-processes}: a count in range, on a system that can share a
    port between processes, with client endpoints the processes can share.
    """
    count = config.session_processes
    _require(
        count is None or 0 <= count <= MAX_SESSION_PROCESSES,
        f"session-processes must be auto or 0-{MAX_SESSION_PROCESSES}, got {count}",
    )
    if count is None or count == 0:
        return
    from zkreg.processes.listeners import parse_stream_endpoint
    from zkreg.processes.supervisor import session_processes_supported

    _require(
        session_processes_supported(),
        "--session-processes needs SO_REUSEPORT (Linux); use 0 on this system",
    )
    for origin, endpoint in (("listen", config.listen), ("secure-listen", config.secure_listen)):
        if endpoint is None:
            continue
        try:
            parse_stream_endpoint(endpoint)
        except ValueError as error:
            raise usage.UsageError(
                f"{origin}: {endpoint!r} cannot be shared by --session-processes: {error}"
            ) from error


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
    _require(
        keystore is not None
        or (config.data_link_ssl_hostname is None and config.data_link_ssl_hostname_verification),
        "data-link-ssl-hostname and data-link-ssl-hostname-verification need data-link TLS "
        "(--data-link-ssl-keystore and --data-link-ssl-truststore)",
    )
    if keystore is not None and truststore is not None:
        try:
            server_tls_options(keystore, truststore, "need")
            client_tls_options("localhost", truststore, keystore)
        except TLSConfigError as error:
            raise usage.UsageError(f"data link: {error}") from error


#: The roles of one process (DESIGN.md).
ROLES = ("standalone", "data", "session")
