"""
A process's resident set size, read from C{/proc}.
"""

from __future__ import annotations

import time


def rss_kib(pid: int) -> int:
    """@return: the resident set size of process C{pid} in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settled_rss_kib(pid: int, timeout: float = 8.0) -> int:
    """
    @return: the RSS once two readings 0.5 s apart differ by under 0.5% (or the last
        reading at C{timeout}): allocation after a burst of connections is not instant.
    """
    deadline = time.monotonic() + timeout
    previous = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = rss_kib(pid)
        if abs(current - previous) <= previous * 0.005:
            return current
        previous = current
    return previous
