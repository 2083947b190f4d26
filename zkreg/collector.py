"""
The garbage collector's settings for a server process.

CPython's default (a young collection every 700 net allocations, older ones in turn)
is tuned for short programs.  A zkreg process keeps many objects alive for a while
(hundreds of pipelined requests in flight, each a few records, and the tree), so
they survive young collections, fill the oldest generation, and full collections
came often: profiled under 8 sessions x 100 pipelined writes, the collector took
about as much time as the requests themselves (582 collections, ~0.9 s in 5 s, in a
data server; 802 in a standalone one).  Nearly everything zkreg allocates per request
is freed by reference counting; the collector is only there for the rare cycle.

So: young collections every L{YOUNG_THRESHOLD} allocations, and the objects alive once
the process is set up (modules, Twisted, the recovered tree) moved out of the
collector's reach with C{gc.freeze}, so full collections do not walk them.
"""

from __future__ import annotations

import gc
from typing import Any

#: Net allocations between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 20_000
#: Young collections per middle one, middle ones per full one (defaults: 10, 10).
OLDER_THRESHOLDS = (20, 20)


def tune_collector(reactor: Any = None) -> None:
    """
    Collect less often, and once C{reactor} runs (the process is set up, the tree
    recovered) freeze what is alive: see the module's docstring.
    """
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    if reactor is not None:
        reactor.callWhenRunning(freeze_startup_objects)


def freeze_startup_objects() -> None:
    """
    Move every object alive now (the process is set up, the tree recovered) to the
    permanent generation: full collections no longer walk them.  No collection first:
    over a recovered tree of a million znodes it would cost a second of start-up, for
    the few cycles set-up leaves behind.
    """
    gc.freeze()
