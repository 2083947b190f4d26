"""
The settings of one zkreg process, with ZooKeeper's defaults.

One dataclass shared by every layer; L{zkreg.tap} fills it from the config file and
the command line (the command line wins), and each layer reads the fields it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    """
    @ivar listen: Twisted endpoint string clients connect to.
    @ivar data_dir: where the durable log and snapshots live.
    @ivar tick_time_ms: ZooKeeper's tickTime; session timeouts are multiples of it.
    @ivar min_session_timeout_ms: lower bound of negotiated timeouts (default 2 ticks).
    @ivar max_session_timeout_ms: upper bound of negotiated timeouts (default 20 ticks).
    @ivar max_client_cnxns: connections allowed per client IP; 0 means no limit.
    @ivar max_packet_size: largest frame accepted (jute.maxbuffer), in bytes.
    @ivar four_letter_words: the four-letter words answered; C{{"*"}} for all.
    @ivar extended_types: enables TTL nodes (zookeeper.extendedTypesEnabled).
    @ivar container_check_interval_ms: how often empty containers and expired TTL
        nodes are looked for (znode.container.checkIntervalMs).
    @ivar super_digest: C{"super:<base64 sha1>"} whose holder passes every ACL, or None.
    @ivar server_id: this server's id, the top byte of the session ids it hands out.
    @ivar snap_count: transactions between snapshots (ZooKeeper's snapCount).
    @ivar snap_retain_count: snapshots (and their logs) kept when purging.
    @ivar fsync: sync the log before acknowledging writes; off is unsafe.
    @ivar role: C{"standalone"} (data and session server in one process),
        C{"data"} (data server only, serving session servers over TCP) or
        C{"session"} (session server of a remote data server).
    @ivar data_link_listen: endpoint a data (or standalone) server accepts session
        servers on, or None.
    @ivar data_server: client endpoints of the data servers a session server uses,
        comma-separated, tried in turn (C{tcp:h:p[,tcp:h:p...]}).
    @ivar etcd: client URLs of the etcd cluster holding a data server's log,
        comma-separated (C{http://h:p[,http://h:p...]}), or None (the file log).
    @ivar etcd_prefix: the key prefix of this data tier in etcd.
    @ivar data_tier_timeout_ms: how long a session server holds writes while no data
        server is linked before failing them and closing its client connections;
        L{None} means the maximum session timeout.
    @ivar metrics_listen: endpoint serving Prometheus metrics at C{/metrics}, or None.
    @ivar admin_listen: endpoint of the admin HTTP server (ZooKeeper's AdminServer
        commands, C{/healthz}, C{/readyz}), or None (off, the default).
    @ivar request_throttle_max_requests: writes in the data tier's pipeline at once
        from this session server above which more wait (ZooKeeper's RequestThrottler
        C{maxRequests}); 0 means no server-wide limit.
    @ivar request_throttle_stall_time_ms: how long a connection is not read from when
        the throttler's queue is full; a write that waited longer is counted in
        C{throttled_ops}.
    @ivar connection_rate_per_ip: new connections accepted per second from one client
        IP address; 0 means no limit.
    @ivar connection_burst_per_ip: connections one IP may open at once before the
        rate applies (the token bucket's size).
    @ivar sasl_config: a JAAS-style file whose C{Server} section lists the SASL
        DIGEST-MD5 users (C{user_<name>="<password>"}); None: SASL off, and the
        C{sasl} ACL scheme unknown (as in ZooKeeper without its SASL provider).
    @ivar sasl_required: refuse every request but SASL's until a client has
        authenticated (ZooKeeper's C{zookeeper.sessionRequireClientSASLAuth}).
    @ivar sasl_allow_failed_clients: keep the connection of a client whose SASL
        exchange failed, unauthenticated (ZooKeeper's
        C{zookeeper.allowSaslFailedClients}); ignored when C{sasl_required}.
    @ivar secure_listen: endpoint of a TLS client listener beside C{listen}
        (ZooKeeper's C{secureClientPort}), e.g. C{tcp:2281}; TLS from
        C{ssl_keystore} and C{ssl_truststore}.  None: no such listener.
    @ivar ssl_keystore: PEM file of the TLS listener's private key and certificate
        chain (ZooKeeper's C{ssl.keyStore.location} with type PEM).
    @ivar ssl_truststore: PEM file of the CAs that sign accepted client
        certificates (C{ssl.trustStore.location}).
    @ivar ssl_client_auth: C{none}, C{want} or C{need} (C{ssl.clientAuth}).
    @ivar x509_superuser: the subject DN whose certificate passes every ACL
        (C{zookeeper.X509AuthenticationProvider.superUser}).
    @ivar data_link_ssl_keystore: PEM key store of the data link (both sides present
        it); with C{data_link_ssl_truststore} the data link runs over mutual TLS.
    @ivar data_link_ssl_hostname: the name a data server's link certificate must
        carry (DNS name or IP address in its subject alternative names), instead of
        the host of each C{data_server} endpoint; session servers only.
    @ivar data_link_ssl_hostname_verification: whether a session server checks the
        data server's certificate name at all (ZooKeeper's
        C{ssl.quorum.hostnameVerification}); the trust store alone decides when off.
    @ivar data_link_ssl_truststore: PEM file of the CAs that sign the other side's
        data-link certificate (its own CA, apart from the clients').
    @ivar max_output_buffer_bytes: unsent reply bytes one connection may hold before
        it is no longer read from (until they drain); L{None} means one max-size
        reply plus 4 MiB.
    @ivar output_stall_timeout_ms: how long a connection may stay over
        C{max_output_buffer} before it is closed (a client that stopped reading);
        0 never closes it.
    @ivar max_reply_size_bytes: a multiRead or getChildren whose reply would be
        larger is refused (MarshallingError) instead of built; L{None} means 4 max
        packet sizes.
    @ivar pause_threshold_ms: a reactor gap longer than this is a pause (SIGSTOP, a
        heavy request), left out of the time sessions expire on; 0 disables it.
    @ivar session_processes: for the standalone role, the session-server processes
        that share the client port while this process keeps the data server
        (C{--session-processes}); 0 is one process for everything; L{None} is
        C{auto}, chosen from the cores by
        L{zkreg.processes.supervisor.default_session_processes}.  C{twistd zkreg}
        defaults to C{auto}; a L{ServerConfig} built in code to 0.
    @ivar prealloc_size_bytes: log segment preallocation; L{None} adapts it to the
        free space of the data directory (64 MiB when there is room).
    """

    listen: str = "tcp:2181"
    data_dir: str = "./zkreg-data"
    tick_time_ms: int = 2000
    min_session_timeout_ms: int | None = None
    max_session_timeout_ms: int | None = None
    max_client_cnxns: int = 60
    max_packet_size: int = 1048575
    four_letter_words: frozenset[str] = field(default_factory=lambda: frozenset({"srvr"}))
    extended_types: bool = False
    container_check_interval_ms: int = 60000
    super_digest: str | None = None
    server_id: int = 0
    snap_count: int = 100000
    snap_retain_count: int = 3
    fsync: bool = True
    role: str = "standalone"
    data_link_listen: str | None = None
    data_server: str | None = None
    etcd: str | None = None
    etcd_prefix: str = "/zkreg"
    data_tier_timeout_ms: int | None = None
    metrics_listen: str | None = None
    admin_listen: str | None = None
    request_throttle_max_requests: int = 0
    request_throttle_stall_time_ms: int = 100
    connection_rate_per_ip: int = 0
    connection_burst_per_ip: int = 10
    sasl_config: str | None = None
    sasl_required: bool = False
    sasl_allow_failed_clients: bool = False
    secure_listen: str | None = None
    ssl_keystore: str | None = None
    ssl_truststore: str | None = None
    ssl_client_auth: str = "need"
    x509_superuser: str | None = None
    data_link_ssl_keystore: str | None = None
    data_link_ssl_truststore: str | None = None
    data_link_ssl_hostname: str | None = None
    data_link_ssl_hostname_verification: bool = True
    max_output_buffer_bytes: int | None = None
    output_stall_timeout_ms: int = 30000
    max_reply_size_bytes: int | None = None
    prealloc_size_bytes: int | None = None
    pause_threshold_ms: int = 500
    session_processes: int | None = 0

    @property
    def client_tls(self) -> bool:
        """
        Whether clients may connect over TLS (C{secure_listen}, or an C{ssl:}
        C{listen}): then the C{x509} ACL scheme is known, as in ZooKeeper with its
        X509AuthenticationProvider.
        """
        return self.secure_listen is not None or self.listen.startswith("ssl:")

    @property
    def auth_schemes(self) -> tuple[str, ...]:
        """
        The optional ACL schemes this server's clients may use: C{sasl} with
        C{sasl_config}, C{x509} with a TLS client listener (L{client_tls}).  A
        session server of the split tells its data server, which judges the ACLs of
        that server's clients by them.
        """
        return (("sasl",) if self.sasl_config is not None else ()) + (
            ("x509",) if self.client_tls else ()
        )

    @property
    def min_timeout_ms(self) -> int:
        """The effective minimum session timeout: configured, or 2 ticks."""
        if self.min_session_timeout_ms is None:
            return 2 * self.tick_time_ms
        return self.min_session_timeout_ms

    @property
    def max_output_buffer(self) -> int:
        """The effective output bound: configured, or one max-size reply plus 4 MiB."""
        if self.max_output_buffer_bytes is None:
            return self.max_packet_size + 4 * 1024 * 1024
        return self.max_output_buffer_bytes

    @property
    def max_reply_size(self) -> int:
        """The effective reply limit of multiRead/getChildren: configured, or 4 packets."""
        if self.max_reply_size_bytes is None:
            return 4 * self.max_packet_size
        return self.max_reply_size_bytes

    @property
    def data_tier_timeout(self) -> int:
        """The effective data-tier timeout (ms): configured, or the max session timeout."""
        if self.data_tier_timeout_ms is None:
            return self.max_timeout_ms
        return self.data_tier_timeout_ms

    @property
    def max_timeout_ms(self) -> int:
        """The effective maximum session timeout: configured, or 20 ticks."""
        if self.max_session_timeout_ms is None:
            return 20 * self.tick_time_ms
        return self.max_session_timeout_ms

    @property
    def session_process_count(self) -> int:
        """The session processes to run: L{session_processes} with C{auto} resolved."""
        if self.role != "standalone" or self.etcd is not None:
            return 0
        if self.session_processes is None:
            from zkreg.processes.supervisor import default_session_processes

            return default_session_processes()
        return self.session_processes
