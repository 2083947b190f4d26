"""
The discovery example in one command: a zkreg server (unless C{--zk} names one), two
instances of the web service, and the client following them.  Once both are
registered, one instance stops and a third starts, so the client shows instances
going away and appearing; then everything stops.

    python examples/discovery/demo.py [--zk HOST:PORT] [--pause 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

#: Bound on waiting for a process to say it is ready.
READY_TIMEOUT_S = 90.0


class Process:
    """A child whose output lines are printed as they come, and can be waited for."""

    def __init__(self, script: str, *args: str) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.popen = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            print(line, end="", flush=True)
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, after: int = 0) -> int:
        """Wait for a line starting with C{text} after line C{after}; @return: its index + 1."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        with self._changed:
            while True:
                for index in range(after, len(self.lines)):
                    if self.lines[index].startswith(text):
                        return index + 1
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    raise SystemExit(f"demo: gave up waiting for {text!r}")
                self._changed.wait(min(left, 0.5))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zk", help="a running ZooKeeper-compatible server (default: start zkreg)")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between the steps")
    options = parser.parse_args(argv)
    server = None
    if options.zk is None:
        sys.path.insert(0, str(REPO))
        from curatorish.testing import TestingServer

        server = TestingServer()
        options.zk = server.connect_string
        print(f"started zkreg at {options.zk}", flush=True)
    processes: list[Process] = []
    try:
        client = Process("client.py", "--zk", options.zk)
        processes.append(client)
        # One after the other, so the first "registered" line is the first service's.
        first = Process("web_service.py", "--zk", options.zk)
        processes.append(first)
        first.wait_for("registered")
        second = Process("web_service.py", "--zk", options.zk)
        processes.append(second)
        second.wait_for("registered")
        seen = 0
        while "," not in client.lines[seen - 1] if seen else True:  # both instances listed
            seen = client.wait_for("instances now", seen)
        time.sleep(options.pause)
        first.stop()
        seen = client.wait_for("instances now", seen)  # the first one gone
        third = Process("web_service.py", "--zk", options.zk)
        processes.append(third)
        third.wait_for("registered")
        client.wait_for("instances now", seen)  # the third one there
        time.sleep(options.pause)
    finally:
        for process in reversed(processes):
            process.stop()
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
