"""
The C allocator's settings for a server process (glibc's C{malloc}; elsewhere none).

CPython takes every block over 512 bytes from C{malloc}, among them the tables of
big dicts, sets and lists: the tree's index, a parent's children, the watch tables.
Such a table grows by allocating the next, twice as big, and freeing the last.
glibc serves a block over its mmap threshold (128 KiB at first) from its own
mapping and returns it to the system when freed, but the first time it frees one it
raises the threshold to that block's size (up to 32 MiB): from then on every table
below that size comes from the heap, and the heap keeps what is freed in its middle.
So each big table left its smaller predecessors behind, resident and unused: about
as much again as the table itself.  Measured with a million data watches set after a
million znodes were created (C{python -m bench --only znodes --servers zkreg}): 57.7
bytes of RSS per watch, of which the watch table's dict holds about 30; with this
module's settings 35-40 (three runs).

A fixed threshold (set explicitly, glibc no longer moves it) keeps blocks from
L{MMAP_THRESHOLD} up in their own mappings, returned when freed.  It is well above
anything a request allocates per call (a frame is at most ZooKeeper's 1 MiB
C{jute.maxbuffer}), so the hot paths keep reusing heap memory; and the heap keeps up
to L{TRIM_THRESHOLD} free at its top (what glibc's moving threshold would allow at
that size), so memory freed and taken again there is not handed to the system and
faulted back in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: Blocks from this size up get their own mapping (glibc's M_MMAP_THRESHOLD).
MMAP_THRESHOLD = 4 * 1024 * 1024
#: Free memory kept at the top of the heap (glibc's M_TRIM_THRESHOLD).
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """
    Fix glibc's mmap and trim thresholds (see the module's docstring).

    @return: whether they were set: C{False} where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it; musl's mallopt is a no-op)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
