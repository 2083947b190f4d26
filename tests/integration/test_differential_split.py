"""
The differential suite through a session server: a representative subset of the
scenarios runs against Apache ZooKeeper 3.8 and against a zkreg session server
(C{--role session}) in front of a data server, and the recordings must be equal, as
in L{tests.integration.test_differential} against a standalone zkreg.

The subset is every third eligible scenario in name order (those that neither wait
for expiry, restart servers nor need a super digest), to keep CI time bounded; set
C{ZKREG_DIFF_SPLIT_ALL=1} to run every eligible one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.scenarios import SCENARIOS
from tests.support.differential import compare, run_scenario
from tests.support.ports import free_port
from tests.support.servers import ZkregServer

#: Scenarios left out here, and why.
SPLIT_DIFFERENT: dict[str, str] = {
    "system_zookeeper_node": (
        "reads /zookeeper's stat, whose cversion depends on the whole history of the "
        "server: the oracle is shared with the other modules, the split pair is fresh"
    ),
}


def _eligible() -> list[str]:
    names = [
        name
        for name, scn in sorted(SCENARIOS.items())
        if not (scn.slow or scn.restarts or scn.needs_super) and name not in SPLIT_DIFFERENT
    ]
    if os.environ.get("ZKREG_DIFF_SPLIT_ALL") == "1":
        return names
    return names[::3]


@pytest.fixture(scope="module")
def session_server() -> Iterator[ZkregServer]:
    """A session server of its own data server (module-scoped)."""
    link_port = free_port()
    data = ZkregServer(extra_args=["--data-link-listen", f"tcp:{link_port}:interface=127.0.0.1"])
    session = ZkregServer(
        extra_args=["--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}"]
    )
    try:
        data.start()
        session.start()
        yield session
    finally:
        session.cleanup()
        data.cleanup()


@pytest.mark.oracle
@pytest.mark.parametrize("name", _eligible())
def test_scenario_through_a_session_server(name: str, zk_oracle, session_server) -> None:
    """ZooKeeper and a zkreg session server observe the same results and events."""
    scn = SCENARIOS[name]
    expected, oracle_crash = run_scenario(scn, zk_oracle)
    if oracle_crash:
        pytest.fail(f"scenario {name} itself fails on ZooKeeper:\n{oracle_crash}")
    actual, crash = run_scenario(scn, session_server)
    differences = compare(expected, actual)
    if differences:
        detail = "\n".join(differences[:20])
        if crash:
            detail += f"\nsession server run raised:\n{crash}"
        detail += f"\nsession server log tail:\n{session_server.log_tail(3000)}"
        pytest.fail(f"{name}: {len(differences)} differing step(s)\n{detail}")
