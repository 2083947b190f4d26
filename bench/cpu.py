"""
CPU time of a process and its descendants, read from C{/proc/<pid>/stat}.

Used by the load client (L{bench.loadclient}) to report the server's CPU use over a
measured window, and by L{bench.client} and L{bench.write_cpu}, which need it without
the load client.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int) -> list[str]:
    """@return: the fields of C{/proc/<pid>/stat} after the command name."""
    with open(f"/proc/{pid}/stat") as stat_file:
        return stat_file.read().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """
    @return: user plus system CPU seconds used so far by process C{pid} (all threads)
        and its live descendants (zkreg's session processes with
        C{--session-processes}, a snapshot child).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat_fields(current)
        except OSError:
            if current == pid:
                raise
            continue
        # After the command name: state is field 3, utime 14 and stime 15 (1-based).
        total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, ()))
    return total / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
