"""
kazoo's own test suite (C{kazoo.tests}, the tests kazoo runs against a Java ZooKeeper
ensemble) run against zkreg, standalone, through session servers in front of a
data server, and through session servers following a data tier on etcd (an active
data server and a standby, L{tests.support.kazoo_cluster}).

The suite runs in a subprocess (C{python -m pytest --pyargs kazoo.tests...}) with
L{tests.support.kazoo_suite_plugin}, which gives kazoo's harness zkreg processes
instead of ZooKeeper; the tests that need what zkreg does not have (an ensemble's
quorum, reconfig, Kerberos) are deselected there, each with its reason.

CI runs a representative subset (L{CI_MODULES}); C{ZKREG_KAZOO_SUITE=all} runs every
module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.etcd import etcd_unavailable_reason
from tests.support.kazoo_cluster import LAYOUTS
from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.timeout(900)

#: The kazoo test modules CI runs: the client API, connection handling and the
#: recipes most used against a registry.
CI_MODULES = (
    "test_client",
    "test_connection",
    "test_lock",
    "test_cache",
    "test_election",
    "test_partitioner",
    "test_watchers",
    "test_barrier",
    "test_counter",
    "test_queue",
    "test_sasl",
)

#: Per-test bound inside the subprocess, so one hung kazoo test fails with a traceback.
KAZOO_TEST_TIMEOUT_S = 120


def kazoo_targets() -> list[str]:
    """@return: the C{--pyargs} targets: every kazoo test module or L{CI_MODULES}."""
    if os.environ.get("ZKREG_KAZOO_SUITE") == "all":
        return ["kazoo.tests"]
    return [f"kazoo.tests.{name}" for name in CI_MODULES]


def summary_counts(output: str) -> dict[str, int]:
    """
    @return: pytest's final counts (C{passed}, C{failed}, ...) parsed from its output:
        the last line ending in pytest's C{in <seconds>s} (kazoo's clients may log
        "Connection dropped" to the same stream after it, while they close).
    """
    summaries = [line for line in output.splitlines() if re.search(r" in [\d.]+s\b", line)]
    last = summaries[-1] if summaries else ""
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", last)}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kazoo_suite(layout, tmp_path):
    """
    kazoo's tests pass against zkreg in this layout: the subprocess exits 0 and ran
    tests (none failed, none errored).
    """
    if layout == "etcd" and etcd_unavailable_reason() is not None:
        pytest.skip(str(etcd_unavailable_reason()))
    env = dict(os.environ)
    env["ZKREG_KAZOO_LAYOUT"] = layout
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    # The suite's own CI switches (ZooKeeper version, build checks) name a Java
    # cluster's version; against zkreg the tests ask the server.
    for name in ("CI", "ZOOKEEPER_VERSION", "ZOOKEEPER_JAAS_AUTH"):
        env.pop(name, None)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.support.kazoo_suite_plugin",
        "-o",
        f"timeout={KAZOO_TEST_TIMEOUT_S}",
        "-rfE",
        "--rootdir",
        str(tmp_path),
        "--pyargs",
        *kazoo_targets(),
    ]
    result = subprocess.run(
        argv,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=840,
    )
    counts = summary_counts(result.stdout)
    report = result.stdout[-20000:]
    # The counts, shown by pytest -rA: the figures the suite is reported with.
    print(f"kazoo suite against zkreg {layout}: {counts}")
    assert result.returncode == 0, f"kazoo's suite failed against zkreg {layout}:\n{report}"
    assert counts.get("passed", 0) > 0, report
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, report
