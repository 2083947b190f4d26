"""
Reading Linux's C{/proc} in tests: a process's children, and the TCP connections of
a port each process holds (the tests of C{--session-processes} look at the processes
themselves, not at what the server says of them).
"""

from __future__ import annotations

import os
from pathlib import Path


def child_pids(parent_pid: int) -> set[int]:
    """@return: the pids of the live processes whose parent is C{parent_pid}."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent_pid and fields[0] != "Z":
            children.add(int(entry.name))
    return children


def is_alive(pid: int) -> bool:
    """@return: whether C{pid} is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def established_on_port(pid: int, port: int) -> int:
    """@return: how many established TCP connections to local C{port} C{pid} holds."""
    inodes = _socket_inodes(pid)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count
