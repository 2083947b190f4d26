"""
A pytest plugin (C{-p tests.support.kazoo_suite_plugin}) making kazoo's own test
suite run against zkreg: it replaces C{kazoo.testing.harness.get_global_cluster} with
one returning a L{tests.support.kazoo_cluster.ZkregCluster} in the layout named by
C{ZKREG_KAZOO_LAYOUT} (one of L{LAYOUTS}).

Like kazoo's function it keeps one cluster per process and rebuilds it when the
configuration the tests set through the environment changes (kazoo's SASL tests set
C{ZOOKEEPER_JAAS_AUTH=digest} around their cases).
"""

from __future__ import annotations

import atexit
import os
import sys
import types
from typing import Any

from tests.support.kazoo_cluster import LAYOUTS, ZkregCluster, jaas_config_from_environment

_cluster: ZkregCluster | None = None
_cluster_conf: tuple[str, str | None] | None = None


def _provide_jks_if_missing() -> None:
    """
    kazoo.testing.common imports pyjks (Java keystores for the Java cluster's TLS);
    zkreg takes PEM files, so when pyjks is not installed an empty stand-in module
    lets kazoo's harness import.  Nothing here calls it.
    """
    try:
        import jks  # noqa: F401
    except ImportError:
        sys.modules["jks"] = types.ModuleType("jks")


def get_global_cluster() -> ZkregCluster:
    """
    @return: the process's zkreg cluster, rebuilt when the configuration changed.
    """
    global _cluster, _cluster_conf
    conf = (os.environ.get("ZKREG_KAZOO_LAYOUT", "standalone"), jaas_config_from_environment())
    if _cluster is not None:
        if conf == _cluster_conf:
            return _cluster
        _cluster.close()
        _cluster = None
    _cluster = ZkregCluster(conf[0], jaas_config=conf[1])
    _cluster_conf = conf
    atexit.register(_cluster.close)
    return _cluster


def pytest_configure(config: Any) -> None:
    """Patch kazoo's harness before any kazoo test module is collected."""
    _provide_jks_if_missing()
    from kazoo.testing import harness

    harness.get_global_cluster = get_global_cluster


#: kazoo tests that cannot run against zkreg, by C{module::class[::test]} prefix, with
#: why; a layout name limits an entry to that layout.  Everything else must pass.
NOT_APPLICABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "test_connection.py::TestReadOnlyMode": (
        LAYOUTS,
        "needs a 3-server ZooKeeper ensemble losing its quorum and a read-only server "
        "(readonlymode.enabled); zkreg has neither quorum nor read-only mode",
    ),
    "test_client.py::TestReconfig": (
        LAYOUTS,
        "dynamic reconfiguration of a ZooKeeper ensemble (reconfigEnabled=true); zkreg "
        "answers reconfig with ReconfigDisabled, as ZooKeeper with reconfigEnabled=false",
    ),
    "test_sasl.py::TestSASLGSSAPIAuthentication": (
        LAYOUTS,
        "Kerberos (GSSAPI) needs kazoo's test KDC; zkreg's SASL is DIGEST-MD5 only",
    ),
    "test_lock.py::KazooLockTests::test_lock_ephemeral": (
        ("split", "etcd"),
        "reads, from a second client, a node the first client created just before; the "
        "two may sit on different session servers, and like ZooKeeper (no cross-client "
        "timeliness without sync) the second's replica may not have it yet (failed 1 "
        "run in 4 on a loaded 2-core box, NoNodeError)",
    ),
    "test_client.py::TestClient::test_update_host_list": (
        ("standalone", "processes"),
        "stops one of several servers and expects the client on another; standalone "
        "and processes have one server (the split layout runs it over two session "
        "servers)",
    ),
}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Deselect the L{NOT_APPLICABLE} tests of this layout (reported as deselected)."""
    layout = os.environ.get("ZKREG_KAZOO_LAYOUT", "standalone")
    keep, drop = [], []
    for item in items:
        key = f"{os.path.basename(str(item.path))}::" + "::".join(
            part for part in item.nodeid.split("::")[1:]
        )
        if any(
            layout in layouts and (key == prefix or key.startswith(prefix + "::"))
            for prefix, (layouts, _why) in NOT_APPLICABLE.items()
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
