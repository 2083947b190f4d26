"""
A load client (L{bench.loadclient}) kept running across the phases of one measurement,
for the workloads that read the server between phases (idle sessions held while RSS
is read; a tree created, then watched).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
from typing import Any


class LoadProcess:
    """
    A load-client process that prints one JSON line as each phase ends and reads its
    next instruction from stdin; closing its stdin ends it.

    Its stderr goes to a file, not a pipe: nobody reads it until the end, and a full
    pipe would block the load client.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self._errors = tempfile.TemporaryFile("w+")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadclient", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
        )

    def phase(self, timeout: float, what: str) -> dict[str, Any]:
        """
        @return: the JSON line of the phase ending now.
        @raise RuntimeError: when none comes within C{timeout} seconds, with the end of
            the load client's stderr and C{what} it was doing.
        """
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else ""
        if not line:
            self._errors.seek(0)
            raise RuntimeError(
                f"{what} failed or took over {timeout:.0f} s: {self._errors.read()[-3000:]}"
            )
        return json.loads(line)

    def send(self, instruction: str) -> None:
        """Start the next phase (one line to the load client)."""
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(instruction + "\n")
        stdin.flush()

    def close(self, timeout: float) -> None:
        """End the load client (its stdin closed), killing it after C{timeout} s."""
        stdin = self._process.stdin
        assert stdin is not None
        stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._errors.close()
