"""
The recipes' two faces: one recipe class, Deferreds on the async client, values on
the blocking client, listeners on the blocking client's event thread.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from curatorish.recipes.face import Recipe, recipe_method


class _Echo(Recipe):
    def __init__(self, client: Any, path: str) -> None:
        super().__init__(client)
        self.path = path
        self.heard: list[tuple[str, str]] = []

    @recipe_method
    async def write_and_read(self, data: bytes) -> bytes:
        await self.client.create(self.path, data, parents=True)
        value, _stat = await self.client.get_data(self.path)
        return value

    @recipe_method
    async def notify(self, listener: Any) -> str:
        self.listener_caller(listener)("event")
        return threading.current_thread().name


def test_blocking_face_returns_values(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    echo = _Echo(client, "/face/blocking")
    assert echo.blocking
    assert echo.write_and_read(b"v1") == b"v1"


def test_blocking_face_raises_errors(server: Any, make_client: Any) -> None:
    from curatorish.errors import NodeExistsError

    client = make_client(server.hosts)
    echo = _Echo(client, "/face/twice")
    echo.write_and_read(b"once")
    with pytest.raises(NodeExistsError):
        echo.write_and_read(b"twice")


def test_async_face_returns_deferreds(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    echo = _Echo(client.async_client, "/face/async")
    assert not echo.blocking
    deferred = client.call(echo.write_and_read, b"v2")
    assert deferred == b"v2"


def test_blocking_listeners_run_on_the_event_thread(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    echo = _Echo(client, "/face/listener")
    heard = threading.Event()
    threads: list[str] = []

    def listener(what: str) -> None:
        threads.append(threading.current_thread().name)
        heard.set()

    reactor_thread = echo.notify(listener)
    assert heard.wait(10)
    assert threads == ["curatorish-events"]
    assert reactor_thread != "curatorish-events"


def test_a_recipe_refuses_other_clients() -> None:
    with pytest.raises(TypeError):
        _Echo(object(), "/x")
