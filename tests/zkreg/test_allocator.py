"""
The C allocator settings of a server process (L{zkreg.allocator}): a big table that
grew leaves its freed predecessors resident without them, not with them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Grows a dict to 600,000 entries one insertion at a time (its last table 20 MiB,
#: its predecessors as much again) after the free of a 30 MiB block raised glibc's
#: moving threshold, and prints the growth of RSS in bytes.
_GROW = """
import json, sys
from zkreg.allocator import tune_allocator

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024

tuned = tune_allocator() if sys.argv[1] == "tune" else None
keys = list(range(600_000))
block = bytearray(30 << 20)
del block
before = rss()
table = {}
for key in keys:
    table[key] = None
print(json.dumps({"tuned": tuned, "growth": rss() - before}))
"""


def _grow(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _GROW, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_grown_table_leaves_no_predecessors_resident():
    tuned, untuned = _grow("tune"), _grow("leave")
    assert tuned["tuned"] is True
    table = 4 * (1 << 20) + 24 * ((1 << 20) * 2 // 3)  # 2**20 indices, then entries: 20 MiB
    # Measured: tuned 1.24 tables (those under the threshold leave theirs), untuned 1.99.
    assert tuned["growth"] < 1.5 * table, tuned
    assert untuned["growth"] > 1.75 * table, untuned
