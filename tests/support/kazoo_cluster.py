"""
zkreg processes dressed as kazoo's test cluster, so that kazoo's own test suite
(C{kazoo.tests}) runs against zkreg instead of a Java ZooKeeper ensemble.

kazoo's harness (C{kazoo.testing.harness}) gets its servers from
C{get_global_cluster()}, a C{ZookeeperCluster} of C{ManagedZooKeeper}s; its tests use
C{cluster[i].address}, C{.run()}, C{.stop()}, C{.reset()}, C{.running},
C{cluster.start()/stop()/terminate()/get_logs()} and
C{cluster.get_ssl_client_configuration()}.  L{ZkregCluster} offers that surface over
L{tests.support.servers.ZkregServer}s in one of four layouts:

  - C{standalone}: one zkreg (C{--role standalone});
  - C{split}: a data server and L{SPLIT_SESSION_SERVERS} session servers
    (C{--role session}) in front of it; the session servers are the members clients
    see, so a client's host list spans several session servers.  The data server is
    a standalone zkreg with C{--data-link-listen} (as in test_split_outage): it has a
    client port, which L{ZkregServer} polls for readiness, but no client uses it;
  - C{etcd}: the data tier on a real etcd (L{tests.support.etcd}, one member): an
    active data server and a standby (C{--role data --etcd}), and
    L{SPLIT_SESSION_SERVERS} session servers following the active one through etcd
    (C{--role session --etcd}).  Each wipe (kazoo's harness wipes the cluster after
    every test class) moves the tier to a fresh etcd key prefix and deletes the old
    one, so no state leaks from one class to the next;
  - C{processes}: one zkreg with C{--session-processes} L{SESSION_PROCESSES}: the
    split on one port, a client's connections landing on either child.

Every member is configured as kazoo's harness configures ZooKeeper: the super digest
of password C{test}, every four-letter word, a TLS client port (C{secure_address}),
and with C{ZOOKEEPER_JAAS_AUTH=digest} the JAAS users of kazoo's SASL tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.certs import make_stores
from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.ports import free_port
from tests.support.servers import ZkregServer

#: kazoo's harness enables the super user with password "test" (harness.py).
KAZOO_SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="

#: The JAAS Server section kazoo's harness writes for ZOOKEEPER_JAAS_AUTH=digest.
KAZOO_JAAS_DIGEST = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"""

#: The layouts L{ZkregCluster} builds, chosen by C{ZKREG_KAZOO_LAYOUT}.
LAYOUTS = ("standalone", "split", "etcd", "processes")

#: Session processes of the processes layout (C{--session-processes}).
SESSION_PROCESSES = 2

#: Session servers in the split layout: more than one, so host lists span several.
SPLIT_SESSION_SERVERS = 2

#: Data servers of the etcd layout: the active one and a standby tailing the log.
ETCD_DATA_SERVERS = 2


class ManagedZkreg:
    """
    One cluster member with the interface of kazoo's C{ManagedZooKeeper}.

    @ivar server: the zkreg process (its port is kept across stop and run).
    """

    host = "127.0.0.1"

    def __init__(self, server: ZkregServer, secure_port: int) -> None:
        self.server = server
        self.secure_port = secure_port

    @property
    def address(self) -> str:
        """C{host:port} of the plain client port."""
        return f"{self.host}:{self.server.port}"

    @property
    def secure_address(self) -> str:
        """C{host:port} of the TLS client port."""
        return f"{self.host}:{self.secure_port}"

    @property
    def client_port(self) -> int:
        return self.server.port

    @property
    def secure_client_port(self) -> int:
        return self.secure_port

    @property
    def running(self) -> bool:
        return self.server.is_running()

    def run(self) -> None:
        """Start the process (again, on the same ports and data directory)."""
        self.server.start()

    def stop(self) -> None:
        """Stop the process, keeping its on-disk state."""
        self.server.stop()

    def reset(self) -> None:
        """Stop the process and wipe its on-disk state."""
        self.server.stop()
        shutil.rmtree(self.server.data_dir, ignore_errors=True)
        self.server.data_dir.mkdir(parents=True, exist_ok=True)

    def destroy(self) -> None:
        """
        Kill the process and wipe its on-disk state; kazoo's C{KazooTestCase} does
        this to the whole cluster after each test class and starts it again for the
        next, so the member stays startable (L{close} removes it for good).
        """
        self.server.kill()
        self.reset()

    def close(self) -> None:
        """Kill the process and remove its working directory."""
        self.server.cleanup()

    def get_logs(self, num_lines: int = 100) -> list[str]:
        """@return: the last lines of the process's log."""
        return self.server.log_tail(200 * num_lines).splitlines()[-num_lines:]


class ZkregCluster:
    """
    kazoo's C{ZookeeperCluster} surface over zkreg processes in one L{LAYOUTS} layout.

    @ivar layout: one of L{LAYOUTS}.
    @ivar data: the data server of the split layout (not a member clients see).
    @ivar etcd: the etcd of the etcd layout, else L{None}.
    @ivar etcd_data: the data servers of the etcd layout (not members clients see).
    @ivar prefix: the etcd key prefix the etcd layout's data tier uses now.
    """

    def __init__(self, layout: str, jaas_config: str | None = None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"ZKREG_KAZOO_LAYOUT must be one of {LAYOUTS}, not {layout!r}")
        self.layout = layout
        self.workdir = Path(tempfile.mkdtemp(prefix="zkreg-kazoo-cluster-"))
        self.stores = make_stores(self.workdir / "tls")
        common = ["--super-digest", KAZOO_SUPER_DIGEST]
        if jaas_config is not None:
            jaas_path = self.workdir / "jaas.conf"
            jaas_path.write_text(jaas_config)
            common += ["--sasl-config", str(jaas_path)]
        self.data: ManagedZkreg | None = None
        self.etcd: EtcdCluster | None = None
        self.etcd_data: list[ManagedZkreg] = []
        self._generation = 0
        self.prefix = ""
        self._members: list[ManagedZkreg] = []
        if layout == "standalone":
            self._members.append(self._member(common))
        elif layout == "etcd":
            self.etcd = EtcdCluster(1)
            self.prefix = self._prefix()
            endpoints = self.etcd.endpoints_option
            self.etcd_data = [
                ManagedZkreg(EtcdDataServer(endpoints, self.prefix, extra_args=common), 0)
                for _ in range(ETCD_DATA_SERVERS)
            ]
            session = [*common, "--role", "session", "--etcd", endpoints]
            session += ["--etcd-prefix", self.prefix]
            self._members += [self._member(session) for _ in range(SPLIT_SESSION_SERVERS)]
        elif layout == "processes":
            self._members.append(
                self._member([*common, "--session-processes", str(SESSION_PROCESSES)])
            )
        else:
            link_port = free_port()
            listen = f"tcp:{link_port}:interface=127.0.0.1"
            self.data = ManagedZkreg(
                ZkregServer(extra_args=[*common, "--data-link-listen", listen]),
                free_port(),
            )
            session = [*common, "--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}"]
            self._members += [self._member(session) for _ in range(SPLIT_SESSION_SERVERS)]

    def _member(self, args: list[str]) -> ManagedZkreg:
        secure_port = free_port()
        tls = self.stores.zkreg_secure_listen(secure_port, client_auth=None)
        return ManagedZkreg(ZkregServer(extra_args=[*args, *tls]), secure_port)

    def _prefix(self) -> str:
        self._generation += 1
        return f"/kazoo-{self._generation}"

    def _everything(self) -> list[ManagedZkreg]:
        data = [self.data] if self.data is not None else self.etcd_data
        return data + self._members

    def _fresh_prefix(self) -> None:
        """
        Move the etcd layout's (stopped) data tier to a new key prefix and delete the
        old one: a wiped cluster starts from an empty tier, like a wiped ZooKeeper.
        """
        if self.etcd is None:
            return
        old, self.prefix = self.prefix, self._prefix()
        for member in self.etcd_data:
            server = member.server
            assert isinstance(server, EtcdDataServer)
            server.prefix = self.prefix
        for member in self._members:
            args = member.server.extra_args
            args[args.index("--etcd-prefix") + 1] = self.prefix
        if any(member.pid is not None for member in self.etcd.members):
            self.etcd.delete_prefix(old)

    def __getitem__(self, index: int) -> ManagedZkreg:
        return self._members[index]

    def __iter__(self) -> Iterator[ManagedZkreg]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def start(self) -> None:
        """Start every process not running, etcd and the data servers first."""
        if self.etcd is not None and any(member.pid is None for member in self.etcd.members):
            self.etcd.start()
        for member in self._everything():
            if not member.running:
                member.run()

    def stop(self) -> None:
        """Stop every process, the session servers first."""
        for member in reversed(self._everything()):
            member.stop()

    def terminate(self) -> None:
        """Kill every process and wipe its state (L{start} begins afresh)."""
        for member in reversed(self._everything()):
            member.destroy()
        self._fresh_prefix()

    def close(self) -> None:
        """Kill every process and remove every working directory."""
        for member in reversed(self._everything()):
            member.close()
        if self.etcd is not None:
            self.etcd.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def reset(self) -> None:
        """Stop every process and wipe its state."""
        for member in reversed(self._everything()):
            member.reset()
        self._fresh_prefix()

    def get_logs(self) -> list[str]:
        """@return: the log tails of every process."""
        return [line for member in self._everything() for line in member.get_logs()]

    def get_ssl_client_configuration(self) -> dict[str, bytes]:
        """@return: PEM client key, client certificate and CA, as kazoo's tests use."""
        return {
            "client_key": self.stores.keys["alice"].read_bytes(),
            "client_cert": self.stores.certificates["alice"].read_bytes(),
            "ca_cert": self.stores.truststore.read_bytes(),
        }


def jaas_config_from_environment() -> str | None:
    """
    @return: the JAAS config kazoo's harness would give ZooKeeper for
        C{ZOOKEEPER_JAAS_AUTH} (only C{digest} has a zkreg equivalent), or None.
    """
    if os.environ.get("ZOOKEEPER_JAAS_AUTH") == "digest":
        return KAZOO_JAAS_DIGEST
    return None
