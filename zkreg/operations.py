"""
The operations endpoints of one zkreg process: Prometheus metrics
(C{--metrics-listen}) and the admin HTTP server (C{--admin-listen}).

Role assembly hands each part to L{OperationsEndpoints} as it is built (a session
role builds its session server only once linked to its data server), so each process
exposes exactly its own parts.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service

from zkreg.config import ServerConfig


class OperationsEndpoints:
    """
    @ivar registry: the Prometheus registry, or None without C{--metrics-listen}.
    @ivar admin: the L{zkreg.admin.AdminTarget}, or None without C{--admin-listen}.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.registry: Any = None
        self.admin: Any = None
        if config.metrics_listen is not None:
            from zkreg.metrics import new_registry

            self.registry = new_registry()
        if config.admin_listen is not None:
            from zkreg.admin import AdminTarget

            self.admin = AdminTarget(config)

    def add_data_server(
        self,
        data_server: Any,
        link_factory: Any = None,
        local_session_servers: int = 0,
        snapshotter: Any = None,
    ) -> None:
        """
        This process runs a data server (standalone or data role).

        @param snapshotter: the L{zkreg.persistence.durable.ForkSnapshotter} taking
            its snapshots, or L{None}.
        """
        if self.registry is not None:
            from zkreg.metrics import DataServerCollector

            self.registry.register(
                DataServerCollector(data_server, link_factory, local_session_servers, snapshotter)
            )
        if self.admin is not None:
            self.admin.data_server = data_server

    def add_etcd_data_role(self, role: Any) -> None:
        """
        This process is a data server on etcd (L{zkreg.etcd_role.EtcdDataRoleService}):
        standby or active by turns, its metrics and admin answers follow it.
        """
        if self.registry is not None:
            from zkreg.metrics import EtcdDataRoleCollector

            self.registry.register(EtcdDataRoleCollector(role))
        if self.admin is not None:
            self.admin.data_tier = role

    def add_session_server(self, factory: Any) -> None:
        """This process runs a session server (standalone or session role)."""
        if self.registry is not None:
            from zkreg.metrics import SessionServerCollector

            self.registry.register(SessionServerCollector(factory))
        if self.admin is not None:
            self.admin.factory = factory

    def listen(self, parent: service.MultiService) -> None:
        """Add the configured listeners to C{parent}."""
        metrics_listen = self.config.metrics_listen
        if self.registry is not None and metrics_listen is not None:
            from zkreg.metrics import metrics_service

            metrics_service(metrics_listen, self.registry).setServiceParent(parent)
        admin_listen = self.config.admin_listen
        if self.admin is not None and admin_listen is not None:
            from zkreg.admin import admin_service

            admin_service(admin_listen, self.admin).setServiceParent(parent)
