"""
The differential suite through session servers: a representative subset of the
scenarios runs against Apache ZooKeeper 3.8 and against zkreg session servers, and
the recordings must be equal, as in L{tests.integration.test_differential} against a
standalone zkreg.  Two layouts:

  - C{split}: a session server (C{--role session}) in front of a data server;
  - C{processes}: one zkreg with C{--session-processes 2}, whose scenarios' clients
    land on either child process.

The subset is every third eligible scenario in name order (those that neither wait
for expiry, restart servers nor need a super digest) for the split, the next third
for the processes layout, to keep CI time bounded; set C{ZKREG_DIFF_SPLIT_ALL=1} to
run every eligible one in both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.scenarios import SCENARIOS
from tests.support.differential import compare, run_scenario
from tests.support.servers import ZkregServer
from tests.support.split import running_split

#: Scenarios left out here, and why.
SPLIT_DIFFERENT: dict[str, str] = {
    "system_zookeeper_node": (
        "reads /zookeeper's stat, whose cversion depends on the whole history of the "
        "server: the oracle is shared with the other modules, the split pair is fresh"
    ),
}


#: Scenarios left out of the processes layout only, and why.
_CLAIMED_ELSEWHERE = (
    "ZooKeeper closes a session's connection when another connection claims the "
    "session (even with a wrong password); a claim on another session process does "
    "not close it (as between the servers of a ZooKeeper ensemble)"
)
PROCESSES_DIFFERENT: dict[str, str] = {
    "session_wrong_password": _CLAIMED_ELSEWHERE,
    "session_second_connection_takes_over": _CLAIMED_ELSEWHERE,
}


def _eligible(offset: int = 0) -> list[str]:
    different = {**SPLIT_DIFFERENT, **(PROCESSES_DIFFERENT if offset else {})}
    names = [
        name
        for name, scn in sorted(SCENARIOS.items())
        if not (scn.slow or scn.restarts or scn.needs_super) and name not in different
    ]
    if os.environ.get("ZKREG_DIFF_SPLIT_ALL") == "1":
        return names
    return names[offset::3]


@pytest.fixture(scope="module")
def session_server() -> Iterator[ZkregServer]:
    """A session server of its own data server (module-scoped)."""
    with running_split() as split:
        yield split.sessions[0]


@pytest.fixture(scope="module")
def session_processes() -> Iterator[ZkregServer]:
    """A zkreg with two session processes (module-scoped)."""
    server = ZkregServer(extra_args=["--session-processes", "2"])
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.mark.oracle
@pytest.mark.parametrize("name", _eligible())
def test_scenario_through_a_session_server(name: str, zk_oracle, session_server) -> None:
    """ZooKeeper and a zkreg session server observe the same results and events."""
    _compare(name, zk_oracle, session_server)


@pytest.mark.oracle
@pytest.mark.parametrize("name", _eligible(offset=1))
def test_scenario_through_session_processes(name: str, zk_oracle, session_processes) -> None:
    """ZooKeeper and a zkreg with session processes observe the same results and events."""
    _compare(name, zk_oracle, session_processes, sees_other_sessions_watches=False)


def _compare(
    name: str, zk_oracle: Any, session_server: ZkregServer, sees_other_sessions_watches=True
) -> None:
    scn = SCENARIOS[name]
    expected, oracle_crash = run_scenario(scn, zk_oracle)
    if oracle_crash:
        pytest.fail(f"scenario {name} itself fails on ZooKeeper:\n{oracle_crash}")
    if (
        not sees_other_sessions_watches
        and name.startswith("random_")
        and any("checkWatches" in str(step[0]) for step in expected)
    ):
        # ZooKeeper's checkWatches counts any session's watch at the path itself
        # (WatchManager.containsWatcher); a session process sees only its own
        # connections' watches, as a server of a ZooKeeper ensemble does.
        pytest.skip(f"{name} calls checkWatches with sessions on several processes")
    actual, crash = run_scenario(scn, session_server)
    differences = compare(expected, actual)
    if differences:
        detail = "\n".join(differences[:20])
        if crash:
            detail += f"\nsession server run raised:\n{crash}"
        detail += f"\nsession server log tail:\n{session_server.log_tail(3000)}"
        pytest.fail(f"{name}: {len(differences)} differing step(s)\n{detail}")
