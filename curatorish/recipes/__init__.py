"""
Curator's recipes on curatorish: each class takes either client (see
L{curatorish.recipes.face}); Curator's names in snake_case.
"""

from curatorish.recipes.cache import (
    ChildData,
    CuratorCache,
    CuratorCacheListener,
    CuratorCacheListenerBuilder,
    CuratorCacheListenerType,
    CuratorCacheOption,
)
from curatorish.recipes.classic_cache import (
    NodeCache,
    PathChildrenCache,
    PathChildrenCacheEvent,
    PathChildrenCacheEventType,
    PathChildrenCacheStartMode,
    TreeCache,
    TreeCacheEvent,
    TreeCacheEventType,
)

__all__ = [
    "ChildData",
    "CuratorCache",
    "CuratorCacheListener",
    "CuratorCacheListenerBuilder",
    "CuratorCacheListenerType",
    "CuratorCacheOption",
    "NodeCache",
    "PathChildrenCache",
    "PathChildrenCacheEvent",
    "PathChildrenCacheEventType",
    "PathChildrenCacheStartMode",
    "TreeCache",
    "TreeCacheEvent",
    "TreeCacheEventType",
]
