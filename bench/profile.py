"""
Sampling profiles of a running zkreg during a workload, summarized as hot spots.

L{start} runs C{py-spy record --format raw} against the server's pid for a fixed
duration (py-spy samples from outside the process, so zkreg needs no change); the raw
output is one line per distinct stack, C{frame;frame;...;frame count}.  L{summarize}
turns it into two rankings: where the time is spent (self: the innermost frame) and
what it is spent under (inclusive: every function on the stack, once per sample).

Idle samples (the reactor waiting in epoll) are kept out of the percentages, so they
are shares of the server's busy time; the idle share is reported separately.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

#: Frames meaning "the reactor is waiting for I/O", i.e. the server is idle.
_IDLE_MARKERS = ("doPoll (twisted/internet/epollreactor.py", "poll (selectors.py", "select (")


#: Files of the frames every busy sample passes through (the interpreter start, twistd,
#: the reactor loop and its logging context): left out of the inclusive ranking, where
#: they would fill the top places at ~100% and say nothing.
_SPINE = (
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
    """C{"dataReceived (zkreg/session/protocol.py:120)"} -> without the line number."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def summarize(raw_path: Path, top: int = 20) -> str:
    """
    @return: a text table of the top C{top} functions by self and by inclusive share
        of the busy samples in C{raw_path}.
    """
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in _IDLE_MARKERS):
            idle += count
            continue
        busy += count
        names = [_frame_name(frame) for frame in frames]
        self_counts[names[-1]] += count
        for name in set(names):
            if not any(spine in name for spine in _SPINE):
                inclusive[name] += count
    total = busy + idle
    if not busy:
        return f"{raw_path.name}: no busy samples ({total} samples)"
    lines = [
        f"{raw_path.name}: {total} samples, {100.0 * idle / total:.0f}% idle in the reactor's "
        f"poll; shares below are of the {busy} busy samples",
        "",
        "self %  function (where the CPU time is spent)",
    ]
    lines += [f"{100.0 * n / busy:6.1f}  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "incl %  function (time spent in it and below; reactor loop frames left out)"]
    lines += [f"{100.0 * n / busy:6.1f}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)
