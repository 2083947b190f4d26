"""
How to start zkreg for tests: its command-line options, its C{twistd} command and
environment for a subprocess, its service in this process, and the probes a starter
needs (a free port, four-letter words).

Kept apart from L{curatorish.testing} because its test servers are only one user:
the project's own test support starts zkreg (and session-server processes) with the
same options and command line.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The directory holding the C{zkreg} package and C{twisted/plugins/zkreg_plugin.py}.
ZKREG_ROOT = Path(__file__).resolve().parents[1]

_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def free_port(host: str = "127.0.0.1") -> int:
    """
    @return: a TCP port nothing listens on right now.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def four_letter_word(host: str, port: int, word: str, timeout_s: float = 5.0) -> str:
    """
    @return: the server's answer to a four-letter word (C{ruok}, C{srvr}, C{mntr}...).
    """
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        conn.settimeout(timeout_s)
        conn.sendall(word.encode("ascii"))
        chunks = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def zkreg_options(
    host: str,
    port: int,
    data_dir: Path | None,
    tick_time_ms: int,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """
    @param data_dir: the data directory, or None for a session server (C{--role
        session} in C{extra_args}): it keeps no data and reaps no containers.
    @return: the C{zkreg} command-line options of a testing server: loopback only, every
        four-letter word, TTL nodes on, containers swept every 500 ms.
    """
    options = ["--listen", f"tcp:{port}:interface={host}"]
    if data_dir is not None:
        options += ["--data-dir", str(data_dir)]
    options += ["--tick-time", str(tick_time_ms), "--4lw-whitelist", "*", "--extended-types"]
    if data_dir is not None:
        options += ["--container-check-interval", "500"]
    return [*options, *extra_args]


def zkreg_command(
    options: Sequence[str], twistd_options: Sequence[str] = ("-n", "--pidfile=")
) -> list[str]:
    """
    @param options: the C{zkreg} options (L{zkreg_options}).
    @param twistd_options: twistd's own options (by default: in the foreground, no
        pid file).
    @return: the argv running C{twistd TWISTD_OPTIONS zkreg OPTIONS} with this Python
        (twistd as a module: C{python -m twisted} is the newer C{twist} runner, which
        has neither C{-n} nor C{--pidfile}); run it with L{zkreg_environment}.
    """
    return [sys.executable, "-c", _TWISTD, *twistd_options, "zkreg", *options]


def zkreg_environment() -> dict[str, str]:
    """
    @return: this process's environment with L{ZKREG_ROOT} first on C{PYTHONPATH}, so
        twistd finds the zkreg plugin.
    """
    env = dict(os.environ)
    previous = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ZKREG_ROOT) + (os.pathsep + previous if previous else "")
    return env


def start_zkreg_service(arguments: Sequence[str]) -> Any:
    """
    Build zkreg's service (C{zkreg.tap.makeService}) and start it on the global
    reactor; call it on the reactor thread.

    @return: the started service (stop it with C{stopService()}).
    """
    from zkreg.tap import Options, makeService

    options = Options()
    options.parseOptions(list(arguments))
    service = makeService(options)
    service.startService()
    return service


__all__ = [
    "ZKREG_ROOT",
    "four_letter_word",
    "free_port",
    "start_zkreg_service",
    "zkreg_command",
    "zkreg_environment",
    "zkreg_options",
]
