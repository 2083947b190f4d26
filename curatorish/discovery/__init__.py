"""
Service discovery compatible with Apache Curator's curator-x-discovery: the same
names (in snake_case), the same znode layout (C{base_path/name/id}) and the same JSON,
so Java and Python services register in, and find each other through, one registry.
"""

from curatorish.discovery.discovery import ServiceDiscovery
from curatorish.discovery.instance import ServiceInstance, ServiceType, UriSpec, UriSpecPart
from curatorish.discovery.provider import (
    DownInstancePolicy,
    InstanceFilter,
    InstanceProvider,
    ProviderStrategy,
    RandomStrategy,
    RoundRobinStrategy,
    ServiceProvider,
    ServiceProviderBuilder,
    StickyStrategy,
)
from curatorish.discovery.serializer import InstanceSerializer, JsonInstanceSerializer
from curatorish.discovery.service_cache import (
    ServiceCache,
    ServiceCacheBuilder,
    ServiceCacheListener,
)

__all__ = [
    "DownInstancePolicy",
    "InstanceFilter",
    "InstanceProvider",
    "InstanceSerializer",
    "JsonInstanceSerializer",
    "ProviderStrategy",
    "RandomStrategy",
    "RoundRobinStrategy",
    "ServiceCache",
    "ServiceCacheBuilder",
    "ServiceCacheListener",
    "ServiceDiscovery",
    "ServiceInstance",
    "ServiceProvider",
    "ServiceProviderBuilder",
    "ServiceType",
    "StickyStrategy",
    "UriSpec",
    "UriSpecPart",
]
