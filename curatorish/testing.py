"""
A real ZooKeeper-compatible server for tests: zkreg, started on a free port.

Like Curator's C{curator-test} (C{TestingServer}, C{KillSession}), but with no Java:

    from curatorish.testing import TestingServer

    with TestingServer() as server:            # a zkreg subprocess on a free port
        client = KazooClient(hosts=server.connect_string)   # or curatorish
        ...
        server.restart()                       # same port, same data
        server.expire_session(*client.client_id)           # kazoo: (id, password)

The server runs as a subprocess (C{twistd zkreg}, the default) or, with
C{in_process=True}, as a zkreg service on the shared reactor of
L{curatorish.reactor_thread} (so only from threaded code, not from the reactor thread).

For pytest, add C{pytest_plugins = ["curatorish.testing"]} to a C{conftest.py} and use
the C{zkreg_testing_server} fixture (one server per test session), or build your own
with L{testing_server_fixture}.

The pieces live in smaller modules: L{curatorish.zkreg_launch} (zkreg's options,
command line, environment and in-process service; free ports, four-letter words),
L{curatorish.kill_session} (L{expire_session}, L{session_of}) and
L{curatorish.testing_reactor} (L{ReactorTestingServer}).  Their public names are
imported here too: they are this module's public API (its C{__all__}; the README
and CHANGELOG give them as C{curatorish.testing}'s).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from curatorish.kill_session import expire_session, session_of
from curatorish.testing_reactor import ReactorTestingServer
from curatorish.zkreg_launch import (
    ZKREG_ROOT,
    four_letter_word,
    free_port,
    start_zkreg_service,
    zkreg_command,
    zkreg_environment,
    zkreg_options,
)

#: How long a server may take to answer C{ruok}.
START_TIMEOUT_S = 60.0


class TestingServer:
    """
    A zkreg server for tests.

    @ivar port: its client port (kept across restarts).
    @ivar data_dir: its data directory (kept across restarts; removed by L{close}
        when we made it).
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name
    name = "zkreg"

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | None = None,
        *,
        start: bool = True,
        in_process: bool = False,
        tick_time_ms: int = 2000,
        extra_args: Sequence[str] = (),
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        """
        @param port: the port, or a free one.
        @param data_dir: where the server keeps its data, or a new temporary directory.
        @param in_process: run the server in this process on the shared reactor.
        @param tick_time_ms: the server's tick (session timeouts are 2 to 20 ticks).
        @param extra_args: more C{zkreg} options (e.g. C{["--super-digest", "..."]}).
        """
        self.port = port or free_port()
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="zkreg-testing-"))
        self.in_process = in_process
        self.tick_time_ms = tick_time_ms
        self.extra_args = list(extra_args)
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir.parent / (self.data_dir.name + ".log")
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._service: Any = None
        if start:
            self.start()

    # -- addresses --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def connect_string(self) -> str:
        """C{"127.0.0.1:<port>"}, for any ZooKeeper client."""
        return f"{self.host}:{self.port}"

    hosts = connect_string

    def options(self) -> list[str]:
        """
        @return: the C{zkreg} options of this server.
        """
        return zkreg_options(
            self.host, self.port, self.data_dir, self.tick_time_ms, self.extra_args
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        if self.in_process:
            return self._service is not None
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """
        Start the server and wait (up to C{start_timeout_s}) until it answers C{ruok}.

        @raise RuntimeError: when it does not, with the end of its log.
        """
        if self.is_running:
            return
        if self.in_process:
            self._start_in_process()
        else:
            self._start_subprocess()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if not self.in_process and not self.is_running:
                break
            try:
                if four_letter_word(self.host, self.port, "ruok", 1.0) == "imok":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"zkreg did not start on port {self.port}; log tail:\n{tail}")

    def _start_subprocess(self) -> None:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            zkreg_command(self.options()),
            cwd=str(ZKREG_ROOT),
            env=zkreg_environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _start_in_process(self) -> None:
        from curatorish.reactor_thread import call_in_reactor

        self._service = call_in_reactor(
            start_zkreg_service, self.options(), timeout_s=self.start_timeout_s
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """
        Stop the server (SIGTERM, then SIGKILL after C{timeout_s}); data is kept.
        """
        if self.in_process:
            service, self._service = self._service, None
            if service is not None:
                from curatorish.reactor_thread import call_in_reactor

                call_in_reactor(service.stopService, timeout_s=timeout_s)
            return
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """
        Kill the server at once (SIGKILL: no shutdown); an in-process one just stops.
        """
        if self.in_process:
            self.stop()
        else:
            self._signal(signal.SIGKILL, 10.0)

    def _signal(self, signum: int, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10.0)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> None:
        """
        Stop and start again on the same port with the same data.
        """
        self.stop()
        self.start()

    def drop_connections(self) -> None:
        """
        Drop every client connection; sessions survive and clients reconnect to them.

        In process, the server's connections are aborted.  A subprocess is restarted
        (so sessions survive only as far as the server's state survives a restart).
        """
        if not self.in_process:
            self.restart()
            return
        from curatorish.reactor_thread import call_in_reactor

        def abort_all() -> int:
            dropped = 0
            for child in list(self._service or ()):
                factory = getattr(child, "factory", None)
                for connection in list(getattr(factory, "connections", ())):
                    connection.transport.abortConnection()
                    dropped += 1
            return dropped

        call_in_reactor(abort_all, timeout_s=10.0)

    def close(self) -> None:
        """
        Stop and remove the data directory (if this server made it).
        """
        self.kill()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def __enter__(self) -> TestingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------------

    def expire_session(self, session_id_or_client: Any, password: bytes | None = None) -> bool:
        """
        Expire a session: give C{(session_id, password)}, or a client (curatorish,
        kazoo) whose session it is.  See L{expire_session}.
        """
        if password is None:
            session_id, password = session_of(session_id_or_client)
        else:
            session_id = int(session_id_or_client)
        return expire_session(self.connect_string, session_id, password)

    def four_letter_word(self, word: str) -> str:
        return four_letter_word(self.host, self.port, word)

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-max_chars:]
        except OSError:
            return "(no log)"

    def __repr__(self) -> str:
        mode = "in-process" if self.in_process else "subprocess"
        return f"<TestingServer {self.connect_string} {mode} running={self.is_running}>"


def testing_server_fixture(scope: str = "session", **options: Any) -> Any:
    """
    Make a pytest fixture yielding a started L{TestingServer} (closed afterwards)::

        zk_server = testing_server_fixture(scope="module", tick_time_ms=500)
    """
    import pytest

    @pytest.fixture(scope=scope)  # type: ignore[call-overload, misc]
    def server_fixture() -> Iterator[TestingServer]:
        server = TestingServer(**options)
        try:
            yield server
        finally:
            server.close()

    return server_fixture


testing_server_fixture.__test__ = False  # type: ignore[attr-defined]


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pass
else:
    zkreg_testing_server = testing_server_fixture()
    """A session-scoped zkreg, via C{pytest_plugins = ["curatorish.testing"]}."""
    del _pytest


__all__ = [
    "ReactorTestingServer",
    "TestingServer",
    "start_zkreg_service",
    "zkreg_command",
    "zkreg_environment",
    "zkreg_options",
    "expire_session",
    "four_letter_word",
    "free_port",
    "session_of",
    "testing_server_fixture",
]
