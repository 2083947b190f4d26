"""
Curator's recipes on curatorish: one class per recipe, serving both faces
(L{curatorish.recipes.face}), writing Curator's znode layouts.
"""

from curatorish.recipes.leader import (
    CancelLeadershipException,
    CloseMode,
    LeaderLatch,
    LeaderSelector,
    LeaderSelectorListenerAdapter,
    Participant,
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
from curatorish.recipes.rwlock import InterProcessReadWriteLock
from curatorish.recipes.semaphore import (
    InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2,
    Lease,
)

__all__ = [
    "CancelLeadershipException",
    "CloseMode",
    "InterProcessMultiLock",
    "InterProcessMutex",
    "InterProcessReadWriteLock",
    "InterProcessSemaphoreMutex",
    "InterProcessSemaphoreV2",
    "LeaderLatch",
    "LeaderSelector",
    "LeaderSelectorListenerAdapter",
    "Lease",
    "LockInternals",
    "LockInternalsDriver",
    "LockLostError",
    "LockNotHeldError",
    "Participant",
    "PredicateResults",
    "Revoker",
    "StandardLockInternalsDriver",
]
