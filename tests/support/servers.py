"""
Real servers for integration tests: Apache ZooKeeper 3.8 (the oracle) and zkreg.

Both run as subprocesses on a free loopback port with their own temporary data
directory, and share one small interface (L{ServerProcess}) so that a test can be
written once and run against either.  Readiness is the four-letter word C{ruok}
answered with C{imok}, polled against a deadline; a server that dies or never gets
ready raises L{ServerStartError} carrying the tail of its log.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from curatorish.zkreg_launch import (
    ZKREG_ROOT,
    four_letter_word,
    zkreg_command,
    zkreg_environment,
    zkreg_options,
)
from tests.support.ports import free_port
from tests.support.waiting import WaitTimeout, wait_until

#: The repository root: zkreg's cwd and PYTHONPATH, so its twistd plugin is found.
REPO_ROOT = ZKREG_ROOT

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
ZOOKEEPER_CONF_DIR = Path("/etc/zookeeper/conf")
#: The servlet API the AdminServer's Jetty needs (see L{ZooKeeperOracle.admin_port}).
SERVLET_API_JAR = Path("/usr/share/java/servlet-api.jar")
#: An SLF4J binding so ZooKeeper's log reaches the log file (Debian ships none on
#: zookeeper.jar's manifest classpath, so ZooKeeper would log nothing).
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")

#: How long a server may take to answer C{ruok} after it is spawned.
START_DEADLINE_S = 60.0


def _parent_death_signal() -> object:
    """
    @return: a C{preexec_fn} making the child get SIGKILL when the test process
        dies (Linux prctl PR_SET_PDEATHSIG), so a killed pytest leaves no server
        behind; resolved before any fork, as a forked child must not load libraries.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def die_with_parent() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return die_with_parent


_DIE_WITH_PARENT = _parent_death_signal() if sys.platform.startswith("linux") else None


class ServerStartError(RuntimeError):
    """A server process exited early or never answered C{ruok} in time."""


def four_letter(port: int, word: str, timeout: float = 5.0, host: str = "127.0.0.1") -> str:
    """
    Send a four-letter word and read the answer until the server closes (or the
    timeout passes: then what was read).

    @param port: the client port.
    @param word: e.g. C{"ruok"}, C{"srvr"}, C{"mntr"}.
    @param timeout: bound on connecting and on each read.
    @return: the answer decoded as UTF-8 (empty when the server closes at once).
    """
    return four_letter_word(host, port, word, timeout)


def oracle_unavailable_reason() -> str | None:
    """
    @return: why Apache ZooKeeper cannot be started here, or None when it can.
    """
    if shutil.which("java") is None:
        return "java is not installed"
    if not ZOOKEEPER_JAR.exists():
        return f"{ZOOKEEPER_JAR} is absent (Debian package zookeeper not installed)"
    return None


class ServerProcess:
    """
    One server subprocess on a free loopback port.

    @ivar name: C{"zookeeper"} or C{"zkreg"}, used in reports and test ids.
    @ivar port: the client port; kept across L{restart}.
    @ivar workdir: the temporary directory holding config, data and the log.
    @ivar data_dir: where the server keeps its durable state; kept across L{restart}.
    @ivar log_path: the file receiving the process's stdout and stderr.
    """

    name = "server"

    def __init__(self, port: int | None = None, workdir: str | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.name}-test-"))
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None

    # -- what subclasses provide -------------------------------------------------

    def command(self) -> list[str]:
        """@return: the argv starting the server."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """@return: the environment of the server process."""
        return dict(os.environ)

    def cwd(self) -> str:
        """@return: the working directory of the server process."""
        return str(self.workdir)

    # -- the shared interface ----------------------------------------------------

    @property
    def hosts(self) -> str:
        """The connection string for clients: C{"127.0.0.1:<port>"}."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id while running, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def is_running(self) -> bool:
        """@return: whether the process is alive."""
        return self.pid is not None

    def start(self, deadline_s: float = START_DEADLINE_S) -> None:
        """
        Spawn the server and wait until it answers C{ruok} with C{imok} and C{srvr}
        without "not currently serving".

        @raise ServerStartError: when it exits or is not ready before the deadline;
            the process is killed and the log tail is in the message.
        @raise pytest.skip.Exception: when this kind of server cannot run here
            (no java or zookeeper.jar; no zkreg/tap.py).
        """
        if self.is_running():
            return
        reason = unavailable_reason(self.name)
        if reason is not None:
            import pytest

            pytest.skip(f"{self.name} unavailable: {reason}")
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log_file.write(f"=== start {' '.join(self.command())}\n".encode())
        self._log_file.flush()
        self._process = subprocess.Popen(
            self.command(),
            cwd=self.cwd(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_DIE_WITH_PARENT,  # type: ignore[arg-type]
        )
        try:
            wait_until(
                self._answers_ruok,
                timeout=deadline_s,
                interval=0.1,
                message=f"{self.name} on port {self.port} answering ruok",
            )
        except (WaitTimeout, ServerStartError) as failure:
            self.kill()
            raise ServerStartError(
                f"{self.name} did not start ({failure}); log tail:\n{self.log_tail()}"
            ) from None

    def _answers_ruok(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            code = None if self._process is None else self._process.returncode
            raise ServerStartError(f"{self.name} exited with status {code}")
        try:
            if four_letter(self.port, "ruok", timeout=1.0) != "imok":
                return False
            # ZooKeeper answers ruok before its request pipeline runs; srvr tells.
            return "not currently serving" not in four_letter(self.port, "srvr", timeout=1.0)
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after C{timeout})."""
        self._signal_and_reap(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): no shutdown, no final flush."""
        self._signal_and_reap(signal.SIGKILL, 10.0)

    def restart(self, hard: bool = False, deadline_s: float = START_DEADLINE_S) -> None:
        """
        Stop (or with C{hard}, kill -9) and start again on the same port and data dir.
        """
        if hard:
            self.kill()
        else:
            self.stop()
        self.start(deadline_s)

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        """@return: this server's answer to a four-letter word."""
        return four_letter(self.port, word, timeout)

    def log_tail(self, max_chars: int = 6000) -> str:
        """@return: the end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return text[-max_chars:]

    def cleanup(self) -> None:
        """Kill the server and remove its temporary directory (if we made it)."""
        self.kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _signal_and_reap(self, signum: int, timeout: float) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10.0)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.hosts} pid={self.pid}>"


class ZooKeeperOracle(ServerProcess):
    """
    Apache ZooKeeper 3.8 standalone (Debian package), configured like the zkreg under
    test: tickTime 2000, every four-letter word, extended types (TTL nodes) and a
    500 ms container check, no admin server.

    @ivar super_digest: C{"super:<base64 sha1>"} enabling the super user, or None.
    @ivar admin_port: the port of its AdminServer (Jetty, on 127.0.0.1), or None (off).
    """

    name = "zookeeper"

    def __init__(
        self,
        port: int | None = None,
        workdir: str | None = None,
        super_digest: str | None = None,
        tick_time_ms: int = 2000,
        extra_config: dict[str, str] | None = None,
        extra_jvm_args: Sequence[str] = (),
        admin_port: int | None = None,
    ) -> None:
        super().__init__(port, workdir)
        self.admin_port = admin_port
        self.super_digest = super_digest
        self.tick_time_ms = tick_time_ms
        self.extra_config = dict(extra_config or {})
        self.extra_jvm_args = list(extra_jvm_args)
        self.config_path = self.workdir / "zoo.cfg"

    def classpath(self) -> str:
        """
        The classpath zkEnv.sh uses; zookeeper.jar's manifest names its dependencies.
        """
        entries = [str(ZOOKEEPER_CONF_DIR), str(ZOOKEEPER_JAR)]
        if SLF4J_SIMPLE_JAR.exists():
            entries.append(str(SLF4J_SIMPLE_JAR))
        if self.admin_port is not None:
            # The AdminServer's Jetty needs the servlet API, which zookeeper.jar's
            # manifest classpath does not name (Debian package libservlet-api-java).
            entries.append(str(SERVLET_API_JAR))
        return ":".join(entries)

    def write_config(self) -> None:
        """Write zoo.cfg for this instance."""
        settings = {
            "tickTime": str(self.tick_time_ms),
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
        }
        if self.admin_port is not None:
            settings["admin.enableServer"] = "true"
            settings["admin.serverAddress"] = "127.0.0.1"
            settings["admin.serverPort"] = str(self.admin_port)
        settings.update(self.extra_config)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    def command(self) -> list[str]:
        self.write_config()
        jvm = [
            "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dznode.container.checkIntervalMs=500",
            "-Dzookeeper.4lw.commands.whitelist=*",
            f"-Dzookeeper.admin.enableServer={'false' if self.admin_port is None else 'true'}",
            f"-Dzookeeper.log.dir={self.workdir}",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
        ]
        if self.super_digest:
            jvm.append(f"-Dzookeeper.DigestAuthenticationProvider.superDigest={self.super_digest}")
        jvm.extend(self.extra_jvm_args)
        return [
            *jvm,
            "-cp",
            self.classpath(),
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(self.config_path),
        ]


#: Netty jars ZooKeeper's Netty connection factory needs beyond zookeeper.jar's
#: manifest (Debian package libnetty-java).
NETTY_EXTRA_JARS = (
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
)


class NettyZooKeeperOracle(ZooKeeperOracle):
    """ZooKeeper 3.8 with Netty on its classpath (for TLS: its C{secureClientPort})."""

    def classpath(self) -> str:
        extra = [jar for jar in NETTY_EXTRA_JARS if Path(jar).exists()]
        return ":".join([super().classpath(), *extra])


class ZkregServer(ServerProcess):
    """
    zkreg started as C{twistd -n --pidfile= zkreg ...} (twistd run by this Python)
    from the repository root.

    @ivar extra_args: further C{zkreg} options passed through (e.g. a super digest).
    """

    name = "zkreg"

    def __init__(
        self,
        port: int | None = None,
        workdir: str | None = None,
        super_digest: str | None = None,
        tick_time_ms: int = 2000,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(port, workdir)
        self.super_digest = super_digest
        self.tick_time_ms = tick_time_ms
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        # A session server keeps no durable state (zkreg refuses --data-dir there) and
        # reaps no containers (the data tier does).
        data_dir = None if self.is_session_role() else self.data_dir
        digest = ["--super-digest", self.super_digest] if self.super_digest else []
        options = zkreg_options("127.0.0.1", self.port, data_dir, self.tick_time_ms, digest)
        return zkreg_command([*options, *self.extra_args])

    def is_session_role(self) -> bool:
        """@return: whether this server runs with C{--role session}."""
        args = self.extra_args
        return any(
            (arg == "--role" and args[i + 1 : i + 2] == ["session"]) or arg == "--role=session"
            for i, arg in enumerate(args)
        )

    def environment(self) -> dict[str, str]:
        env = zkreg_environment()
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def cwd(self) -> str:
        return str(REPO_ROOT)


#: The server kinds by the name used in test ids.
SERVER_KINDS: dict[str, type[ServerProcess]] = {
    "zookeeper": ZooKeeperOracle,
    "zkreg": ZkregServer,
}


def unavailable_reason(kind: str) -> str | None:
    """@return: why servers of C{kind} cannot run here, or None."""
    if kind == "zookeeper":
        return oracle_unavailable_reason()
    return None  # zkreg is this repository: always runnable
