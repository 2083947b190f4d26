"""
SASL DIGEST-MD5 servers for tests: Apache ZooKeeper 3.8 with a JAAS
DigestLoginModule file and its SASL provider, and zkreg with C{--sasl-config} of the
same file, so the same script gives the same outcomes on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, ZkregServer, ZooKeeperOracle

JAAS = """
// The users of both servers (ZooKeeper's DigestLoginModule format).
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_bob="bob-secret"
       user_alice="alice-secret";
};
"""


@pytest.fixture(scope="module")
def jaas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """L{JAAS} in a file (a module-scoped fixture: import it into a test module)."""
    path = tmp_path_factory.mktemp("sasl") / "jaas.conf"
    path.write_text(JAAS)
    return path


def sasl_server(
    kind: str, jaas_file: Path, required: bool = False, allow_failed: bool = False
) -> ServerProcess:
    """
    @param kind: C{"zookeeper"} or C{"zkreg"}.
    @param required: clients must authenticate (ZooKeeper's
        C{sessionRequireClientSASLAuth}, zkreg's C{--sasl-required}).
    @param allow_failed: a failed authentication keeps the session (ZooKeeper's
        C{allowSaslFailedClients}, zkreg's C{--sasl-allow-failed-clients}).
    @return: the server, started (the test is skipped when it cannot run here).
    """
    server: ServerProcess
    if kind == "zookeeper":
        jvm = [
            f"-Djava.security.auth.login.config={jaas_file}",
            "-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        ]
        if required:
            jvm.append("-Dzookeeper.sessionRequireClientSASLAuth=true")
        if allow_failed:
            jvm.append("-Dzookeeper.allowSaslFailedClients=true")
        server = ZooKeeperOracle(extra_jvm_args=jvm)
    else:
        args = ["--sasl-config", str(jaas_file)]
        if required:
            args.append("--sasl-required")
        if allow_failed:
            args.append("--sasl-allow-failed-clients")
        server = ZkregServer(extra_args=args)
    server.start()
    return server


def serving(kind: str, jaas_file: Path, **options: bool) -> Iterator[ServerProcess]:
    """A fixture's body: L{sasl_server} for the test, cleaned up after it."""
    server = sasl_server(kind, jaas_file, **options)
    try:
        yield server
    finally:
        server.cleanup()
