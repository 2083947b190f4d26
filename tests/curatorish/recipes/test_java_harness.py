"""
The Java interop harness itself (L{tests.support.java}): a Curator 5.4 client compiled
by the test and driven over stdin/stdout, against zkreg, sees curatorish's writes and
curatorish sees its writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.java import JavaProgramError, classpath, java_unavailable_reason


def test_classpath_names_every_jar() -> None:
    entries = classpath("/x").split(":")
    assert entries[0] == "/x"
    for name in ("curator-recipes", "curator-framework", "zookeeper", "zookeeper-jute"):
        assert f"/usr/share/java/{name}.jar" in entries


def test_curator_and_curatorish_read_each_others_nodes(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    client = make_client(curatorish_zkreg.hosts)
    with java_program("CuratorNodes").start(curatorish_zkreg.hosts) as java:
        java.expect("READY", timeout=60)
        assert java.request("create /harness/java 6a617661", "CREATED") == ("CREATED /harness/java")
        assert client.get_data("/harness/java")[0] == b"java"

        client.create("/harness/python", b"python", parents=True)
        assert java.request("get /harness/python", "DATA") == f"DATA {b'python'.hex()}"
        assert java.request("children /harness", "CHILDREN") == "CHILDREN java,python"

        with pytest.raises(JavaProgramError, match="NoNode"):
            java.request("get /harness/absent", "DATA")

        assert java.request("quit", "BYE") == "BYE"
        assert java.wait() == 0


def test_run_runs_a_one_shot_program(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    client = make_client(curatorish_zkreg.hosts)
    client.create("/harness/once", b"\x00\x01", parents=True)
    program = java_program("CuratorNodes")
    result = program.run(curatorish_zkreg.hosts, "get", "/harness/once", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "DATA 0001"

    failed = program.run(curatorish_zkreg.hosts, "get", "/harness/absent", timeout=120)
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[-1].startswith("ERROR NoNode")


def test_unavailable_reason_is_none_here_or_says_why() -> None:
    reason = java_unavailable_reason()
    assert reason is None or "install" in reason or "absent" in reason
