"""
The differential suite: every scenario in L{tests.integration.scenarios} runs against
Apache ZooKeeper 3.8 and against zkreg, and the normalised recordings must be equal.

Environment:
  - C{ZKREG_DIFF_SELFCHECK=1}: compare ZooKeeper with a second ZooKeeper run instead
    of zkreg (checks the scenarios are deterministic after normalisation).
  - C{ZKREG_DIFF_REPORT=<path>}: write a Markdown report of every discrepancy there
    at the end of the module.
  - C{-m "not slow"} deselects the scenarios that wait for expiry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.scenarios import SCENARIOS
from tests.support.differential import Scenario, compare, run_scenario
from tests.support.servers import ServerProcess, ServerStartError, unavailable_reason

#: The super user's password in scenarios that need one; its digest is below.
SUPER_PASSWORD = "super-secret"
#: base64(sha1("super:super-secret")), as DigestAuthenticationProvider expects.
SUPER_DIGEST = (
    "super:"
    + __import__("base64")
    .b64encode(__import__("hashlib").sha1(f"super:{SUPER_PASSWORD}".encode()).digest())
    .decode()
)

SELFCHECK = os.environ.get("ZKREG_DIFF_SELFCHECK") == "1"

#: Transactions between snapshots on the servers of the restarting scenarios.
SNAP_COUNT = 50

_results: list[tuple[str, str, list[str], str]] = []


def _params() -> list[object]:
    params = []
    for name in sorted(SCENARIOS):
        marks = [pytest.mark.oracle]
        if SCENARIOS[name].slow:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """Write the discrepancy report when C{ZKREG_DIFF_REPORT} names a file."""
    started = time.monotonic()
    yield
    target = os.environ.get("ZKREG_DIFF_REPORT")
    if target and _results:
        Path(target).write_text(_render_report(time.monotonic() - started))


def _render_report(elapsed_s: float) -> str:
    failing = [r for r in _results if r[1] != "pass"]
    lines = [
        "# Differential report: Apache ZooKeeper 3.8 vs zkreg",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by "
        "tests/integration/test_differential.py (owner H4); overwritten on every run.",
        f"Scenarios run: {len(_results)}; agree: {len(_results) - len(failing)}; "
        f"differ: {len(failing)}; wall time {elapsed_s:.0f}s.",
        "",
        "Each entry: the first differing steps as `step N: label: zookeeper=... | "
        "zkreg[label]=...`. Zxids are ranks within the scenario (zxid#k), sessions "
        "ordinals (session#k), the scenario root is <root>. Scenario code: "
        "tests/integration/scenarios/.",
        "",
    ]
    if not failing:
        lines += ["No discrepancies in this run.", ""]
    lines += [
        "Compared less, on purpose (ZooKeeper's own order or encoding is unspecified or",
        "broken there; see the scenario docstrings):",
        "",
        "- ephemerals removed by a closing/expiring session: their events compared sorted",
        "  (ZooKeeper iterates a hash set);",
        "- ACLs expanded from the `auth` scheme and whoAmI ids: compared as sets;",
        "- a sync echoing a path with characters beyond the BMP: only the error code",
        "  (ZooKeeper answers CESU-8, not UTF-8);",
        "- requests pipelined behind an in-flight setACL are not compared: ZooKeeper",
        "  3.8 judges them by the old ACL until the setACL commits (its in-flight",
        "  change record does not carry the new ACL), a race inside ZooKeeper;",
        "- kazoo completion-callback order (not reply order; the wire order is checked",
        "  by pipelined_raw_reply_order); read reply zxids are compared only as",
        "  relations (background work may move them); times only for plausibility.",
        "",
    ]
    for name, status, differences, crash in failing:
        scn = SCENARIOS[name]
        lines.append(f"## {name} ({status})")
        lines.append("")
        if scn.func.__doc__:
            lines.append(" ".join(scn.func.__doc__.split()))
            lines.append("")
        lines.append("```")
        lines.extend(d[:1500] for d in differences[:12])
        if len(differences) > 12:
            lines.append(f"... {len(differences) - 12} more differing steps")
        lines.append("```")
        if crash:
            lines.append("")
            lines.append("zkreg run raised:")
            lines.append("```")
            lines.append(crash.strip().splitlines()[-1][:500])
            lines.append("```")
        lines.append("")
    return "\n".join(lines) + "\n"


_private_servers: dict[str, ServerProcess] = {}


@pytest.fixture(scope="module")
def private_servers() -> Iterator[dict[str, ServerProcess]]:
    """Servers of their own for super-digest and restarting scenarios, made on first use."""
    yield _private_servers
    for server in _private_servers.values():
        server.cleanup()
    _private_servers.clear()


def _super_server(kind: str) -> ServerProcess:
    return _private_server(f"{kind}-super", kind, super_digest=SUPER_DIGEST)


def _private_server(key: str, kind: str, **options: object) -> ServerProcess:
    """A module-scoped server of C{kind} under C{key}, started on first use (and
    started again if a scenario left it down)."""
    from tests.support.servers import SERVER_KINDS

    server = _private_servers.get(key)
    if server is None:
        reason = unavailable_reason(kind)
        if reason:
            pytest.skip(f"{kind} unavailable: {reason}")
        server = SERVER_KINDS[kind](**options)  # type: ignore[arg-type]
        _private_servers[key] = server
    if not server.is_running():
        try:
            server.start()
        except ServerStartError:
            server.cleanup()
            del _private_servers[key]
            raise
    return server


def _servers(scn: Scenario, request: pytest.FixtureRequest) -> tuple[ServerProcess, ServerProcess]:
    if scn.restarts:
        # Restarting scenarios get servers of their own, so the shared ones never go
        # down under other tests (and never replay the shared history: ZooKeeper
        # 3.8.0 cannot replay the txn a lone check request logs, see
        # multi_check_alone_opcode). The pair is reused by the next such scenario.
        request.getfixturevalue("private_servers")
        # Frequent snapshots, so restarts recover from a snapshot plus a log tail.
        zk_options = {"extra_config": {"snapCount": str(SNAP_COUNT)}}
        oracle = _private_server("zookeeper-restart", "zookeeper", **zk_options)
        if SELFCHECK:
            return oracle, _private_server("zookeeper-restart-2", "zookeeper", **zk_options)
        return oracle, _private_server(
            "zkreg-restart", "zkreg", extra_args=["--snap-count", str(SNAP_COUNT)]
        )
    if scn.needs_super:
        request.getfixturevalue("private_servers")
        oracle = _super_server("zookeeper")
        target = oracle if SELFCHECK else _super_server("zkreg")
    else:
        oracle = request.getfixturevalue("zk_oracle")
        target = oracle if SELFCHECK else request.getfixturevalue("zkreg_server")
    return oracle, target


def _cons(server: ServerProcess) -> str:
    """The server's open connections, to diagnose a failed connect."""
    try:
        return server.four_letter("cons")[:3000]
    except OSError as error:
        return f"(cons failed: {error})"


@pytest.mark.parametrize("name", _params())
def test_scenario(name: str, request: pytest.FixtureRequest) -> None:
    """ZooKeeper and zkreg observe the same results, errors, stats and events."""
    scn = SCENARIOS[name]
    oracle, target = _servers(scn, request)
    expected, oracle_crash = run_scenario(scn, oracle)
    if oracle_crash:
        pytest.fail(
            f"scenario {name} itself fails on ZooKeeper:\n{oracle_crash}\n"
            f"ZooKeeper log tail:\n{oracle.log_tail(3000)}\n"
            f"ZooKeeper connections (cons):\n{_cons(oracle)}"
        )
    actual, target_crash = run_scenario(scn, target)
    differences = compare(expected, actual)
    _results.append((name, "pass" if not differences else "DIFFERS", differences, target_crash))
    if differences:
        detail = "\n".join(differences[:20])
        if target_crash:
            detail += f"\n{target.name} run raised:\n{target_crash}"
        pytest.fail(f"{name}: {len(differences)} differing step(s)\n{detail}")
