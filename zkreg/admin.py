"""
The admin HTTP server (C{--admin-listen}, off by default as ZooKeeper 3.8's
AdminServer on its own port): ZooKeeper's AdminServer commands as JSON under
C{/commands/<name>}, and C{/healthz} and C{/readyz} for orchestrators.

The figures are those of the four-letter words (L{zkreg.session.monitor}), rendered
as JSON with the keys of ZooKeeper's C{Commands.java}: every response carries
C{"command"} (the command's primary name) and C{"error"} (null, or why it failed), and
a command has the same aliases as in ZooKeeper (C{srvr} is C{server_stats}).  Built on
C{twisted.web}; every answer is computed on the reactor thread, in one go.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from twisted.application import service, strports
from twisted.web.resource import Resource
from twisted.web.server import Site

from zkreg.persistence.snapshot import list_snapshots
from zkreg.session import monitor


def _last_snapshot(target: AdminTarget) -> dict[str, Any]:
    snapshots = list_snapshots(target.config.data_dir)
    if not snapshots:
        return {"zxid": "0", "timestamp": 0}
    zxid, path = snapshots[-1]
    try:
        timestamp = int(os.path.getmtime(path))
    except OSError:
        timestamp = 0
    return {"zxid": f"{zxid:x}", "timestamp": timestamp}


def _ruok(target: AdminTarget) -> dict[str, Any]:
    # As the four-letter word: not ok while the data tier refuses writes.
    problems = target.health_problems()
    return {"error": "; ".join(problems)} if problems else {}


def _leader(target: AdminTarget) -> dict[str, Any]:
    if target.data_tier is not None:
        # A data server on etcd: active (the leader) or standby, and what it applied.
        described = target.data_tier.describe()
        return {"is_leader": described["state"] == "active", **described}
    # As a standalone ZooKeeper, which has no quorum and so no leader to report.
    return {"error": "server is not initialized"}


def _reset_connection_stats(target: AdminTarget) -> dict[str, Any]:
    target.factory.reset_connection_stats()
    return {}


def _reset_stats(target: AdminTarget) -> dict[str, Any]:
    target.factory.stats.reset()
    return {}


def _on_factory(figures: Callable[[Any], Any]) -> Callable[[AdminTarget], dict[str, Any]]:
    def command(target: AdminTarget) -> dict[str, Any]:
        result = figures(target.factory)
        return dict(result) if not isinstance(result, dict) else result

    return command


#: (primary name, aliases, figures of an L{AdminTarget}, needs a session server)
_COMMANDS: tuple[
    tuple[str, tuple[str, ...], Callable[[AdminTarget], dict[str, Any]], bool], ...
] = (
    ("ruok", (), _ruok, False),
    ("server_stats", ("srvr",), _on_factory(monitor.server_stats), True),
    ("stats", ("stat",), _on_factory(monitor.stat), True),
    ("configuration", ("conf", "config"), _on_factory(monitor.configuration), True),
    ("connections", ("cons",), _on_factory(monitor.connections), True),
    ("connection_stat_reset", ("crst",), _reset_connection_stats, True),
    ("dump", (), _on_factory(monitor.dump), True),
    ("environment", ("envi", "env"), _on_factory(monitor.environment), True),
    ("monitor", ("mntr",), _on_factory(monitor.monitor), True),
    ("stat_reset", ("srst",), _reset_stats, True),
    ("watch_summary", ("wchs",), _on_factory(monitor.watch_summary), True),
    ("watches", ("wchc",), _on_factory(monitor.watches), True),
    ("watches_by_path", ("wchp",), _on_factory(monitor.watches_by_path), True),
    ("dirs", (), _on_factory(monitor.dirs), True),
    ("is_read_only", ("isro",), _on_factory(monitor.is_read_only), True),
    ("last_snapshot", ("lsnp",), _last_snapshot, False),
    ("leader", ("lead",), _leader, False),
)

#: Every name and alias -> (primary name, figures, needs a session server).
COMMANDS: dict[str, tuple[str, Callable[[AdminTarget], dict[str, Any]], bool]] = {}
for _primary, _aliases, _figures, _needs_factory in _COMMANDS:
    for _name in (_primary, *_aliases):
        COMMANDS[_name] = (_primary, _figures, _needs_factory)


class AdminTarget:
    """
    What the admin server reports on: the process's configuration, its session
    server (set when it exists: a session role links first) and its data server.

    @ivar config: the L{zkreg.config.ServerConfig}.
    @ivar factory: the L{zkreg.session.factory.SessionServerFactory}, or None.
    @ivar data_server: the L{zkreg.data.server.DataServer} of this process, or None.
    """

    def __init__(self, config: Any, factory: Any = None, data_server: Any = None) -> None:
        self.config = config
        self.factory = factory
        self.data_server = data_server
        #: the L{zkreg.etcd_role.EtcdDataRoleService} of a data server on etcd
        self.data_tier: Any = None

    def health_problems(self) -> list[str]:
        """
        @return: why this process is unhealthy (a restart or an operator is needed);
            empty when healthy.
        """
        problems = []
        refused = None
        if self.data_server is not None:
            refused = self.data_server.write_failure()
        elif self.factory is not None:
            refused = monitor.data_fact(self.factory, "write_failure", None)
        if refused:
            problems.append(f"writes refused: {refused}")
        return problems

    def readiness_problems(self) -> list[str]:
        """@return: why clients cannot be served now; empty when ready."""
        problems = self.health_problems()
        if self.data_tier is not None and self.data_tier.state != "active":
            problems.append(f"{self.data_tier.state} data server (another one is active)")
        if self.factory is None and self.config.role != "data":
            problems.append("the session server is not linked to its data server yet")
        return problems


def run_command(target: AdminTarget, name: str) -> tuple[int, dict[str, Any]]:
    """
    Run one admin command.

    @return: the HTTP status and the JSON object answering it.
    """
    known = COMMANDS.get(name)
    if known is None:
        return 404, {"command": name, "error": f"Unknown command: {name}"}
    primary, figures, needs_factory = known
    if needs_factory and target.factory is None:
        if target.config.role == "data":
            why = "a data server has no client connections; ask a session server"
        else:
            why = "the session server is not linked to its data server yet"
        return 503, {"command": primary, "error": why}
    response = figures(target)
    response.setdefault("command", primary)
    response.setdefault("error", None)
    return 200, response


def _json(request: Any, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    return json.dumps(body, indent=2).encode("utf-8") + b"\n"


class _CommandsResource(Resource):
    """C{/commands} (the list) and C{/commands/<name>}."""

    isLeaf = True

    def __init__(self, target: AdminTarget) -> None:
        super().__init__()
        self.target = target

    def render_GET(self, request: Any) -> bytes:
        path = [part for part in request.postpath if part]
        if not path:
            names = {primary: list(aliases) for primary, aliases, _, _ in _COMMANDS}
            return _json(request, 200, {"commands": names})
        name = path[0].decode("utf-8", "replace")
        status, body = run_command(self.target, name)
        return _json(request, status, body)


class _ProbeResource(Resource):
    """C{/healthz} or C{/readyz}: 200 with C{{"status": "ok"}}, else 503 and why."""

    isLeaf = True

    def __init__(self, problems: Callable[[], list[str]]) -> None:
        super().__init__()
        self.problems = problems

    def render_GET(self, request: Any) -> bytes:
        problems = self.problems()
        if problems:
            return _json(request, 503, {"status": "failing", "problems": problems})
        return _json(request, 200, {"status": "ok"})


class QuietSite(Site):
    """A L{Site} that writes no access-log line per request (probes come often)."""

    noisy = False

    def log(self, request: Any) -> None:
        pass


def admin_site(target: AdminTarget) -> Site:
    """The web site of C{--admin-listen}."""
    root = Resource()
    root.putChild(b"commands", _CommandsResource(target))
    root.putChild(b"healthz", _ProbeResource(target.health_problems))
    root.putChild(b"readyz", _ProbeResource(target.readiness_problems))
    return QuietSite(root)


def admin_service(endpoint: str, target: AdminTarget) -> service.Service:
    """The listener of C{--admin-listen}, serving L{admin_site}."""
    return strports.service(endpoint, admin_site(target))
