"""
The collector settings of a server process (L{zkreg.collector}); an embedding program
(curatorish.testing builds zkreg's service in its own process) keeps its own.
"""

from __future__ import annotations

import gc

from zkreg import collector
from zkreg.tap import Options, makeService


def test_tune_collector_raises_the_thresholds():
    before = gc.get_threshold()
    try:
        collector.tune_collector()
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
    finally:
        gc.set_threshold(*before)


def test_a_service_built_outside_twistd_leaves_the_collector_alone(tmp_path):
    # Objects an earlier test froze (an in-process snapshot load freezes its tree)
    # may be freed meanwhile, lowering the count: start from none frozen, so any
    # freeze by makeService shows.
    gc.unfreeze()
    before = gc.get_threshold(), gc.get_freeze_count()
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--data-dir", str(tmp_path)])
    makeService(options)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
