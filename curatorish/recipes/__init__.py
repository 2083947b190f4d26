"""
Curator's recipes on curatorish: each recipe class takes either client (Deferreds on
L{curatorish.CuratorFramework}, values on L{curatorish.BlockingCuratorFramework}) and
writes Curator 5.4's znode layouts and data formats.
"""

from curatorish.recipes.atomic import (
    AtomicStats,
    AtomicValue,
    DistributedAtomicInteger,
    DistributedAtomicLong,
    DistributedAtomicValue,
    PromotedToLock,
)
from curatorish.recipes.barriers import (
    DistributedBarrier,
    DistributedDoubleBarrier,
)
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
from curatorish.recipes.election import Participant
from curatorish.recipes.leader_latch import CloseMode, LeaderLatch
from curatorish.recipes.leader_selector import (
    CancelLeadershipException,
    LeaderSelector,
    LeaderSelectorListenerAdapter,
)
from curatorish.recipes.lock_internals import (
    LockInternals,
    LockInternalsDriver,
    PredicateResults,
    Revoker,
    StandardLockInternalsDriver,
)
from curatorish.recipes.locks import (
    InterProcessMultiLock,
    InterProcessMutex,
    LockLostError,
    LockNotHeldError,
)
from curatorish.recipes.nodes import (
    GroupMember,
    PersistentNode,
    PersistentTtlNode,
)
from curatorish.recipes.queue import (
    DistributedDelayQueue,
    DistributedIdQueue,
    DistributedPriorityQueue,
    DistributedQueue,
    ErrorMode,
    QueueSerializer,
)
from curatorish.recipes.rwlock import (
    InterProcessReadWriteLock,
)
from curatorish.recipes.semaphore import (
    InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2,
    Lease,
)
from curatorish.recipes.shared import (
    SharedCount,
    SharedCountListener,
    SharedValue,
    SharedValueListener,
    VersionedValue,
)
from curatorish.recipes.simple_queue import NoSuchElementError, SimpleDistributedQueue
