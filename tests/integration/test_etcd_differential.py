"""
The differential suite through a session server whose data tier is on etcd (one
etcd member, one data server with C{--etcd}, a session server following it): the
scenarios must record the same as on Apache ZooKeeper 3.8.

CI runs a bounded, fixed sample (every Nth scenario, N = C{ZKREG_ETCD_DIFF_STRIDE},
8 by default); C{ZKREG_ETCD_DIFF_STRIDE=1} runs every scenario that needs no restart,
no super user and no expiry wait (those have their own private servers in the main
suite).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.scenarios import SCENARIOS
from tests.support.differential import compare, run_scenario
from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(600)

STRIDE = int(os.environ.get("ZKREG_ETCD_DIFF_STRIDE", "8"))
PREFIX = "/zkreg-diff"


def _params() -> list[object]:
    eligible = sorted(
        name
        for name, scenario in SCENARIOS.items()
        if not (scenario.restarts or scenario.needs_super or scenario.slow)
    )
    return [pytest.param(name, marks=[pytest.mark.oracle], id=name) for name in eligible[::STRIDE]]


@pytest.fixture(scope="module")
def etcd_session_server() -> Iterator[ZkregServer]:
    """A session server on a data tier on etcd."""
    etcd = EtcdCluster(1)
    started: list[ZkregServer] = []
    try:
        etcd.start()
        data = EtcdDataServer(etcd.endpoints_option, PREFIX)
        started.append(data)
        data.start()
        wait_until(data.is_active, timeout=30, message="the data server active")
        session = ZkregServer(
            extra_args=[
                "--role",
                "session",
                "--etcd",
                etcd.endpoints_option,
                "--etcd-prefix",
                PREFIX,
            ]
        )
        started.append(session)
        session.start()
        yield session
    finally:
        for server in reversed(started):
            server.cleanup()
        etcd.stop()


@pytest.mark.parametrize("name", _params())
def test_scenario_on_etcd_tier(name: str, zk_oracle, etcd_session_server) -> None:
    """ZooKeeper and zkreg on the etcd tier observe the same results, stats and events."""
    scenario = SCENARIOS[name]
    expected, oracle_crash = run_scenario(scenario, zk_oracle)
    if oracle_crash:
        pytest.fail(f"scenario {name} itself fails on ZooKeeper:\n{oracle_crash}")
    actual, crash = run_scenario(scenario, etcd_session_server)
    differences = compare(expected, actual)
    if differences:
        detail = "\n".join(differences[:20])
        if crash:
            detail += f"\nzkreg run raised:\n{crash}"
        pytest.fail(f"{name}: {len(differences)} differing step(s)\n{detail}")
