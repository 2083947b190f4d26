"""
The roles of one zkreg process, assembled in one place (DESIGN.md): a role is a
different wiring of the same parts, not different code.

  - C{standalone}: the data server on the durable state, the session server linked
    to it in-process, the client listener; with C{--data-link-listen} also a data-link
    listener for session servers in other processes;
  - C{data}: the same without clients: session servers connect over the data link;
  - C{session}: a session server whose replica and writes go through a long-lived
    L{zkreg.link.tcp.TCPDataLink} to the data servers of C{--data-server}.

L{zkreg.tap} parses options and opens the data directory; everything after is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service, strports
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from zkreg.config import ServerConfig
from zkreg.startup import describe_listen_failure, stop_running_startup

__all__ = ["SessionRoleService", "assemble_data_role", "data_link_service"]

_log = Logger(namespace="zkreg.roles")


def assemble_data_role(
    config: ServerConfig,
    durable: Any,
    top: service.MultiService,
    operations: Any = None,
    announce: Callable[[], None] | None = None,
) -> Any:
    """
    Wire a standalone or data server on recovered durable state into C{top}.

    @param durable: a L{zkreg.persistence.durable.DurableState}.
    @param operations: the L{zkreg.operations.OperationsEndpoints} (metrics, admin)
        told of the servers, or L{None}.
    @param announce: called once the server's main port is bound (the client port of
        a standalone server, else the data-link port), so an operator reads
        "listening" only when it is true; at once when C{--session-processes} has
        already reserved the client ports.  A failed listen never calls it.
    @return: the L{zkreg.data.server.DataServer}.
    """
    from zkreg.link.serve import DataLinkServerFactory
    from zkreg.session.assembly import build_standalone

    session_processes = config.session_process_count
    standalone = config.role == "standalone" and not session_processes
    # Added first so that it stops last: the log closes after the data server.
    durable.service().setServiceParent(top)
    if standalone:
        data_service, factory = build_standalone(
            config, log=durable.wal, tree=durable.tree, replies=durable.recovered.replies
        )
    else:
        from twisted.internet import reactor

        from zkreg.data.server import DataServer

        data_service = DataServer(
            config,
            log=durable.wal,
            clock=reactor,
            tree=durable.tree,
            replies=durable.recovered.replies,
        )
    durable.attach(data_service)
    data_service.setServiceParent(top)
    link_factory = None
    if config.data_link_listen is not None or session_processes:
        link_factory = DataLinkServerFactory(data_service)
    if config.data_link_listen is not None:
        link_listener = data_link_service(config, link_factory)
        link_listener.setServiceParent(top)
        if announce is not None and not standalone:
            announce_when_listening(link_listener, announce)
            announce = None
    if operations is not None:
        operations.add_data_server(
            data_service, link_factory, 1 if standalone else 0, durable.snapshotter
        )
    if session_processes:
        from zkreg.processes.supervisor import SessionProcesses

        # Added last so that it stops first: the children before the data server.
        SessionProcesses(config, session_processes, link_factory).setServiceParent(top)
    elif standalone:
        if operations is not None:
            operations.add_session_server(factory)
        factory.service().setServiceParent(top)
        client_listener = listen_for_clients(config, factory, top)
        if announce is not None:
            announce_when_listening(client_listener, announce)
            announce = None
    if announce is not None:
        announce()
    return data_service


@implementer(IStreamServerEndpoint)
class _AnnouncingEndpoint:
    """
    An endpoint that calls C{announce} once a listen on the endpoint it wraps has
    succeeded (its Deferred fired with the port), and never after a failed one.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, announce: Callable[[], None]) -> None:
        self._endpoint = endpoint
        self._announce = announce

    def listen(self, factory: Any) -> Deferred[IListeningPort]:
        def bound(port: IListeningPort) -> IListeningPort:
            self._announce()
            return port

        return self._endpoint.listen(factory).addCallback(bound)


def announce_when_listening(listener: service.Service, announce: Callable[[], None]) -> None:
    """
    Make C{listener} (a service of L{strports.service}, not started yet) call
    C{announce} once its port is bound.
    """
    assert isinstance(listener, StreamServerEndpointService)
    listener.endpoint = _AnnouncingEndpoint(listener.endpoint, announce)


def data_link_service(config: ServerConfig, link_factory: Any) -> service.Service:
    """
    The listener of C{--data-link-listen} for C{link_factory}, over mutual TLS when
    the data-link key and trust stores are given (docs/security.md).
    """
    listening: Any = link_factory
    if config.data_link_ssl_keystore is not None:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        from zkreg.tls import server_tls_options

        options = server_tls_options(
            config.data_link_ssl_keystore, config.data_link_ssl_truststore, "need"
        )
        listening = TLSMemoryBIOFactory(options, False, link_factory)
    assert config.data_link_listen is not None
    return strports.service(config.data_link_listen, listening)


def listen_for_clients(
    config: ServerConfig, factory: Any, parent: service.MultiService
) -> service.Service:
    """
    Add the client listeners to C{parent}: C{--listen}, and with C{--secure-listen}
    a TLS listener beside it (its TLS from the PEM key and trust stores).

    @return: the listener of C{--listen}.
    """
    listener = strports.service(config.listen, factory)
    listener.setServiceParent(parent)
    if config.secure_listen is not None:
        strports.service(
            config.secure_listen, client_tls_factory(config, factory)
        ).setServiceParent(parent)
    return listener


def client_tls_factory(config: ServerConfig, factory: Any) -> Any:
    """
    @return: C{factory} behind TLS as C{--secure-listen} serves it (the PEM key and
        trust stores, the client-auth mode).
    """
    from twisted.protocols.tls import TLSMemoryBIOFactory

    from zkreg.tls import server_tls_options

    assert config.ssl_keystore is not None
    options = server_tls_options(config.ssl_keystore, config.ssl_truststore, config.ssl_client_auth)
    return TLSMemoryBIOFactory(options, False, factory)


class SessionRoleService(service.MultiService):
    """
    A session server of remote data servers: starts its data link, and once the
    replica is loaded listens for clients.  From then on it rides through data-server
    outages (see L{zkreg.link.tcp}).  If no data server answers within the data-tier
    timeout at start, the process stops (a supervisor restarts it), rather than
    leaving a server that refuses every client.
    """

    def __init__(
        self,
        config: ServerConfig,
        reactor: Any = None,
        operations: Any = None,
        listen: Any = None,
        acknowledge_applied: bool = False,
    ) -> None:
        """
        @param operations: the L{zkreg.operations.OperationsEndpoints} told of the
            session server, or L{None}.
        @param listen: C{listen(config, factory, parent)} adds the client listeners
            (L{listen_for_clients} by default; a session process of
            C{--session-processes} shares its ports with its siblings).
        @param acknowledge_applied: the link reports what the replica applied, so
            the data server releases a write's reply only once every such replica
            has it (see L{zkreg.link.tcp.TCPDataLink}).
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.listen = listen if listen is not None else listen_for_clients
        self.acknowledge_applied = acknowledge_applied
        self.reactor = reactor
        self.operations = operations
        self.link: Any = None

    def startService(self) -> None:
        from zkreg.link.tcp import TCPDataLink, parse_data_servers

        super().startService()
        config = self.config
        keystore = config.data_link_ssl_keystore
        if config.etcd is not None:
            from zkreg.persistence.etcd.follow import leader_endpoints

            wrap = None
            if keystore is not None:
                from zkreg.tls import data_link_tls_endpoints

                def wrap(address: str, endpoint: Any) -> Any:
                    # Checked against the host of the address the leader key names.
                    ((_, wrapped),) = data_link_tls_endpoints(
                        [(address, endpoint)],
                        keystore,
                        config.data_link_ssl_truststore,
                        hostname=config.data_link_ssl_hostname,
                        verify_hostname=config.data_link_ssl_hostname_verification,
                    )
                    return wrapped

            endpoints = leader_endpoints(self.reactor, config.etcd, config.etcd_prefix, wrap)
        else:
            assert config.data_server is not None
            endpoints = parse_data_servers(self.reactor, config.data_server)
            if keystore is not None:
                from zkreg.tls import data_link_tls_endpoints

                endpoints = data_link_tls_endpoints(
                    endpoints,
                    keystore,
                    config.data_link_ssl_truststore,
                    hostname=config.data_link_ssl_hostname,
                    verify_hostname=config.data_link_ssl_hostname_verification,
                )
        self.link = TCPDataLink(
            endpoints,
            clock=self.reactor,
            data_tier_timeout_s=config.data_tier_timeout / 1000.0,
            name=config.listen,
            auth_schemes=config.auth_schemes,
            acknowledge_applied=self.acknowledge_applied,
        )
        self.link.start().addCallbacks(self._linked, self._link_failed)

    def stopService(self) -> Any:
        stopped = super().stopService()
        if self.link is not None:
            self.link.stop()
        return stopped

    def _linked(self, link: Any) -> None:
        from zkreg.session.assembly import ReplicaFacts
        from zkreg.session.factory import SessionServerFactory

        factory = SessionServerFactory(
            self.config, link, self.reactor, data_info=ReplicaFacts(link, self.reactor)
        )
        if self.operations is not None:
            self.operations.add_session_server(factory)
        factory.service().setServiceParent(self)
        try:
            self.listen(self.config, factory, self)
        except (CannotListenError, OverflowError) as error:
            stop_running_startup(self.reactor, describe_listen_failure(error))
            return
        _log.info(
            "zkreg (session) linked to {data_server}, listening on {listen}",
            data_server=link.connected_to,
            listen=self.config.listen,
        )

    def _link_failed(self, failure: Any) -> None:
        stop_running_startup(
            self.reactor,
            f"cannot reach the data server at {self.config.data_server}: "
            f"{failure.getErrorMessage()}; start one first, or fix --data-server",
        )
