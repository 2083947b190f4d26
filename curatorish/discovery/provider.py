"""
Curator's C{ServiceProvider}: pick one instance of a service, by a strategy, among
those that pass the instance filters; instances reported failing are left out for a
while (the down-instance policy).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from curatorish.discovery.instance import ServiceInstance
from curatorish.discovery.service_cache import ServiceCache
from curatorish.recipes.face import Recipe, recipe_method

if TYPE_CHECKING:
    from curatorish.discovery.discovery import ServiceDiscovery

#: Curator's C{InstanceFilter}: keep an instance when it returns true.
InstanceFilter = Callable[[ServiceInstance], bool]


class InstanceProvider(Protocol):
    """What a strategy chooses from (Curator's C{InstanceProvider})."""

    def get_instances(self) -> list[ServiceInstance]: ...


class ProviderStrategy:
    """Curator's C{ProviderStrategy}."""

    def get_instance(self, instance_provider: InstanceProvider) -> ServiceInstance | None:
        raise NotImplementedError


class RoundRobinStrategy(ProviderStrategy):
    """Each call takes the next instance, in turn (Curator's C{RoundRobinStrategy})."""

    def __init__(self) -> None:
        self._index = 0
        self._lock = threading.Lock()

    def get_instance(self, instance_provider: InstanceProvider) -> ServiceInstance | None:
        instances = instance_provider.get_instances()
        if not instances:
            return None
        with self._lock:
            index, self._index = self._index, self._index + 1
        return instances[index % len(instances)]


class RandomStrategy(ProviderStrategy):
    """A random instance (Curator's C{RandomStrategy})."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def get_instance(self, instance_provider: InstanceProvider) -> ServiceInstance | None:
        instances = instance_provider.get_instances()
        return self._rng.choice(instances) if instances else None


class StickyStrategy(ProviderStrategy):
    """
    The same instance as long as it is still offered, else a new one from the master
    strategy (Curator's C{StickyStrategy}).
    """

    def __init__(self, master_strategy: ProviderStrategy) -> None:
        self._master = master_strategy
        self._ours: ServiceInstance | None = None
        self._lock = threading.Lock()

    def get_instance(self, instance_provider: InstanceProvider) -> ServiceInstance | None:
        instances = instance_provider.get_instances()
        with self._lock:
            if self._ours is not None and not any(i.id == self._ours.id for i in instances):
                self._ours = None
            if self._ours is None:
                self._ours = self._master.get_instance(_Fixed(instances))
            else:
                self._ours = next(i for i in instances if i.id == self._ours.id)
            return self._ours


class _Fixed:
    def __init__(self, instances: list[ServiceInstance]) -> None:
        self._instances = instances

    def get_instances(self) -> list[ServiceInstance]:
        return self._instances


@dataclass(frozen=True)
class DownInstancePolicy:
    """
    Curator's C{DownInstancePolicy}: after C{error_threshold} errors noted for an
    instance, leave it out for C{timeout_s} seconds (defaults as Curator: 30 s, 2).
    """

    timeout_s: float = 30.0
    error_threshold: int = 2


class DownInstanceManager:
    """Counts errors per instance id and says which instances are down."""

    def __init__(
        self, policy: DownInstancePolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._errors: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def add(self, instance: ServiceInstance) -> None:
        with self._lock:
            self._purge()
            count, _ = self._errors.get(instance.id, (0, 0.0))
            self._errors[instance.id] = (count + 1, self._clock())

    def is_up(self, instance: ServiceInstance) -> bool:
        with self._lock:
            self._purge()
            count, _ = self._errors.get(instance.id, (0, 0.0))
            return count < self._policy.error_threshold

    def _purge(self) -> None:
        oldest = self._clock() - self._policy.timeout_s
        for instance_id, (_, last) in list(self._errors.items()):
            if last <= oldest:
                del self._errors[instance_id]


def enabled_instance_filter(instance: ServiceInstance) -> bool:
    """Curator's C{EnabledInstanceFilter}: disabled instances are never offered."""
    return instance.enabled


class ServiceProvider(Recipe):
    """
    Curator's C{ServiceProvider}: L{get_instance} picks among the instances of a
    L{ServiceCache} that pass every filter (enabled, not down, then the caller's).
    """

    def __init__(
        self,
        discovery: ServiceDiscovery,
        service_name: str,
        strategy: ProviderStrategy | None = None,
        *,
        filters: list[InstanceFilter] | None = None,
        down_instance_policy: DownInstancePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(discovery.face_client)
        self.service_name = service_name
        self._discovery = discovery
        self._strategy = strategy or RoundRobinStrategy()
        self._cache = ServiceCache(discovery, service_name, client=discovery.client)
        self._down = DownInstanceManager(down_instance_policy or DownInstancePolicy(), clock)
        self._filters: list[InstanceFilter] = [
            enabled_instance_filter,
            self._down.is_up,
            *(filters or []),
        ]

    @recipe_method
    async def start(self) -> None:
        """Start the underlying cache (returns once the instances are loaded)."""
        self._discovery.provider_opened(self)
        await self._cache.start()

    @recipe_method
    async def close(self) -> None:
        self._discovery.provider_closed(self)
        await self._cache.close()

    def get_instances(self) -> list[ServiceInstance]:
        """The instances the strategy chooses from: every filter passed."""
        return [
            instance
            for instance in self._cache.get_instances()
            if all(keep(instance) for keep in self._filters)
        ]

    def get_instance(self) -> ServiceInstance | None:
        """@return: an instance chosen by the strategy, or L{None} when none is up."""
        return self._strategy.get_instance(self)

    def get_all_instances(self) -> list[ServiceInstance]:
        """@return: every instance of the service, filters not applied."""
        return self._cache.get_instances()

    def note_error(self, instance: ServiceInstance) -> None:
        """Report a failure to use C{instance} (see L{DownInstancePolicy})."""
        self._down.add(instance)


class ServiceProviderBuilder:
    """Curator's C{ServiceProviderBuilder}; the strategy defaults to round robin."""

    def __init__(self, discovery: ServiceDiscovery) -> None:
        self._discovery = discovery
        self._name: str | None = None
        self._strategy: ProviderStrategy = RoundRobinStrategy()
        self._filters: list[InstanceFilter] = []
        self._policy = DownInstancePolicy()

    def service_name(self, name: str) -> ServiceProviderBuilder:
        self._name = name
        return self

    def provider_strategy(self, strategy: ProviderStrategy) -> ServiceProviderBuilder:
        self._strategy = strategy
        return self

    def additional_filter(self, instance_filter: InstanceFilter) -> ServiceProviderBuilder:
        self._filters.append(instance_filter)
        return self

    def down_instance_policy(self, policy: DownInstancePolicy) -> ServiceProviderBuilder:
        self._policy = policy
        return self

    def build(self) -> ServiceProvider:
        if self._name is None:
            raise ValueError("serviceName cannot be null")
        return ServiceProvider(
            self._discovery,
            self._name,
            self._strategy,
            filters=self._filters,
            down_instance_policy=self._policy,
        )


__all__ = [
    "DownInstancePolicy",
    "InstanceFilter",
    "InstanceProvider",
    "ProviderStrategy",
    "RandomStrategy",
    "RoundRobinStrategy",
    "ServiceProvider",
    "ServiceProviderBuilder",
    "StickyStrategy",
]
