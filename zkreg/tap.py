"""
C{twistd zkreg}: the command-line options and the service tree of one zkreg process.

The settings table and the merge of file and command line are in L{zkreg.settings},
the checks of the merged settings in L{zkreg.validation}, the wiring of each role in
L{zkreg.roles}.

Every setting is a flag and a key of the configuration file (C{--tick-time} is
C{tick_time}); the command line wins over the file, the file over the defaults of
L{zkreg.config.ServerConfig}.  The result is one L{ServerConfig} that every layer reads.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application import service
from twisted.internet import reactor
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from zkreg import __version__
from zkreg.allocator import tune_allocator
from zkreg.collector import tune_collector
from zkreg.config import ServerConfig
from zkreg.config_file import ConfigFileError, load_config_file
from zkreg.operations import OperationsEndpoints
from zkreg.settings import KNOWN_FILE_KEYS, build_server_config
from zkreg.startup import (
    GuardedStartup,
    describe_listen_failure,
    fail_startup,
)
from zkreg.validation import check_role_options


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
        [
            "data-link-ssl-hostname",
            None,
            None,
            "Name the data server's link certificate must carry (DNS name or IP in its "
            "subject alternative names). [default: the host of each --data-server]",
        ],
        [
            "data-link-ssl-hostname-verification",
            None,
            None,
            "true or false: check the data server's certificate name at all "
            "(ZooKeeper's ssl.hostnameVerification). [default: true]",
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
        [
            "session-processes",
            None,
            None,
            "Standalone only: run the session servers in this many processes sharing the "
            "client port (SO_REUSEPORT), this process keeping the data server, linked "
            "over a Unix socket; 'auto' picks from the cores; 0 is one process for "
            "everything. Reads on another process may lag a write (docs/processes.md). "
            "[default: 0]",
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
            unknown = sorted(set(file_values) - KNOWN_FILE_KEYS)
            if unknown:
                raise usage.UsageError(
                    f"{self['config']}: unknown setting(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(KNOWN_FILE_KEYS))}"
                )
        self.server_config = build_server_config(self, file_values)
        check_role_options(self, file_values, self.server_config.role)
        #: With --etcd, a data directory is a local snapshot cache only if given.
        self.data_dir_given = self["data-dir"] is not None or "data_dir" in file_values


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
    # Under twistd the process is ours; a program embedding zkreg keeps its collector
    # and allocator settings.
    if twistd_options is not None:
        tune_collector(reactor)
        tune_allocator()
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
        from zkreg.persistence.dirlock import DataDirLocked, DataDirUnwritable

        cache_dir = config.data_dir if getattr(options, "data_dir_given", False) else None
        if cache_dir is not None:
            _check_data_dir(cache_dir)
        try:
            role = EtcdDataRoleService(config, reactor, operations, cache_dir=cache_dir)
        except (DataDirLocked, DataDirUnwritable) as error:
            fail_startup(str(error))
        role.setServiceParent(top)
        return top

    from zkreg.persistence.dirlock import DataDirLocked, DataDirUnwritable
    from zkreg.persistence.durable import open_durable_state
    from zkreg.persistence.recovery import RecoveryError
    from zkreg.persistence.segments import CorruptLogError
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

    def announce() -> None:
        _log.info(
            "zkreg ({role}) listening on {listen}, data in {data_dir} "
            "(recovered up to zxid 0x{zxid:x})",
            role=config.role,
            listen=config.listen if config.role == "standalone" else config.data_link_listen,
            data_dir=config.data_dir,
            zxid=durable.last_zxid,
        )

    try:
        # The line is logged once the port is bound, not now: twistd binds it later.
        assemble_data_role(config, durable, top, operations, announce=announce)
    except CannotListenError as error:
        # --session-processes reserves the client ports here, before twistd starts.
        fail_startup(describe_listen_failure(error))
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
