"""The curatorish integration fixtures (servers, clients, proxies) for discovery tests."""

from tests.curatorish.conftest import (  # noqa: F401  (pytest fixtures)
    _give_the_reactor_back,
    curatorish_zkreg,
    make_client,
    private_server,
    proxy,
    server,
)
from tests.support.java import java_program  # noqa: F401, E402  (pytest fixture)
