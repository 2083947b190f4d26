"""
Other real ZooKeeper clients against zkreg: the Java shell C{zkCli.sh} and the C
client's C{cli_mt}.

Each drives a create/get/set/ls/delete/watch script against a server; the output is
checked for the expected values, and (for the parts that do not depend on timing) the
transcript against zkreg is compared line by line with the one against Apache
ZooKeeper.  A test is skipped with the reason when its binary is absent.  Every
subprocess is bounded by a timeout.

Syntax notes learnt from the clients' sources: C{cli_mt}'s C{create <path>} always
writes the data C{new} (a second word would become part of the path), C{get} and C{ls}
set a watch, C{exists} is synchronous in the threaded build and prints only errors,
and everything it reports goes to stderr.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
CLI_MT = Path("/usr/lib/zookeeper/bin/cli_mt")

#: Bound on one zkCli.sh run (a JVM start, a connect and a short script).
ZKCLI_TIMEOUT_S = 60.0
#: Bound on each cli_mt reply awaited.
CLI_MT_REPLY_TIMEOUT_S = 15.0

pytestmark = pytest.mark.timeout(300)


def _require(binary: Path, needs_java: bool = False) -> None:
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    if needs_java and shutil.which("java") is None:
        pytest.skip("java is not installed")


@pytest.fixture
def base_path() -> str:
    """A fresh top-level path for one script, so tests sharing a server do not meet."""
    return f"/clients_{uuid.uuid4().hex[:10]}"


# -- zkCli.sh ---------------------------------------------------------------------


def run_zkcli(server: ServerProcess, args: list[str], script: str | None = None) -> str:
    """
    Run zkCli.sh against C{server}, one command from C{args} or a script on stdin.

    @return: stdout and stderr together.
    """
    env = dict(os.environ, ZOO_LOG4J_PROP="WARN,CONSOLE", CLIENT_JVMFLAGS="-Xmx128m")
    completed = subprocess.run(
        [str(ZKCLI), "-server", server.hosts, *args],
        input=script if script is not None else "",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe keeps stdout and stderr lines in order
        text=True,
        timeout=ZKCLI_TIMEOUT_S,
        env=env,
        check=False,
    )
    return completed.stdout


_ZKCLI_NOISE = re.compile(
    r"^(\d{4}-\d\d-\d\d |SLF4J:|Connecting to |Welcome to ZooKeeper|JLine support|WATCHER::$|$)"
)


def normalize_zkcli(output: str, base: str) -> tuple[list[str], list[str]]:
    """
    Split a zkCli.sh transcript into its command output and its watch events, with
    what legitimately differs between servers and runs (times, zxids, session ids,
    the random base path) replaced by placeholders.

    @return: C{(output lines in order, sorted event lines)}; events come from another
        thread and interleave with output at random, so only their set is compared.
    """
    lines, events = [], []
    for line in output.splitlines():
        if _ZKCLI_NOISE.match(line):
            continue
        line = line.replace(base, "{base}")
        line = re.sub(r"^(ctime|mtime) = .*", r"\1 = <time>", line)
        line = re.sub(r"^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+", r"\1 = <zxid>", line)
        line = re.sub(
            r"^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*", "ephemeralOwner = <sid>", line
        )
        if line.startswith("WatchedEvent "):
            if "type:None" not in line:  # connection-state events are the client's own
                events.append(line)
        else:
            lines.append(line)
    return lines, sorted(events)


def zkcli_script(base: str) -> str:
    """The zkCli.sh script: every basic operation and two watches that fire."""
    return "\n".join(
        [
            f"create {base} root",
            f"create {base}/x hello",
            f"get {base}/x",
            f"get -w {base}/x",
            f"set {base}/x world",
            f"get -s {base}/x",
            f"ls -w {base}",
            f"create -e {base}/eph e",
            f"ls {base}",
            f"stat {base}/x",
            f"delete {base}/x",
            f"ls {base}",
            f"get {base}/x",
            f"delete {base}",
            "quit",
            "",
        ]
    )


def test_zkcli_script(any_server: ServerProcess, base_path: str) -> None:
    """zkCli.sh creates, reads, updates, lists, deletes and sees its watches fire."""
    _require(ZKCLI, needs_java=True)
    output = run_zkcli(any_server, [], zkcli_script(base_path))
    lines, events = normalize_zkcli(output, base_path)
    assert "Created {base}" in lines, output
    assert "Created {base}/x" in lines, output
    assert lines.count("hello") == 2, output  # get, then get -w
    assert "world" in lines, output
    assert "dataVersion = 1" in lines and "dataLength = 5" in lines, output
    assert "[x]" in lines, output  # ls -w before the ephemeral
    assert "[eph, x]" in lines, output
    assert "[eph]" in lines, output  # after deleting x
    assert "Node does not exist: {base}/x" in lines, output
    assert "Node not empty: {base}" in lines, output  # the ephemeral is still there
    assert "WatchedEvent state:SyncConnected type:NodeDataChanged path:{base}/x" in events
    assert "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{base}" in events


def test_zkcli_transcript_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess
) -> None:
    """The same zkCli.sh script prints the same thing against zkreg and ZooKeeper."""
    _require(ZKCLI, needs_java=True)
    transcripts = {}
    for server in (zk_oracle, zkreg_server):
        base = f"/clients_{uuid.uuid4().hex[:10]}"
        transcripts[server.name] = normalize_zkcli(run_zkcli(server, [], zkcli_script(base)), base)
    expected_lines, expected_events = transcripts["zookeeper"]
    actual_lines, actual_events = transcripts["zkreg"]
    assert actual_lines == expected_lines
    assert actual_events == expected_events


def zkcli_extended_script(base: str) -> str:
    """
    A zkCli.sh script over the 3.5+ commands: sequential and ephemeral-sequential
    creates, ls -s/-R, child counts, ephemerals, a persistent recursive watch and its
    removal, ACLs with digest auth, whoami, sync, conditional set/delete, and the shell's
    error messages for existing, missing and malformed paths.
    """
    digest = base64.b64encode(hashlib.sha1(b"alice:secret").digest()).decode()
    return "\n".join(
        [
            f"create {base} r",
            f"create -s {base}/s- a",
            f"create -s {base}/s- b",
            f"create -e -s {base}/es- c",
            f"ls -s {base}",
            f"ls -R {base}",
            f"getAllChildrenNumber {base}",
            f"getEphemerals {base}",
            f"addWatch -m PERSISTENT_RECURSIVE {base}",
            f"create {base}/deep d",
            f"set {base}/deep e",
            f"delete {base}/deep",
            f"removewatches {base} -a",
            f"create {base}/acl x",
            f"setAcl {base}/acl world:anyone:r",
            f"getAcl {base}/acl",
            f"set {base}/acl y",
            "addauth digest alice:secret",
            f"create {base}/mine m digest:alice:{digest}:cdrwa",
            f"getAcl {base}/mine",
            f"get {base}/mine",
            "whoami",
            f"sync {base}",
            f"stat -w {base}/s-0000000000",
            f"set -s {base}/s-0000000000 z",
            f"set -v 5 {base}/s-0000000000 q",
            f"delete -v 7 {base}/s-0000000000",
            f"get -s {base}/nope",
            f"create {base}/s-0000000000 dup",
            "create /bad//path",
            f"create {base}/c/d x",
            f"deleteall {base}",
            f"ls {base}",
            "quit",
            "",
        ]
    )


def test_zkcli_extended_transcript_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess
) -> None:
    """
    zkCli.sh's newer commands (sequential nodes, ls -R, persistent recursive watches,
    ACLs and digest auth, whoami, versioned writes, error messages) print the same
    against zkreg as against ZooKeeper.
    """
    _require(ZKCLI, needs_java=True)
    transcripts = {}
    for server in (zk_oracle, zkreg_server):
        base = f"/clients_{uuid.uuid4().hex[:10]}"
        transcripts[server.name] = normalize_zkcli(
            run_zkcli(server, [], zkcli_extended_script(base)), base
        )
    lines, events = transcripts["zookeeper"]
    assert "Created {base}/es-0000000002" in lines  # the script did run
    assert "Sync is OK" in lines
    assert "WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:{base}" in events
    assert transcripts["zkreg"] == transcripts["zookeeper"]


def test_zkcli_one_shot_commands(any_server: ServerProcess, base_path: str, kazoo_client) -> None:
    """zkCli.sh with a command as arguments reads what kazoo wrote, then exits."""
    _require(ZKCLI, needs_java=True)
    client = kazoo_client(any_server)
    client.create(f"{base_path}/child", b"from-kazoo", makepath=True)
    got = run_zkcli(any_server, ["get", f"{base_path}/child"])
    assert "from-kazoo" in got.splitlines(), got
    listed = run_zkcli(any_server, ["ls", base_path])
    assert "[child]" in listed.splitlines(), listed
    run_zkcli(any_server, ["set", f"{base_path}/child", "from-zkcli"])
    assert client.get(f"{base_path}/child")[0] == b"from-zkcli"


# -- cli_mt -----------------------------------------------------------------------


class CliMt:
    """
    An interactive cli_mt: send a command, wait for a pattern in its output.

    cli_mt runs commands asynchronously and reports on stderr from its completion
    thread; writing the next command only once the previous reply arrived keeps the
    transcript in a stable order.
    """

    def __init__(self, server: ServerProcess) -> None:
        self._process = subprocess.Popen(
            [str(CLI_MT), server.hosts],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._consumed = 0

    def _read(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        while True:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        """Everything cli_mt printed so far."""
        with self._lock:
            return self._output.decode("utf-8", "replace")

    def expect(self, *patterns: str, timeout: float = CLI_MT_REPLY_TIMEOUT_S) -> str:
        """
        Wait until every regex in C{patterns} appears, in any order, after what
        earlier calls consumed (a watch event and the reply of the write that fired
        it arrive together; ZooKeeper sends the event first).

        @return: the output from the previous position to the end of the last match.
        """
        regexes = [re.compile(pattern, re.MULTILINE) for pattern in patterns]
        deadline = time.monotonic() + timeout
        while True:
            text = self.output
            matches = [regex.search(text, self._consumed) for regex in regexes]
            if all(matches):
                end = max(match.end() for match in matches if match)
                chunk = text[self._consumed : end]
                self._consumed = end
                return chunk
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise AssertionError(
                    f"cli_mt: not all of {patterns!r} within {timeout}s; output:\n{text}"
                )
            time.sleep(0.02)

    def send(self, command: str, *patterns: str) -> str:
        """Write one command line and wait for all C{patterns}."""
        assert self._process.stdin is not None
        self._process.stdin.write(command.encode() + b"\n")
        self._process.stdin.flush()
        return self.expect(*patterns)

    def close(self) -> None:
        """Quit (or kill on timeout)."""
        try:
            if self._process.poll() is None and self._process.stdin is not None:
                self._process.stdin.write(b"quit\n")
                self._process.stdin.close()
            self._process.wait(10)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self._process.kill()
            self._process.wait(10)
        self._reader.join(5)


#: cli_mt lines that differ by server or run: times, zxids, versions, log lines.
_CLI_MT_UNSTABLE = re.compile(
    r"(time = |ctime|mtime|czxid|mzxid|version=|ephemeralOwner|Stat:|null$|\d{4}-\d\d-\d\d )"
)


def cli_mt_script(cli: CliMt, base: str) -> list[str]:
    """
    Drive one create/get/set/ls/delete/watch session, asserting each reply.

    @return: the transcript's stable lines (rc, names, values, children and watch
        events, with the base path as C{{base}}), for comparing servers.
    """
    b = re.escape(base)
    transcript = []

    def keep(chunk: str) -> None:
        for line in chunk.splitlines():
            line = line.strip()
            if re.match(_CLI_MT_UNSTABLE, line):
                continue
            if line:
                transcript.append(line.replace(base, "{base}"))

    keep(cli.expect(r"^Got a new session id: 0x[0-9a-f]+$"))
    transcript.pop()  # the session id differs by server
    keep(cli.send(f"create {base}", rf"^\[{b}\]: rc = 0\n\s+name = {b}$"))
    keep(cli.send(f"create {base}/x", rf"^\[{b}/x\]: rc = 0\n\s+name = {b}/x$"))
    keep(cli.send(f"get {base}/x", rf"^{b}/x: rc = 0\n value_len = 3\nnew$"))
    keep(
        cli.send(
            f"set {base}/x world",
            rf"^{b}/x: rc = 0 Stat:",
            rf"^Watcher CHANGED_EVENT state = CONNECTED_STATE for path {b}/x$",
        )
    )
    keep(cli.send(f"get {base}/x", rf"^{b}/x: rc = 0\n value_len = 5\nworld$"))
    keep(cli.send(f"ls {base}", rf"^{b}: rc = 0\n\s+x\n"))
    keep(
        cli.send(
            f"create +e {base}/eph",
            rf"^\[{b}/eph\]: rc = 0\n\s+name = {b}/eph$",
            rf"^Watcher CHILD_EVENT state = CONNECTED_STATE for path {b}$",
        )
    )
    keep(cli.send(f"delete {base}/x", rf"^{b}/x: rc = 0$"))
    keep(cli.send(f"get {base}/x", rf"^{b}/x: rc = -101$"))
    keep(cli.send(f"exists {base}/x", rf"^Error -101 for {b}/x$"))
    keep(cli.send(f"delete {base}", rf"^{b}: rc = -111$"))  # not empty: eph
    keep(cli.send(f"delete {base}/eph", rf"^{b}/eph: rc = 0$"))
    keep(cli.send(f"delete {base}", rf"^{b}: rc = 0$"))
    return transcript


def test_cli_mt_script(any_server: ServerProcess, base_path: str) -> None:
    """The C client creates, reads, updates, lists, deletes and sees watches fire."""
    _require(CLI_MT)
    cli = CliMt(any_server)
    try:
        cli_mt_script(cli, base_path)
    finally:
        cli.close()


def test_cli_mt_transcript_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess
) -> None:
    """The same cli_mt session prints the same replies against zkreg and ZooKeeper."""
    _require(CLI_MT)
    transcripts = {}
    for server in (zk_oracle, zkreg_server):
        cli = CliMt(server)
        try:
            transcripts[server.name] = cli_mt_script(cli, f"/clients_{uuid.uuid4().hex[:10]}")
        finally:
            cli.close()
    assert transcripts["zkreg"] == transcripts["zookeeper"]


def cli_mt_extended_script(cli: CliMt, base: str) -> list[str]:
    """
    Drive cli_mt's other commands: sequential, ephemeral-sequential, container and TTL
    creates, create2/ls2 with stats, sync, wexists then the create that fires it, the
    client's own option errors, and errors for missing parents and nodes.

    @return: the stable transcript lines, as L{cli_mt_script}.
    """
    b = re.escape(base)
    transcript: list[str] = []

    def keep(chunk: str) -> None:
        for line in chunk.splitlines():
            line = line.strip()
            if line and not _CLI_MT_UNSTABLE.match(line):
                transcript.append(line.replace(base, "{base}"))

    cli.expect(r"^Got a new session id: 0x[0-9a-f]+$")
    keep(cli.send(f"create {base}", rf"^\[{b}\]: rc = 0\n\s+name = {b}$"))
    keep(cli.send(f"create +s {base}/s-", rf"^\[{b}/s-\]: rc = 0\n\s+name = .*$"))
    keep(cli.send(f"create +es {base}/es-", rf"^\[{b}/es-\]: rc = 0\n\s+name = .*$"))
    keep(cli.send(f"create2 {base}/c2", r"ephemeralOwner = .*\n"))
    keep(cli.send(f"ls2 {base}", r"ephemeralOwner = .*\n"))
    keep(cli.send(f"sync {base}", rf"^\[{b}\]: rc = 0\n\s+name = .*$"))
    keep(cli.send(f"wexists {base}/zz", rf"^Error -101 for {b}/zz$"))
    keep(
        cli.send(
            f"create {base}/zz",
            rf"^\[{b}/zz\]: rc = 0\n\s+name = {b}/zz$",
            rf"^Watcher CREATED_EVENT state = CONNECTED_STATE for path {b}/zz$",
        )
    )
    keep(cli.send(f"create +c {base}/cont", rf"^\[{b}/cont\]: rc = 0\n\s+name = .*$"))
    keep(cli.send(f"create +t=5000 {base}/ttl", rf"^\[{b}/ttl\]: rc = -?\d+$"))
    keep(cli.send(f"create +x {base}/bad", r"^Unknown option: x$"))
    keep(cli.send(f"create {base}/no/such", rf"^\[{b}/no/such\]: rc = -101$"))
    keep(cli.send(f"set {base}/nope v", rf"^{b}/nope: rc = -101"))
    keep(cli.send(f"ls {base}/nope", rf"^{b}/nope: rc = -101$"))
    keep(cli.send("config", r"^/zookeeper/config: rc = -?\d+$"))
    return transcript


def test_cli_mt_extended_transcript_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess
) -> None:
    """cli_mt's other commands print the same against zkreg and ZooKeeper."""
    _require(CLI_MT)
    transcripts = {}
    for server in (zk_oracle, zkreg_server):
        cli = CliMt(server)
        try:
            base = f"/clients_{uuid.uuid4().hex[:10]}"
            transcripts[server.name] = cli_mt_extended_script(cli, base)
        finally:
            cli.close()
    assert "name = {base}/es-0000000001" in transcripts["zookeeper"]
    assert transcripts["zkreg"] == transcripts["zookeeper"]


def test_cli_mt_sees_kazoo_change(any_server: ServerProcess, base_path: str, kazoo_client) -> None:
    """A watch the C client set fires when another client (kazoo) changes the node."""
    _require(CLI_MT)
    client = kazoo_client(any_server)
    client.create(base_path, b"before")
    cli = CliMt(any_server)
    try:
        b = re.escape(base_path)
        cli.expect(r"^Got a new session id: ")
        cli.send(f"get {base_path}", rf"^{b}: rc = 0\n value_len = 6\nbefore$")
        client.set(base_path, b"after")
        cli.expect(rf"^Watcher CHANGED_EVENT state = CONNECTED_STATE for path {b}$")
        cli.send(f"get {base_path}", rf"^{b}: rc = 0\n value_len = 5\nafter$")
    finally:
        cli.close()
