"""
The documentation runs: README.md and every C{docs/**/*.md} file, as a reader would
use them, so that no example can rot.

  - Python blocks (C{```python}) of one file run in order in one fresh Python process
    (PYTHONPATH at the repository root), against a real zkreg, with a deadline; the
    literal C{127.0.0.1:2181} is replaced by that server's port.  A block that is a
    whole Twisted program (it calls C{task.react}, which ends its process) runs in a
    process of its own, at its place in the order.
  - README.md is followed exactly: its first C{twistd} command (the set-up) starts the
    server its Python blocks then use, in a scratch working directory; each other
    C{twistd} command of its shell blocks (C{```sh}/C{```console}) is started there
    too (in a scratch directory of its block) and must answer C{srvr} (C{ruok} too
    when its whitelist allows) or, for a data server, accept session servers; its
    C{zkreg} commands run on the set-up server's data directory.  Every port in those
    commands is replaced by a free one, every listener stays on 127.0.0.1.  Commands
    that install or take minutes (C{pip}, C{tox}, C{apt-get}, ...) are not run; any
    other command fails the test until it is classified here.
  - No link leaves the repository, and every relative link resolves.

Blocks that must not run are fenced C{```text}.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.servers import REPO_ROOT, ZkregServer, four_letter
from tests.support.waiting import wait_until

README = REPO_ROOT / "README.md"
DOC_FILES = [README, *sorted((REPO_ROOT / "docs").glob("**/*.md"))]

#: Seconds one file's Python blocks may take in all.
PYTHON_DEADLINE_S = 120.0
#: Seconds a documented server may take to answer.
SERVER_DEADLINE_S = 60.0

_FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_DOCUMENTED_ADDRESS = re.compile(r"\b(127\.0\.0\.1|localhost):2181\b")
#: Shell commands never run by this test: installers and whole test runs.
_NOT_RUN = ("pip", "tox", "apt-get", "./.ci/run", ".ci/run", "git", "cd", "echo")
_NOT_RUN_PATHS = ("/usr/share/zookeeper/bin/", "/usr/lib/zookeeper/bin/")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first line number and text."""

    language: str
    line: int
    text: str


def blocks_of(path: Path) -> list[Block]:
    """@return: the fenced blocks of a Markdown file, in order."""
    text = path.read_text("utf-8")
    return [
        Block(match.group(1), text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in _FENCE.finditer(text)
    ]


def _doc_id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


#: Runs the blocks given as JSON ([{"name", "source", "alone"}]) in order in one
#: namespace; a block marked alone runs in a child process of its own.
_RUNNER = r"""
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
    print(f"--- running {block['name']}", file=sys.stderr, flush=True)
    if block["alone"]:
        result = subprocess.run([sys.executable, "-c", block["source"]])
        if result.returncode != 0:
            print(f"FAILED {block['name']}: exit status {result.returncode}", file=sys.stderr)
            sys.exit(1)
        continue
    try:
        exec(compile(block["source"], block["name"], "exec"), namespace)
    except SystemExit as stop:
        if stop.code not in (0, None):
            print(f"FAILED {block['name']}: SystemExit({stop.code!r})", file=sys.stderr)
            sys.exit(1)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED {block['name']}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


def run_python_blocks(doc: Path, port: int, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run C{doc}'s Python blocks against the zkreg on C{port}; @return: the result."""
    blocks = [
        {
            "name": f"{_doc_id(doc)}:{block.line}",
            "source": _DOCUMENTED_ADDRESS.sub(rf"\1:{port}", block.text),
            "alone": "task.react(" in block.text,
        }
        for block in blocks_of(doc)
        if block.language == "python"
    ]
    script = workdir / "blocks.json"
    script.write_text(json.dumps(blocks))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        return subprocess.run(
            [sys.executable, "-c", _RUNNER, str(script)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=PYTHON_DEADLINE_S,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"{_doc_id(doc)}: Python blocks still running after {PYTHON_DEADLINE_S} s\n"
            f"{expired.stderr!r}"
        )


def _check_python(doc: Path, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{_doc_id(doc)}: a Python block failed\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )


# -- docs/**/*.md: Python blocks against a zkreg the test starts ------------------------


@pytest.mark.parametrize(
    "doc", [path for path in DOC_FILES if path != README], ids=_doc_id
)  # fmt: skip
def test_doc_python_blocks_run(doc: Path, tmp_path: Path) -> None:
    if not any(block.language == "python" for block in blocks_of(doc)):
        pytest.skip(f"{_doc_id(doc)} has no Python block")
    server = ZkregServer()
    try:
        server.start()
        _check_python(doc, run_python_blocks(doc, server.port, tmp_path))
    finally:
        server.cleanup()


# -- README.md: followed as written ---------------------------------------------------


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: continuations joined, prompts and comments cut."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


class PortMap:
    """Replaces every documented port by a free one, the same port for the same number."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}

    def port(self, documented: str) -> int:
        if documented not in self.ports:
            self.ports[documented] = free_port()
        return self.ports[documented]

    def substitute(self, argument: str) -> str:
        return re.sub(
            r"\btcp:((?:127\.0\.0\.1:)?)(\d{2,5})\b",
            lambda match: f"tcp:{match.group(1)}{self.port(match.group(2))}",
            argument,
        )


_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


class DocumentedServer:
    """A C{twistd zkreg} command of the README, running in C{cwd}."""

    def __init__(self, argv: list[str], cwd: Path, ports: PortMap) -> None:
        self.cwd = cwd
        self.args = [ports.substitute(argument) for argument in argv[1:]]
        config = _option(self.args, "--config")
        if config is not None:
            self._copy_config(config, ports)
        listen = _option(self.args, "--listen") or _option(self.args, "-l")
        role = _option(self.args, "--role") or "standalone"
        self.client_port: int | None = None
        self.link_port: int | None = None
        if role != "data":
            if listen is None and config is None:
                # Its default tcp:2181, on a port of its own and on loopback only.
                listen = f"tcp:{ports.port('2181')}:interface=127.0.0.1"
                self.args += ["--listen", listen]
            if listen is not None:
                assert "interface=127.0.0.1" in listen, f"documented listener {listen}"
                self.client_port = int(listen.split(":")[1])
            else:
                self.client_port = ports.port("2181")
        link = _option(self.args, "--data-link-listen")
        if link is not None:
            assert "interface=127.0.0.1" in link, f"documented listener {link}"
            self.link_port = int(link.split(":")[1])
        self.whitelist = _option(self.args, "--4lw-whitelist") or "srvr"
        self.log_path = cwd / f"twistd-{len(list(cwd.glob('twistd-*.log')))}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _copy_config(self, config: str, ports: PortMap) -> None:
        text = (REPO_ROOT / config).read_text()
        listen = f"tcp:{ports.port('2181')}:interface=127.0.0.1"
        target = self.cwd / config
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(re.sub(r"(?m)^listen = .*$", f"listen = {listen}", text))

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _TWISTD, *self.args],
                cwd=self.cwd,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.ready, timeout=SERVER_DEADLINE_S, interval=0.1, message=f"{self} answering")

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"{self} exited with {self.process.returncode}:\n{self.log()}")
        try:
            if self.link_port is not None:
                socket.create_connection(("127.0.0.1", self.link_port), timeout=1).close()
            if self.client_port is None:
                return True
            if "Zookeeper version" not in four_letter(self.client_port, "srvr", timeout=1):
                return False
        except OSError:
            return False
        if self.whitelist == "*" or "ruok" in self.whitelist.split(","):
            assert four_letter(self.client_port, "ruok") == "imok"
        return True

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-4000:]

    def __str__(self) -> str:
        return f"twistd {' '.join(self.args)}"


def _option(args: list[str], name: str) -> str | None:
    for index, argument in enumerate(args):
        if argument == name and index + 1 < len(args):
            return args[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return None


def _run_zkreg_tool(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zkreg.cli", *argv[1:]],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    no_snapshot_yet = argv[1:3] == ["snapshot", "dump"] and "no valid snapshot" in result.stdout
    assert result.returncode == 0 or no_snapshot_yet, (
        f"{' '.join(argv)} exited {result.returncode}\n{result.stdout[-3000:]}{result.stderr}"
    )


def test_readme_runs_as_written(tmp_path: Path) -> None:
    """
    The README's set-up server starts and answers; its Python blocks run against it;
    its other servers start and answer; its C{zkreg} commands run on its data.
    """
    blocks = blocks_of(README)
    shell = [block for block in blocks if block.language in ("sh", "console", "shell")]
    commands = [
        (block, shlex.split(line, comments=True))
        for block in shell
        for line in shell_commands(block.text)
    ]
    twistd_commands = [(block, argv) for block, argv in commands if argv[0] == "twistd"]
    assert twistd_commands, "README.md documents no twistd command"
    unknown = [
        " ".join(argv)
        for _, argv in commands
        if argv[0] not in ("twistd", "zkreg")
        and argv[0] not in _NOT_RUN
        and not argv[0].startswith(_NOT_RUN_PATHS)
    ]
    assert not unknown, f"README.md shell commands this test does not classify: {unknown}"

    home = tmp_path / "readme"
    home.mkdir()
    ports = PortMap()
    setup_block, setup_argv = twistd_commands[0]
    setup = DocumentedServer(setup_argv, home, ports)
    started: list[DocumentedServer] = [setup]
    try:
        setup.start()
        assert setup.client_port is not None
        _check_python(README, run_python_blocks(README, setup.client_port, home))

        for block in shell:
            scratch = tmp_path / f"block-{block.line}"
            scratch.mkdir()
            block_ports = PortMap()
            block_servers = []
            for line in shell_commands(block.text):
                argv = shlex.split(line, comments=True)
                if argv[0] == "twistd" and argv != setup_argv:
                    server = DocumentedServer(argv, scratch, block_ports)
                    started.append(server)
                    block_servers.append(server)
                    server.start()
                elif argv[0] == "zkreg":
                    _run_zkreg_tool(argv, home)
            for server in reversed(block_servers):
                server.stop()
    finally:
        for server in reversed(started):
            server.stop()
    assert setup.process is not None and setup.process.returncode in (0, -signal.SIGTERM)


# -- links ------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOC_FILES, ids=_doc_id)
def test_links_stay_in_the_repository(doc: Path) -> None:
    text = doc.read_text("utf-8")
    assert "../shared" not in text
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (doc.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(REPO_ROOT), f"{_doc_id(doc)}: {target} leaves the repo"
        assert resolved.exists(), f"{_doc_id(doc)}: {target} does not exist"


def test_architecture_is_in_the_repository() -> None:
    assert (REPO_ROOT / "docs" / "architecture.md").exists()
    assert "docs/architecture.md" in README.read_text("utf-8")
