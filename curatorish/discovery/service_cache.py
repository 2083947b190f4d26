"""
Curator's C{ServiceCache}: the instances of one service, kept current by the cache
engine of L{curatorish.recipes.mirror} (one persistent recursive watch on
C{base_path/name}), so a subscriber misses no registration across reconnects and
session loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from curatorish.discovery.instance import ServiceInstance
from curatorish.discovery.serializer import InstanceSerializer
from curatorish.node_names import make_path
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.listen import Listenable
from curatorish.recipes.mirror import ChildData, TreeMirror
from curatorish.state import ConnectionState

if TYPE_CHECKING:
    from curatorish.discovery.discovery import ServiceDiscovery

_log = Logger()


class ServiceCacheListener:
    """
    Curator's C{ServiceCacheListener}: subclass and override what you need.  Runs on
    the reactor (async face) or the blocking client's event thread (blocking face).
    """

    def cache_changed(self) -> None:
        """The set of instances, or one of them, changed."""

    def state_changed(self, client: Any, state: ConnectionState) -> None:
        """The client's connection state changed."""


class ServiceCache(Recipe):
    """
    The instances of the service C{name} under a L{ServiceDiscovery}'s base path.
    L{start} returns once they are loaded.
    """

    def __init__(
        self,
        discovery: ServiceDiscovery,
        name: str,
        *,
        persistent_watch: bool = True,
        client: Any = None,
    ) -> None:
        """
        @param client: the face to serve, when not the discovery's (a provider runs
            its cache on the async client).
        """
        super().__init__(client if client is not None else discovery.face_client)
        self.name = name
        self._discovery = discovery
        self._serializer: InstanceSerializer = discovery.serializer
        self._instances: dict[str, ServiceInstance] = {}
        self._listeners: Listenable[ServiceCacheListener] = Listenable(self.listener_caller)
        self._path = make_path(discovery.base_path, name)
        self._mirror = TreeMirror(
            self.client,
            self._path,
            self._changed,
            max_depth=1,
            persistent_watch=persistent_watch,
        )

    @recipe_method
    async def start(self) -> None:
        """Load the instances (returns when loaded) and follow them."""
        self.client.add_connection_state_listener(self._state_changed)
        self._discovery.cache_opened(self)
        self._mirror.start()
        await self._mirror.initialized

    @recipe_method
    async def close(self) -> None:
        self.client.remove_connection_state_listener(self._state_changed)
        self._discovery.cache_closed(self)
        self._mirror.close()

    def get_instances(self) -> list[ServiceInstance]:
        """@return: the instances now cached (a copy), in node-name order."""
        snapshot = dict(self._instances)
        return [snapshot[key] for key in sorted(snapshot)]

    def add_listener(self, listener: ServiceCacheListener) -> None:
        self._listeners.add_listener(listener)

    def remove_listener(self, listener: ServiceCacheListener) -> None:
        self._listeners.remove_listener(listener)

    def _changed(self, _kind: str, _old: ChildData | None, new: ChildData | None) -> None:
        node = new if new is not None else _old
        assert node is not None
        if node.path == self._path:
            return
        node_name = node.path.rsplit("/", 1)[1]
        if new is None:
            self._instances.pop(node_name, None)
        else:
            try:
                self._instances[node_name] = self._serializer.deserialize(new.data or b"")
            except (ValueError, TypeError, KeyError) as error:
                _log.warn(
                    "Ignoring unreadable instance {path}: {error}", path=node.path, error=error
                )
                if self._instances.pop(node_name, None) is None:
                    return
        self._listeners.call(lambda listener: listener.cache_changed)

    def _state_changed(self, _client: Any, state: ConnectionState) -> None:
        face_client = self._discovery.face_client
        self._listeners.call(lambda listener: listener.state_changed, face_client, state)


class ServiceCacheBuilder:
    """Curator's C{ServiceCacheBuilder}."""

    def __init__(self, discovery: ServiceDiscovery) -> None:
        self._discovery = discovery
        self._name: str | None = None
        self._persistent_watch = True

    def name(self, name: str) -> ServiceCacheBuilder:
        self._name = name
        return self

    def persistent_watch(self, persistent_watch: bool) -> ServiceCacheBuilder:
        """C{False} for servers before ZooKeeper 3.6 (one-shot watches)."""
        self._persistent_watch = persistent_watch
        return self

    def build(self) -> ServiceCache:
        if self._name is None:
            raise ValueError("name cannot be null")
        return ServiceCache(self._discovery, self._name, persistent_watch=self._persistent_watch)


__all__ = ["ServiceCache", "ServiceCacheBuilder", "ServiceCacheListener"]
