"""
Sampling profiles of a running zkreg during a workload, summarized as hot spots.

L{start} runs C{py-spy record --format raw} against the server's pid for a fixed
duration (py-spy samples from outside the process, so zkreg needs no change); the raw
output is one line per distinct stack, C{frame;frame;...;frame count}.  L{summarize}
turns it into two rankings: where the time is spent (self: the innermost frame) and
what it is spent under (inclusive: every function on the stack, once per sample).

Samples of the reactor thread are ranked; idle ones (waiting in epoll) are kept out of
the percentages, so they are shares of its busy time, and the idle share is reported
separately.  Other threads (the WAL writer, the thread pool) are summarized apart.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

#: Innermost frames meaning "this thread is waiting" (for I/O, a lock or a queue).
_IDLE_MARKERS = (
    "doPoll (twisted/internet/epollreactor.py",
    "poll (selectors.py",
    "select (",
    "wait (threading.py",
    "_wait_for_tstate_lock (threading.py",
    "get (queue.py",
)


#: Files of the frames every busy sample passes through (the interpreter start, twistd,
#: the reactor loop and its logging context): left out of the inclusive ranking, where
#: they would fill the top places at ~100% and say nothing.
_SPINE = (
    "<module> (<string>)",
    "<frozen runpy>",
    "twisted/__main__.py",
    "twisted/application/",
    "twisted/scripts/",
    "twisted/internet/base.py",
    "twisted/internet/epollreactor.py",
    "twisted/internet/posixbase.py",
    "twisted/internet/tcp.py",
    "twisted/python/log.py",
    "twisted/python/context.py",
)


def available() -> bool:
    """@return: whether py-spy is installed."""
    return shutil.which("py-spy") is not None


def start(pid: int, output: Path, seconds: float, rate: int = 250) -> subprocess.Popen[bytes]:
    """
    Start sampling C{pid} for C{seconds} into C{output} (raw collapsed stacks).

    @return: the py-spy process; wait for it before reading C{output}.
    """
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--nonblocking",
            "--idle",
            "-o",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _frame_name(frame: str) -> str:
    """C{"dataReceived (zkreg/session/framing.py:120)"} -> without the line number."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def _is_idle(innermost: str) -> bool:
    return any(marker in innermost for marker in _IDLE_MARKERS)


def summarize(raw_path: Path, top: int = 20) -> str:
    """
    @return: a text table of the top C{top} functions of the reactor thread by self and
        by inclusive share of its busy samples in C{raw_path}, then the busy functions
        of the other threads (the WAL writer, the thread pool).
    """
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    worker_counts: Counter[str] = Counter()
    busy = idle = worker_busy = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # Threads started by the threading module (the WAL writer, the thread pool)
        # begin in Thread._bootstrap; everything else is the reactor's main thread.
        reactor_thread = not frames[0].startswith("Thread._bootstrap")
        if _is_idle(frames[-1]):
            if reactor_thread:
                idle += count
            continue
        names = [_frame_name(frame) for frame in frames]
        if not reactor_thread:
            worker_busy += count
            worker_counts[names[-1]] += count
            continue
        busy += count
        self_counts[names[-1]] += count
        for name in set(names):
            if not any(spine in name for spine in _SPINE):
                inclusive[name] += count
    total = busy + idle
    if not busy:
        return f"{raw_path.name}: no busy samples ({total} samples)"
    lines = [
        f"{raw_path.name}: reactor thread {total} samples, {100.0 * idle / total:.0f}% idle "
        f"(waiting in poll); shares below are of its {busy} busy samples",
        "",
        "self %  function (where the CPU time is spent)",
    ]
    lines += [f"{100.0 * n / busy:6.1f}  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "incl %  function (time spent in it and below; reactor loop frames left out)"]
    lines += [f"{100.0 * n / busy:6.1f}  {name}" for name, n in inclusive.most_common(top)]
    lines += [
        "",
        f"other threads: busy {100.0 * worker_busy / total:.0f}% of one core "
        "(share of the reactor thread's sample count); top functions:",
    ]
    lines += [
        f"{100.0 * n / total:6.1f}  {name}" for name, n in worker_counts.most_common(min(top, 8))
    ]
    return "\n".join(lines)
