"""
Curator's C{ServiceDiscovery}: register this process's service instances under
C{base_path/name/id} and find the others'.

Registrations survive what the network does to them.  On every C{CONNECTED} and
C{RECONNECTED} (including a new session after C{LOST}, and a server restarted past the
session timeout) each registered instance is checked and, where needed, written
again.  Unlike Curator, an instance whose node is still there, owned by this
session and holding the same data, is left alone: a reconnect makes no
deregistration blip that every subscriber would see.  A node left by an earlier
session of ours (its ephemeral not yet expired) is deleted and created again, so it
belongs to the live session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.discovery.instance import ServiceInstance, ServiceType
from curatorish.discovery.provider import (
    InstanceFilter,
    ProviderStrategy,
    ServiceProvider,
    ServiceProviderBuilder,
)
from curatorish.discovery.serializer import InstanceSerializer, JsonInstanceSerializer
from curatorish.discovery.service_cache import ServiceCache, ServiceCacheBuilder
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from curatorish.recipes.classic_cache import NodeCache
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.state import ConnectionState
from zkreg.proto.consts import CreateMode

_log = Logger()

_MODES = {
    ServiceType.DYNAMIC: CreateMode.EPHEMERAL,
    ServiceType.DYNAMIC_SEQUENTIAL: CreateMode.EPHEMERAL_SEQUENTIAL,
    ServiceType.STATIC: CreateMode.PERSISTENT,
    ServiceType.PERMANENT: CreateMode.PERSISTENT,
}


@dataclass
class _Entry:
    instance: ServiceInstance
    #: The node as created (differs from base/name/id for DYNAMIC_SEQUENTIAL).
    path: str | None = None
    watch: NodeCache | None = None


class ServiceDiscovery(Recipe):
    """
    Curator's C{ServiceDiscovery} (see the module docstring).

    @ivar base_path: where services live (C{base_path/name/id}).
    @ivar serializer: instances to node data (default L{JsonInstanceSerializer}).
    """

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        base_path: str,
        this_instance: ServiceInstance | None = None,
        serializer: InstanceSerializer | None = None,
        watch_instances: bool = False,
    ) -> None:
        """
        @param this_instance: registered by L{start}.
        @param watch_instances: keep the registered instances equal to their nodes
            when someone else updates them (Curator's C{watchInstances}).
        """
        super().__init__(client)
        self.face_client = client
        self.base_path = base_path.rstrip("/") or "/"
        self.serializer: InstanceSerializer = serializer or JsonInstanceSerializer()
        self._watch_instances = watch_instances
        self._services: dict[str, _Entry] = {}
        self._caches: list[ServiceCache] = []
        self._providers: list[ServiceProvider] = []
        self._lock = defer.DeferredLock()
        self._started = False
        if this_instance is not None:
            self._services[this_instance.id] = _Entry(this_instance)

    # -- lifecycle ----------------------------------------------------------------------

    @recipe_method
    async def start(self) -> None:
        """Register the instances given so far, and again after every reconnection."""
        self._started = True
        self.client.add_connection_state_listener(self._state_changed)
        for entry in list(self._services.values()):
            await self._register_entry(entry)

    @recipe_method
    async def close(self) -> None:
        """Close the caches and providers made here and unregister every instance."""
        self.client.remove_connection_state_listener(self._state_changed)
        closeables: list[ServiceCache | ServiceProvider] = [*self._caches, *self._providers]
        for closeable in closeables:
            try:
                # The async implementation, whichever face the caller built it for.
                await closeable.close.__wrapped__(closeable)  # type: ignore[attr-defined]
            except Exception:
                _log.failure("Closing {what} failed", what=closeable)
        self._started = False
        entries = list(self._services.values())
        self._services.clear()
        for entry in entries:
            await self._unregister_entry(entry)

    # -- registrations --------------------------------------------------------------------

    @recipe_method
    async def register_service(self, instance: ServiceInstance) -> None:
        """Register (or register again) C{instance}."""
        entry = self._services.get(instance.id)
        if entry is None:
            entry = self._services[instance.id] = _Entry(instance)
        else:
            entry.instance = instance
        await self._register_entry(entry)

    @recipe_method
    async def update_service(self, instance: ServiceInstance) -> None:
        """
        Write C{instance}'s new fields to its node.

        @raise KeyError: it is not registered here.
        """
        entry = self._services.get(instance.id)
        if entry is None:
            raise KeyError(f"Service has been unregistered: {instance!r}")
        entry.instance = instance
        await self._lock.run(self._write_update, entry)

    async def _write_update(self, entry: _Entry) -> None:
        path = entry.path or self.path_for_instance(entry.instance.name, entry.instance.id)
        await self.client.set_data(path, self.serializer.serialize(entry.instance))

    @recipe_method
    async def unregister_service(self, instance: ServiceInstance) -> None:
        """Remove C{instance}'s node (retried in the background if the connection fails)."""
        entry = self._services.pop(instance.id, None)
        if entry is not None:
            await self._unregister_entry(entry)

    def registered_instances(self) -> list[ServiceInstance]:
        """@return: the instances this discovery keeps registered."""
        return [entry.instance for entry in list(self._services.values())]

    async def _register_entry(self, entry: _Entry) -> None:
        await self._lock.run(self._write_registration, entry)
        if self._watch_instances and entry.watch is None and entry.path is not None:
            entry.watch = self._watch(entry)
            await entry.watch.start(build_initial=True)

    async def _write_registration(self, entry: _Entry) -> None:
        if self._services.get(entry.instance.id) is not entry:
            return  # unregistered meanwhile (a re-registration queued behind it)
        instance = entry.instance
        data = self.serializer.serialize(instance)
        mode = _MODES[instance.service_type]
        path = self.path_for_instance(instance.name, instance.id)
        if instance.service_type is ServiceType.DYNAMIC_SEQUENTIAL:
            if entry.path is not None and await self._ours(entry.path, data, mode):
                return
            created = await self.client.create(path, data, mode=mode, parents_as_containers=True)
            entry.path = created.path
            return
        for _ in range(3):
            if await self._ours(path, data, mode):
                entry.path = path
                return
            try:
                await self.client.create(path, data, mode=mode, parents_as_containers=True)
                entry.path = path
                return
            except errors.NodeExistsError:
                # Someone else's node (or an earlier session's): replace it, so that
                # it is ours and its watchers fire.
                await self.client.delete(path, quietly=True)
        raise errors.NodeExistsError(path)

    async def _ours(self, path: str, data: bytes, mode: CreateMode) -> bool:
        """
        Whether the node at C{path} already is this registration (brought up to date
        when only its data differs); L{False} when it is missing or someone else's.
        """
        try:
            current, stat = await self.client.get_data(path)
        except errors.NoNodeError:
            return False
        ephemeral = mode in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)
        owner = self.client.session_id if ephemeral else 0
        if stat.ephemeralOwner != owner:
            return False
        if current != data:
            try:
                await self.client.set_data(path, data, version=stat.version)
            except (errors.BadVersionError, errors.NoNodeError):
                return False
        return True

    async def _unregister_entry(self, entry: _Entry) -> None:
        if entry.watch is not None:
            await entry.watch.close()
            entry.watch = None
        path = entry.path or self.path_for_instance(entry.instance.name, entry.instance.id)

        async def delete() -> None:
            try:
                await self.client.delete(path, quietly=True, guaranteed=True)
            except errors.ZooKeeperError as error:
                _log.warn("Unregistering {path} failed: {error}", path=path, error=error)

        # Under the lock: after any registration of it already under way.
        await self._lock.run(delete)

    def _watch(self, entry: _Entry) -> NodeCache:
        assert entry.path is not None
        watch = NodeCache(self.client, entry.path)

        def changed() -> None:
            node = watch.get_current_data()
            if node is not None and node.data:
                try:
                    entry.instance = self.serializer.deserialize(node.data)
                except ValueError:
                    _log.warn("Unreadable instance data at {path}", path=node.path)

        watch.get_listenable().add_listener(changed)
        return watch

    def _state_changed(self, _client: Any, state: ConnectionState) -> None:
        if state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED) and self._started:
            self.client.zookeeper.reactor.callLater(0, self._reregister)

    def _reregister(self) -> None:
        async def all_entries() -> None:
            for entry in list(self._services.values()):
                try:
                    await self._register_entry(entry)
                except Exception as error:
                    _log.warn(
                        "Could not re-register {id}: {error}", id=entry.instance.id, error=error
                    )

        defer.ensureDeferred(all_entries())

    # -- queries ------------------------------------------------------------------------

    @recipe_method
    async def query_for_names(self) -> list[str]:
        """@return: the names of the services registered (none if the base path is absent)."""
        try:
            return sorted(await self.client.get_children(self.base_path))
        except errors.NoNodeError:
            return []

    @recipe_method
    async def query_for_instances(self, name: str) -> list[ServiceInstance]:
        """@return: the instances of C{name} now registered, in node-name order."""
        path = make_path(self.base_path, name)
        try:
            ids = sorted(await self.client.get_children(path))
        except errors.NoNodeError:
            return []
        reads = [self._read(make_path(path, node_name)) for node_name in ids]
        found = await defer.gatherResults(reads, consumeErrors=True)
        return [instance for instance in found if instance is not None]

    @recipe_method
    async def query_for_instance(self, name: str, id: str) -> ServiceInstance | None:
        """@return: the instance C{id} of C{name}, or L{None}."""
        return await self._read(self.path_for_instance(name, id))

    def _read(self, path: str) -> defer.Deferred[ServiceInstance | None]:
        async def read() -> ServiceInstance | None:
            try:
                data, _ = await self.client.get_data(path)
            except errors.NoNodeError:
                return None
            try:
                return self.serializer.deserialize(data or b"")
            except ValueError as error:
                _log.warn("Unreadable instance at {path}: {error}", path=path, error=error)
                return None

        return defer.ensureDeferred(read())

    def path_for_name(self, name: str) -> str:
        return make_path(self.base_path, name)

    def path_for_instance(self, name: str, id: str) -> str:
        return make_path(self.path_for_name(name), id)

    # -- caches and providers -----------------------------------------------------------

    def service_cache_builder(self) -> ServiceCacheBuilder:
        return ServiceCacheBuilder(self)

    def service_cache(self, name: str) -> ServiceCache:
        """@return: a (not yet started) L{ServiceCache} of C{name}."""
        return ServiceCache(self, name)

    def service_provider_builder(self) -> ServiceProviderBuilder:
        return ServiceProviderBuilder(self)

    def service_provider(
        self,
        name: str,
        strategy: ProviderStrategy | None = None,
        *,
        filters: list[InstanceFilter] | None = None,
        down_instance_policy: Any = None,
    ) -> ServiceProvider:
        """@return: a (not yet started) L{ServiceProvider} of C{name}; round robin by default."""
        return ServiceProvider(
            self, name, strategy, filters=filters, down_instance_policy=down_instance_policy
        )

    # Bookkeeping for close(), called by the caches and providers.

    def cache_opened(self, cache: ServiceCache) -> None:
        self._caches.append(cache)

    def cache_closed(self, cache: ServiceCache) -> None:
        if cache in self._caches:
            self._caches.remove(cache)

    def provider_opened(self, provider: ServiceProvider) -> None:
        self._providers.append(provider)

    def provider_closed(self, provider: ServiceProvider) -> None:
        if provider in self._providers:
            self._providers.remove(provider)


__all__ = ["ServiceDiscovery"]
