"""
Leader election on Curator's znodes: C{LeaderLatch} and C{LeaderSelector}.

L{LeaderLatch}: each participant creates a protected ephemeral-sequential node
C{<path>/_c_<uuid>-latch-<seq>} whose data is its id; the first in sequence order
leads, each other watches only its predecessor.  L{LeaderSelector}: participants
queue on an L{InterProcessMutex} (C{_c_<uuid>-lock-<seq>}, data the id); the holder's
C{take_leadership} runs, and leadership ends when it returns.  A Java process using
Apache Curator on the same path takes part in the same election.

Never two leaders: leadership is dropped I{at once} (before any listener runs) when
the connection state is an error state of the client's error policy (by default
SUSPENDED and LOST), and it is only ever taken from a fresh listing of the children
made while the connection is healthy.  With the default policy a leader cut off from
the server drops out when its connection notices (after two thirds of the session
timeout at most), before the server can expire its session and let the next
participant in.  With L{SessionConnectionStateErrorPolicy} a latch (and a selector
whose listener leaves connection states to it) keeps leading through a short
SUSPENDED, but (unlike Curator, which waits for LOST) only for a quarter of the
session timeout: soon after that the server may expire the session.

The recipes live in L{curatorish.recipes.leader_latch} and
L{curatorish.recipes.leader_selector}, what they share in
L{curatorish.recipes.election}; their public names are imported here so that
C{from curatorish.recipes.leader import LeaderLatch} (and the rest of this module's
C{__all__}) keeps working.
"""

from curatorish.recipes.election import Participant, State, id_bytes
from curatorish.recipes.leader_latch import LATCH_LOCK_NAME, CloseMode, LeaderLatch
from curatorish.recipes.leader_selector import (
    SELECTOR_LOCK_NAME,
    CancelLeadershipException,
    LeaderSelector,
    LeaderSelectorListenerAdapter,
)

__all__ = [
    "CancelLeadershipException",
    "CloseMode",
    "LATCH_LOCK_NAME",
    "LeaderLatch",
    "LeaderSelector",
    "LeaderSelectorListenerAdapter",
    "Participant",
    "SELECTOR_LOCK_NAME",
    "State",
    "id_bytes",
]
