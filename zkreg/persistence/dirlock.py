"""
One process at a time in a data directory: an exclusive lock file, held for the life
of the process (as etcd and PostgreSQL do).

Two servers on one data directory purge each other's log segments and, after a
restart, lose every write one of them acknowledged.  So a server takes a C{flock} on
C{zkreg.lock} in its data directory before it reads anything there, and keeps it until
it exits; the kernel drops it when the process dies, however it dies, so a crash never
leaves a stale lock.  The file holds the holder's pid so that whoever is refused can be
told who holds it.  C{flock} (not C{fcntl} record locks) because it belongs to the open
file, so it survives twistd's daemonizing fork, and a forked snapshot child can close
its copy without releasing the parent's lock.

The same lock keeps the C{zkreg} tools that change the directory (C{log truncate}) out
while a server runs; the read-only tools never take it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

__all__ = [
    "LOCK_FILE_NAME",
    "DataDirLock",
    "DataDirLocked",
    "DataDirUnwritable",
    "lock_data_dir",
]

#: The lock file's name inside the data directory.
LOCK_FILE_NAME = "zkreg.lock"

#: A probe file created and removed to check the directory itself is writable.
_PROBE_FILE_NAME = ".zkreg-write-probe"


class DataDirLocked(Exception):
    """
    Another process holds the data directory.

    @ivar directory: the data directory.
    @ivar pid: the holder's pid as written in the lock file, or L{None} if unknown.
    """

    def __init__(self, directory: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(
            f"data directory {directory} is in use by another zkreg ({holder}); "
            f"two servers on one data directory would destroy each other's log: stop "
            f"that one first, or give this one its own --data-dir"
        )
        self.directory = directory
        self.pid = pid


class DataDirUnwritable(Exception):
    """The data directory cannot be written (permissions, read-only, immutable)."""


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DataDirLock:
    """
    The held lock of one data directory: release it with L{release} (or let the
    process exit).

    @ivar directory: the locked data directory.
    @ivar fileno: the lock file's descriptor while held, else -1.
    """

    def __init__(self, directory: str, fileno: int) -> None:
        self.directory = directory
        self.fileno = fileno

    def write_pid(self, pid: int | None = None) -> None:
        """
        Record the holder's pid in the lock file (again after twistd daemonized,
        which changes the pid but keeps the lock).
        """
        if self.fileno < 0:
            return
        text = f"{os.getpid() if pid is None else pid}\n".encode("ascii")
        os.ftruncate(self.fileno, 0)
        os.pwrite(self.fileno, text, 0)

    def close_in_child(self) -> None:
        """
        In a forked child: close the inherited descriptor without touching the lock,
        which stays the parent's (and would otherwise outlive a killed parent for as
        long as the child runs).
        """
        if self.fileno >= 0:
            try:
                os.close(self.fileno)
            except OSError:
                pass
            self.fileno = -1

    def release(self) -> None:
        """Give the directory up (a second call does nothing)."""
        if self.fileno < 0:
            return
        fileno, self.fileno = self.fileno, -1
        try:
            os.ftruncate(fileno, 0)
        except OSError:
            pass
        fcntl.flock(fileno, fcntl.LOCK_UN)
        os.close(fileno)

    def __repr__(self) -> str:
        return f"<DataDirLock {self.directory} fd={self.fileno}>"


def _unwritable(directory: str, error: OSError) -> DataDirUnwritable:
    return DataDirUnwritable(
        f"data directory {directory} is not writable ({error.strerror or error}); "
        f"zkreg must write its log there: fix its permissions or mount, or choose "
        f"another --data-dir"
    )


def lock_data_dir(directory: str, wait_s: float = 0.0) -> DataDirLock:
    """
    Take the data directory for this process (creating it and the lock file if
    missing), and check that the directory can be written.

    @param wait_s: how long to retry while another process holds the lock (a
        server that was just killed may leave a snapshot child alive for a moment).
    @raise DataDirLocked: another process holds it; the message names the pid.
    @raise DataDirUnwritable: the directory or its lock file cannot be written.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise _unwritable(directory, error) from error
    path = os.path.join(directory, LOCK_FILE_NAME)
    try:
        fileno = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise _unwritable(directory, error) from error
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fileno, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = _read_pid(fileno)
                os.close(fileno)
                raise DataDirLocked(directory, pid) from None
            time.sleep(0.05)
    lock = DataDirLock(directory, fileno)
    try:
        lock.write_pid()
        _probe(directory)
    except OSError as error:
        lock.release()
        raise _unwritable(directory, error) from error
    return lock


def _probe(directory: str) -> None:
    """Create and remove a file: an immutable directory lets the lock file be written."""
    probe = os.path.join(directory, _PROBE_FILE_NAME)
    fileno = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fileno, b"probe\n")
    finally:
        os.close(fileno)
    try:
        os.unlink(probe)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise
