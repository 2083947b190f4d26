"""
Java programs for interop tests: Apache Curator 5.4 and the ZooKeeper 3.8 client.

A test names a program by its class, C{tests/java/<Name>.java}; L{JavaProgram}
compiles it with C{javac} once per test session (into a temporary directory keyed by
the source's hash) and runs it on the classpath of Debian's Curator and ZooKeeper jars
(L{classpath}).  A long-lived program is driven line by line over stdin/stdout with
L{JavaProcess}; a one-shot program is L{JavaProgram.run}.

The programs' convention: they print one line per result to stdout (flushed), read
commands one per line from stdin, and log (SLF4J, warnings only) to stderr, which
goes to a file whose tail is in every failure message.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.support.servers import _DIE_WITH_PARENT, REPO_ROOT

JAVA_LIB_DIR = Path("/usr/share/java")

#: Debian's jars the programs compile and run against.  Their manifests' Class-Path
#: entries bring in what they need at run time (guava, slf4j-api, jackson, netty via
#: zookeeper.jar), checked by running a Curator program against zkreg.
CURATOR_JARS = (
    "curator-client",
    "curator-framework",
    "curator-recipes",
    "curator-x-discovery",
    "zookeeper",
    "zookeeper-jute",
)

#: An SLF4J binding, so the client's warnings reach stderr (none is on the manifests).
SLF4J_BINDING_JAR = "slf4j-simple"

#: Where the programs' sources live.
PROGRAMS_DIR = REPO_ROOT / "tests" / "java"

#: Bound on compiling one program (javac is slow on a loaded two-core machine).
COMPILE_TIMEOUT_S = 180.0

#: Default bound on waiting for one line from a program.
LINE_TIMEOUT_S = 30.0


class JavaProgramError(AssertionError):
    """A program did not compile, exited, or did not answer as expected in time."""


def java_unavailable_reason() -> str | None:
    """
    @return: why the Java interop tests cannot run here (no javac/java, or a Curator
        or ZooKeeper jar absent), or None when they can.
    """
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package openjdk-17-jdk-headless)"
    for name in CURATOR_JARS:
        jar = JAVA_LIB_DIR / f"{name}.jar"
        if not jar.exists():
            return f"{jar} is absent (Debian packages libcurator-*-java, libzookeeper-java)"
    return None


def require_java() -> None:
    """Skip the calling test, with the reason, when Java interop cannot run here."""
    reason = java_unavailable_reason()
    if reason is not None:
        pytest.skip(f"Java interop unavailable: {reason}")


def classpath(*extra: str | Path) -> str:
    """
    @param extra: further entries (a compiled program's directory), first.
    @return: the classpath: C{extra}, the Curator and ZooKeeper jars, the SLF4J binding.
    """
    entries = [str(entry) for entry in extra]
    entries += [str(JAVA_LIB_DIR / f"{name}.jar") for name in CURATOR_JARS]
    binding = JAVA_LIB_DIR / f"{SLF4J_BINDING_JAR}.jar"
    if binding.exists():
        entries.append(str(binding))
    return os.pathsep.join(entries)


_compile_lock = threading.Lock()
_compiled: dict[str, Path] = {}
_build_root: Path | None = None


def _build_dir() -> Path:
    """@return: this test session's directory of compiled programs (removed at exit)."""
    global _build_root
    if _build_root is None:
        _build_root = Path(tempfile.mkdtemp(prefix="curatorish-java-"))
        atexit.register(shutil.rmtree, _build_root, True)
    return _build_root


class JavaProgram:
    """
    One program, C{tests/java/<name>.java} (class C{name} in the default package).

    @ivar name: the class name.
    @ivar source: the source file.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = PROGRAMS_DIR / f"{name}.java"
        if not self.source.exists():
            raise FileNotFoundError(self.source)

    def compile(self) -> Path:
        """
        Compile the program unless this session already compiled the same source.

        @return: the directory holding its classes.
        @raise JavaProgramError: when javac fails (its output in the message).
        """
        code = self.source.read_bytes()
        key = f"{self.name}-{hashlib.sha256(code).hexdigest()[:16]}"
        with _compile_lock:
            built = _compiled.get(key)
            if built is not None:
                return built
            out_dir = _build_dir() / key
            out_dir.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                ["javac", "-nowarn", "-cp", classpath(), "-d", str(out_dir), str(self.source)],
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
            )
            if result.returncode != 0:
                raise JavaProgramError(
                    f"javac {self.source.name} failed:\n{result.stdout}{result.stderr}"
                )
            _compiled[key] = out_dir
            return out_dir

    def command(self, *args: str) -> list[str]:
        """@return: the argv running the (compiled) program with C{args}."""
        return [
            "java",
            "-Xss512k",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            classpath(self.compile()),
            self.name,
            *[str(arg) for arg in args],
        ]

    def start(self, *args: str) -> JavaProcess:
        """
        @return: the program running with C{args}, driven over stdin/stdout.
        """
        return JavaProcess(self.name, self.command(*args))

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """
        Run the program to its end.

        @return: the finished process (text stdout and stderr; any exit status).
        @raise subprocess.TimeoutExpired: when it runs longer than C{timeout} (it is
            killed).
        """
        return subprocess.run(
            self.command(*args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_DIE_WITH_PARENT,  # type: ignore[arg-type]
        )


_EOF = None


class JavaProcess:
    """
    A running program: write lines to its stdin, read lines from its stdout with a
    deadline (a thread queues them as they come), stderr into a log file.

    @ivar name: the program's name, for messages.
    @ivar lines: every stdout line read so far, for failure messages.
    """

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop
            prefix=f"{name}-", suffix=".log", delete=False
        )
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=_DIE_WITH_PARENT,  # type: ignore[arg-type]
        )
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self._process.stdout is not None
        reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), name=f"{name}-stdout", daemon=True
        )
        reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(_EOF)

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    def poll(self) -> int | None:
        """@return: the exit status once the program has exited, else None."""
        return self._process.poll()

    def read_line(self, timeout: float = LINE_TIMEOUT_S) -> str | None:
        """
        @return: the next stdout line (without its newline), or None at the end of
            its output.
        @raise JavaProgramError: when no line comes within C{timeout} seconds.
        """
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise JavaProgramError(
                f"{self.name}: no output line within {timeout:.1f}s{self._context()}"
            ) from None
        if line is _EOF:
            self._queue.put(_EOF)  # later reads see the end too
            return None
        self.lines.append(line)
        return line

    def expect(self, prefix: str, timeout: float = LINE_TIMEOUT_S) -> str:
        """
        Read lines until one starts with C{prefix}; lines before it are skipped.

        @return: that line.
        @raise JavaProgramError: on a line starting with C{"ERROR"}, at the end of the
            output, or when no such line comes within C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JavaProgramError(
                    f"{self.name}: no line starting {prefix!r} within {timeout:.1f}s"
                    f"{self._context()}"
                )
            line = self.read_line(remaining)
            if line is None:
                raise JavaProgramError(
                    f"{self.name} ended (status {self._process.wait(10)}) before a line "
                    f"starting {prefix!r}{self._context()}"
                )
            if line.startswith(prefix):
                return line
            if line.startswith("ERROR"):
                raise JavaProgramError(f"{self.name}: {line}{self._context()}")

    def send(self, line: str) -> None:
        """Write one line to the program's stdin."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise JavaProgramError(f"{self.name} has exited{self._context()}") from None

    def request(self, line: str, prefix: str, timeout: float = LINE_TIMEOUT_S) -> str:
        """@return: the answer line starting with C{prefix} to the command C{line}."""
        self.send(line)
        return self.expect(prefix, timeout)

    def wait(self, timeout: float = LINE_TIMEOUT_S) -> int:
        """@return: the exit status, waiting up to C{timeout} seconds for it."""
        return self._process.wait(timeout)

    def stop(self) -> None:
        """Kill the program by its pid (SIGKILL) and reap it; idempotent."""
        if self._process.poll() is None:
            try:
                os.kill(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._process.wait(30)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if not self._log.closed:
            self._log.close()

    def stderr_tail(self, max_chars: int = 4000) -> str:
        """@return: the end of the program's stderr."""
        self._log.flush()
        try:
            return Path(self._log.name).read_text("utf-8", "replace")[-max_chars:]
        except OSError:
            return "(no stderr)"

    def remove_log(self) -> None:
        """Delete the stderr log file (after L{stop})."""
        try:
            os.unlink(self._log.name)
        except OSError:
            pass

    def _context(self) -> str:
        return f"\nlast stdout lines: {self.lines[-10:]}\nstderr tail:\n{self.stderr_tail()}"

    def __enter__(self) -> JavaProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def java_program() -> Iterator[Callable[[str], JavaProgram]]:
    """
    Factory of L{JavaProgram}s for one test: skips the test when Java interop cannot
    run here; every process started through it is killed at teardown.
    """
    require_java()
    started: list[JavaProcess] = []

    class _TrackedProgram(JavaProgram):
        def start(self, *args: str) -> JavaProcess:
            process = super().start(*args)
            started.append(process)
            return process

    yield _TrackedProgram
    for process in started:
        process.stop()
        process.remove_log()


__all__ = [
    "CURATOR_JARS",
    "JavaProcess",
    "JavaProgram",
    "JavaProgramError",
    "classpath",
    "java_program",
    "java_unavailable_reason",
    "require_java",
]
