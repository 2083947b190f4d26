"""
curatorish as a plain (threaded, non-Twisted) program meets it, against both servers:
the state it reports, its session id, str credentials, bytes-only data, errors that
print their path, and a blocking face whose type hints name values, not Deferreds.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.framework import CuratorFramework
from curatorish.state import ConnectionState
from tests.support.waiting import wait_until
from zkreg.proto.consts import CreateMode, Perms
from zkreg.proto.records import ACL, Id, Stat


def test_state_is_connected_after_the_first_connection_and_lost_after_close(
    server: Any, make_client: Any
) -> None:
    states: list[str] = []
    client = make_client(server.hosts, states=states)
    assert client.state is ConnectionState.CONNECTED
    assert client.async_client.state is ConnectionState.CONNECTED
    wait_until(lambda: states == ["CONNECTED"], message="CONNECTED posted")
    client.close()
    assert client.state is ConnectionState.LOST
    assert client.framework_state == "STOPPED"


def test_session_id_is_a_property(server: Any, make_client: Any, unique_path: str) -> None:
    client = make_client(server.hosts)
    assert isinstance(client.session_id, int) and client.session_id != 0
    assert client.session_id == client.async_client.session_id == client.zookeeper.session_id
    assert isinstance(inspect.getattr_static(BlockingCuratorFramework, "session_id"), property)
    assert isinstance(inspect.getattr_static(CuratorFramework, "session_id"), property)
    created = client.create(unique_path, b"", mode=CreateMode.EPHEMERAL)
    assert created.stat.ephemeralOwner == client.session_id


def test_add_auth_takes_str_credentials_as_kazoo_does(
    server: Any, make_client: Any, unique_path: str
) -> None:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha1(b"carol:pw").digest()).decode()
    acl = [ACL(int(Perms.ALL), Id("digest", f"carol:{digest}"))]
    owner = make_client(server.hosts, auth_info=[("digest", "carol:pw")])
    assert ("digest", "carol") in owner.who_am_i()
    owner.create(unique_path, b"secret", acl=acl)
    stranger = make_client(server.hosts)
    with pytest.raises(errors.NoAuthError):
        stranger.get_data(unique_path)
    stranger.add_auth("digest", "carol:pw")
    assert stranger.get_data(unique_path)[0] == b"secret"


def test_str_data_is_a_type_error_saying_so(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    with pytest.raises(TypeError, match="must be bytes, not str"):
        client.create(unique_path, "text")  # type: ignore[arg-type]
    assert client.exists(unique_path) is None
    client.create(unique_path, b"bytes")
    with pytest.raises(TypeError, match="must be bytes, not str"):
        client.set_data(unique_path, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes, not int"):
        client.set_data(unique_path, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes, not str"):
        client.ops.set_data(unique_path, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes, not str"):
        client.ops.create(f"{unique_path}/c", "text")  # type: ignore[arg-type]
    assert client.get_data(unique_path)[0] == b"bytes"


def test_errors_from_the_server_print_their_class_and_path(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    client.create(unique_path)
    with pytest.raises(errors.NodeExistsError) as caught:
        client.create(unique_path)
    assert str(caught.value) == unique_path
    assert repr(caught.value) == f"NodeExistsError({unique_path!r})"
    with pytest.raises(errors.NoNodeError) as missing:
        client.get_data(f"{unique_path}/none")
    assert str(missing.value) == f"{unique_path}/none"


def _blocking_methods() -> list[str]:
    """The async client's public methods that return Deferreds (its bases' too)."""
    members: dict[str, Any] = {}
    for klass in reversed(CuratorFramework.__mro__):
        members.update(vars(klass))
    names = []
    for name, member in members.items():
        if name.startswith("_") or not callable(member):
            continue
        hints = typing.get_type_hints(member)
        if "Deferred" in str(hints.get("return")):
            names.append(name)
    return sorted(names)


def test_blocking_face_has_every_operation_with_value_type_hints() -> None:
    names = _blocking_methods()
    assert {"create", "get_data", "transaction", "close", "remove_watches"} <= set(names)
    for name in names:
        member = inspect.getattr_static(BlockingCuratorFramework, name)
        assert inspect.isfunction(member), f"{name} is not a method of the blocking face"
        hints = typing.get_type_hints(member)
        assert "return" in hints, name
        assert "Deferred" not in str(hints["return"]), f"{name} -> {hints['return']}"
        blocking_parameters = list(inspect.signature(member).parameters)
        async_parameters = list(inspect.signature(getattr(CuratorFramework, name)).parameters)
        assert blocking_parameters == async_parameters, name
    assert (
        typing.get_type_hints(BlockingCuratorFramework.get_data)["return"]
        == (tuple[bytes | None, Stat])
    )


def test_one_watcher_set_twice_fires_once_on_the_event_thread(
    server: Any, make_client: Any, unique_path: str
) -> None:
    """The blocking face's event-thread wrappers of one watcher are equal, so the
    connection keeps it once per path (as Java does) and can remove it."""
    import threading

    client = make_client(server.hosts)
    client.create(unique_path, b"0")
    events: list[Any] = []
    threads: list[str] = []

    def watcher(event: Any) -> None:
        threads.append(threading.current_thread().name)
        events.append(event)

    client.get_data(unique_path, watcher=watcher)
    client.exists(unique_path, watcher=watcher)
    client.set_data(unique_path, b"1")
    wait_until(lambda: events, message="data watch")
    client.sync(unique_path)
    client.get_data(unique_path)  # a round trip after the event: nothing else queued
    assert len(events) == 1
    assert threads == ["curatorish-events"]
    client.add_watch(unique_path, watcher)
    client.remove_watches(unique_path, watcher)
    with pytest.raises(errors.NoWatcherError):
        client.remove_watches(unique_path, watcher)
