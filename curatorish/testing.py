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
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zkreg.proto.consts import OpCode
from zkreg.proto.records import ConnectRequest, ConnectResponse, RequestHeader

#: How long a server may take to answer C{ruok}.
START_TIMEOUT_S = 60.0

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


def _read_frame(conn: socket.socket, deadline: float) -> bytes | None:
    def read_exactly(count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            conn.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = conn.recv(count - len(data))
            except (TimeoutError, ConnectionResetError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    prefix = read_exactly(4)
    if prefix is None:
        return None
    return read_exactly(struct.unpack(">i", prefix)[0])


def _write_frame(conn: socket.socket, frame: bytes) -> None:
    conn.sendall(struct.pack(">i", len(frame)) + frame)


def expire_session(
    connect_string: str,
    session_id: int,
    password: bytes,
    timeout_s: float = 10.0,
    attempts: int = 10,
) -> bool:
    """
    Expire a session now, as Curator's C{KillSession} does: join it from a second
    connection (its id and password) and close it.  The server then drops the
    session's ephemerals and connections; its client sees C{EXPIRED} on reconnecting.

    Joining takes the session away from its client, which may reconnect and take it
    back before our close arrives; so we join again to check that the server now
    calls the session expired, and close again if not (up to C{attempts} times).

    @param connect_string: C{"host:port"} of the server (the first host is used).
    @return: C{True} if the session is now gone because we closed it, C{False} if it
        was already gone (or could not be closed).
    """
    first = connect_string.split("/", 1)[0].split(",")[0]
    host, _, port_text = first.rpartition(":")
    address = (host.strip("[]"), int(port_text))
    deadline = time.monotonic() + timeout_s
    closed_once = False
    for _ in range(attempts):
        if time.monotonic() >= deadline:
            break
        with socket.create_connection(address, timeout=timeout_s) as conn:
            request = ConnectRequest(0, 0, 30_000, session_id, password, False)
            _write_frame(conn, request.serialize())
            frame = _read_frame(conn, deadline)
            if frame is None:
                continue
            response, _ = ConnectResponse.deserialize(frame, 0)
            if response.timeOut <= 0:
                return closed_once
            _write_frame(conn, RequestHeader(1, OpCode.closeSession).serialize())
            _read_frame(conn, deadline)
            closed_once = True
    return False


def session_of(client: Any) -> tuple[int, bytes]:
    """
    @return: C{(session id, password)} of a curatorish client (blocking or async), a
        L{curatorish.connection.ZooKeeperConnection}, or a kazoo client.
    """
    connection = getattr(client, "zookeeper", client)
    if hasattr(connection, "session_password"):
        return connection.session_id, connection.session_password
    if hasattr(client, "client_id") and client.client_id:
        session_id, password = client.client_id
        return session_id, password
    raise TypeError(f"cannot find the session of {client!r}")


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


class ReactorTestingServer:
    """
    zkreg as a service on the caller's (running) reactor, for Twisted tests: every
    method is called on the reactor thread and never blocks it.

        server = ReactorTestingServer()
        server.start()
        client = CuratorFramework(server.connect_string)
        ...
        await server.expire_session(client.zookeeper.session_id, ...)
        await server.close()

    @ivar port: the client port (kept across restarts).
    @ivar data_dir: the data directory (kept across restarts).
    """

    name = "zkreg"

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | None = None,
        *,
        reactor: Any = None,
        tick_time_ms: int = 2000,
        extra_args: Sequence[str] = (),
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.port = port or free_port()
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="zkreg-testing-"))
        self.tick_time_ms = tick_time_ms
        self.extra_args = list(extra_args)
        self._service: Any = None

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    hosts = connect_string

    @property
    def is_running(self) -> bool:
        return self._service is not None

    def start(self) -> None:
        """
        Start the service now (it listens before this returns).
        """
        if self._service is None:
            options = zkreg_options(
                "127.0.0.1", self.port, self.data_dir, self.tick_time_ms, self.extra_args
            )
            self._service = start_zkreg_service(options)

    def stop(self) -> Any:
        """
        @return: a Deferred firing once the service has stopped (data is kept).
        """
        from twisted.internet import defer

        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        return defer.maybeDeferred(service.stopService)

    async def restart(self) -> None:
        await self.stop()
        self.start()

    def drop_connections(self) -> int:
        """
        Abort every client connection (sessions survive).

        @return: how many were dropped.
        """
        dropped = 0
        for child in list(self._service or ()):
            factory = getattr(child, "factory", None)
            for connection in list(getattr(factory, "connections", ())):
                connection.transport.abortConnection()
                dropped += 1
        return dropped

    async def expire_session(
        self, session_id: int, password: bytes, timeout_s: float = 10.0, attempts: int = 10
    ) -> bool:
        """
        Expire a session as L{expire_session} does, with a curatorish connection on
        this reactor instead of a blocking socket.

        @return: C{True} if the session is now gone because we closed it.
        """
        from curatorish.connection import ZooKeeperConnection

        closed_once = False
        for _ in range(attempts):
            joiner = ZooKeeperConnection(
                self.connect_string,
                self.reactor,
                session_timeout_ms=30_000,
                renew_expired_session=False,
                reconnect_jitter_ms=0,
                session_id=session_id,
                session_password=password,
            )
            joiner.start()
            joined = await joiner.wait_connected(timeout_s)
            if not joined:
                await joiner.close()
                return closed_once
            await joiner.close()
            closed_once = True
        return False

    async def close(self) -> None:
        """
        Stop and remove the data directory (if this server made it).
        """
        await self.stop()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


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
