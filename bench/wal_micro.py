"""
How long one group commit's C{fdatasync} takes on this disk, by how the segment was
preallocated: C{posix_fallocate} (unwritten extents: each sync also commits the extent
conversion to the journal), explicit zeros (plain data syncs), or a sparse file.

Run: C{python -m bench.wal_micro [--batches N] [--batch-bytes B] [--dir DIR]}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def _measure(path: str, mode: str, batches: int, batch_bytes: int, size: int) -> list[float]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if mode == "fallocate":
            os.posix_fallocate(fd, 0, size)
        elif mode == "zeros":
            os.pwrite(fd, bytes(size), 0)
        else:
            os.ftruncate(fd, size)
        os.fsync(fd)
        blob = b"\x01" * batch_bytes
        times = []
        offset = 0
        for _ in range(batches):
            os.pwrite(fd, blob, offset)
            offset += batch_bytes
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
        return times
    finally:
        os.close(fd)
        os.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-bytes", type=int, default=128 * 150)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="wal-micro-")
    size = max(args.batches * args.batch_bytes * 2, 1 << 20)
    for mode in ("fallocate", "zeros", "sparse"):
        times = _measure(os.path.join(directory, mode), mode, args.batches, args.batch_bytes, size)
        times.sort()
        print(
            f"{mode:10s} fdatasync p50 {statistics.median(times) * 1e3:6.2f} ms  "
            f"p90 {times[int(len(times) * 0.9)] * 1e3:6.2f} ms  "
            f"mean {statistics.fmean(times) * 1e3:6.2f} ms"
        )


if __name__ == "__main__":
    main()
