"""
The differential harness: run one scenario against two servers and compare what a
client could observe.

A scenario is a function C{scenario(ctx)} that drives clients through a
L{ScenarioContext} and records every observable result with C{ctx.record} or
C{ctx.call}.  The recording is then normalised so that values which legitimately
differ between two correct servers compare equal, and nothing else does:

  - zxids (stat czxid/mzxid/pzxid, reply-header zxids, last-zxid-seen) become their
    rank among the distinct non-zero zxids of the recording, so order and equality
    are kept but absolute values are not;
  - times (ctime/mtime) are checked to lie within the scenario's wall-clock window
    (zero stays zero) and become C{"<time>"}; relations a scenario cares about it
    records itself (e.g. C{mtime_unchanged});
  - session ids (ephemeralOwner, whoAmI, client session ids) become C{session#n} in
    order of first appearance, the clients' own sessions first, in creation order;
  - the scenario's private root path, which differs per run, becomes C{<root>} in
    every string.

Everything else - return values, error classes and codes, full stats, child lists,
ACLs, events and their order - compares exactly.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until

# -- tagged values -------------------------------------------------------------------


@dataclass(frozen=True)
class Zxid:
    """A zxid seen by a client: normalised to its rank in the recording."""

    value: int


@dataclass(frozen=True)
class Time:
    """A server timestamp in ms since the epoch: normalised to a plausibility check."""

    value: int


@dataclass(frozen=True)
class SessionId:
    """A session id: normalised to its ordinal of first appearance."""

    value: int


STAT_FIELDS = (
    "czxid",
    "mzxid",
    "ctime",
    "mtime",
    "version",
    "cversion",
    "aversion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
    "pzxid",
)


def tag_stat(stat: Any) -> dict[str, Any] | None:
    """
    Turn a stat (kazoo's ZnodeStat, or the raw client's record) into a dict whose
    zxids, times and owner are tagged for normalisation.
    """
    if stat is None:
        return None
    tagged: dict[str, Any] = {}
    for name in STAT_FIELDS:
        value = getattr(stat, name)
        if name in ("czxid", "mzxid", "pzxid"):
            value = Zxid(value)
        elif name in ("ctime", "mtime"):
            value = Time(value)
        elif name == "ephemeralOwner":
            value = SessionId(value)
        tagged[name] = value
    return tagged


# -- turning client objects into plain data ------------------------------------------


def describe(value: Any) -> Any:
    """
    Convert what clients return (kazoo stats, events, ACLs, exceptions, raw
    records) into plain comparable data with tagged zxids, times and sessions.
    """
    from kazoo.protocol.states import WatchedEvent, ZnodeStat

    if isinstance(value, Zxid | Time | SessionId):
        return value
    if isinstance(value, ZnodeStat):
        return {"stat": tag_stat(value)}
    if isinstance(value, WatchedEvent):
        return {"event": value.type, "state": value.state, "path": value.path}
    if isinstance(value, BaseException):
        return describe_error(value)
    if type(value).__name__ == "ACL" and hasattr(value, "perms"):
        return {"acl": (value.perms, value.id.scheme, value.id.id)}
    if hasattr(value, "czxid") and hasattr(value, "pzxid"):
        return {"stat": tag_stat(value)}
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((describe(v) for v in value), key=repr)
    if hasattr(value, "describe_for_diff"):
        return describe(value.describe_for_diff())
    if hasattr(value, "as_dict") and hasattr(value, "_fields"):
        from tests.support.rawclient import record_view

        return describe(record_view(value))
    return value


def describe_error(error: BaseException) -> dict[str, Any]:
    """An exception as its class name and, when it has one, its ZooKeeper code."""
    code = getattr(error, "code", None)
    if callable(code) or not isinstance(code, int):
        code = None
    return {"error": type(error).__name__, "code": code}


# -- normalisation ---------------------------------------------------------------------


class Normaliser:
    """
    Maps the tagged values of one recording to run-independent tokens.

    @ivar root: the scenario's private root path, replaced by C{<root>}.
    @ivar window: (earliest, latest) plausible server time in ms.
    @ivar sessions: session ids in the order they were first registered or seen.
    """

    def __init__(
        self,
        root: str,
        window: tuple[int, int],
        sessions: Iterable[int] = (),
        extra_zxids: Iterable[int] = (),
    ) -> None:
        self.root = root
        self.window = window
        self.sessions: list[int] = []
        for sid in sessions:
            self._session_token(sid)
        self._zxids: set[int] = set(z for z in extra_zxids if z)

    def normalise(self, entries: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """@return: the recording with every tagged value replaced by its token."""
        self._collect_zxids(entries)
        ranks = {z: i + 1 for i, z in enumerate(sorted(self._zxids))}
        return [(label, self._replace(value, ranks)) for label, value in entries]

    def _collect_zxids(self, value: Any) -> None:
        if isinstance(value, Zxid):
            if value.value:
                self._zxids.add(value.value)
        elif isinstance(value, dict):
            for item in value.values():
                self._collect_zxids(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self._collect_zxids(item)

    def _session_token(self, sid: int) -> str:
        if sid == 0:
            return "0"
        if sid not in self.sessions:
            self.sessions.append(sid)
        return f"session#{self.sessions.index(sid) + 1}"

    def _replace(self, value: Any, ranks: dict[int, int]) -> Any:
        if isinstance(value, Zxid):
            if value.value == 0:
                return "zxid:0"
            if value.value < 0:
                return f"zxid:{value.value}"
            return f"zxid#{ranks[value.value]}"
        if isinstance(value, Time):
            if value.value == 0:
                return "time:0"
            earliest, latest = self.window
            if earliest <= value.value <= latest:
                return "<time>"
            return f"implausible-time:{value.value} not in [{earliest}, {latest}]"
        if isinstance(value, SessionId):
            return self._session_token(value.value)
        if isinstance(value, str):
            if not self.root:
                return value
            return value.replace(self.root, "<root>").replace(self.root[1:], "<root-name>")
        if isinstance(value, bytes):
            root = self.root.encode()
            if not root:
                return value
            return value.replace(root, b"<root>").replace(root[1:], b"<root-name>")
        if isinstance(value, dict):
            return {k: self._replace(v, ranks) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._replace(v, ranks) for v in value]
        return value


def compare(expected: list[tuple[str, Any]], actual: list[tuple[str, Any]]) -> list[str]:
    """
    @param expected: the oracle's normalised recording.
    @param actual: the normalised recording of the server under test.
    @return: human-readable differences, empty when the recordings agree; inside a
        differing step, the first few differing places (C{replies[17].err}).
    """
    differences = []
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else ("<missing>", None)
        right = actual[index] if index < len(actual) else ("<missing>", None)
        if left == right:
            continue
        if left[0] != right[0]:
            differences.append(
                f"step {index}: {left[0]}: zookeeper={left[1]!r} | zkreg[{right[0]}]={right[1]!r}"
            )
            continue
        places: list[str] = []
        _deep_diff(left[1], right[1], left[0], places)
        for place in places[:5]:
            differences.append(f"step {index}: {place}")
        if len(places) > 5:
            differences.append(f"step {index}: ... {len(places) - 5} more differing places")
    return differences


def _deep_diff(left: Any, right: Any, where: str, out: list[str]) -> None:
    """Append C{where: zookeeper=... | zkreg=...} for each differing leaf."""
    if left == right:
        return
    if isinstance(left, dict) and isinstance(right, dict) and left.keys() == right.keys():
        for key in left:
            _deep_diff(left[key], right[key], f"{where}.{key}", out)
        return
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for position, (a, b) in enumerate(zip(left, right, strict=True)):
            _deep_diff(a, b, f"{where}[{position}]", out)
        return
    out.append(f"{where}: zookeeper={_short(left)} | zkreg={_short(right)}")


def _short(value: Any, limit: int = 700) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- the scenario context ------------------------------------------------------------


class EventLog:
    """
    Collects watch events delivered to one watcher, thread-safely.

    Use it as a kazoo watcher callback (C{c.get(path, watch=log)}), or pass it to the
    raw client; C{ctx.events(log)} records what it holds.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(describe(event))

    def snapshot(self) -> list[Any]:
        """@return: the events so far, in delivery order."""
        with self._lock:
            return list(self.events)

    def count(self) -> int:
        """@return: how many events arrived (no C{__len__}: kazoo tests watchers
        for truth, and an empty log must still count as a watcher)."""
        with self._lock:
            return len(self.events)


class ScenarioContext:
    """
    What a scenario uses to drive one server and record what it observes.

    @ivar server: the server under test (for four-letter words and its port).
    @ivar kind: C{"zookeeper"} or C{"zkreg"}; scenarios branch on it only for
        documented deliberate differences.
    @ivar root: a fresh path unique to this run; create everything below it.
    @ivar entries: the recording, a list of C{(label, value)}.
    """

    def __init__(self, server: ServerProcess, root: str | None = None) -> None:
        self.server = server
        self.kind = server.name
        self.root = root or f"/d{uuid.uuid4().hex[:12]}"
        self.entries: list[tuple[str, Any]] = []
        self.session_ids: list[int] = []
        self.extra_zxids: list[int] = []
        self._clients: list[Any] = []
        self._raw_clients: list[Any] = []
        self.started_ms = int(time.time() * 1000)

    # recording

    def record(self, label: str, value: Any) -> Any:
        """Record one observation; returns C{value} unchanged."""
        self.entries.append((label, describe(value)))
        return value

    def call(self, label: str, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """
        Run an operation and record its result, or its error (class and code).

        @return: the result, or None when it raised.
        """
        try:
            result = operation(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every error is an observation
            self.entries.append((label, describe_error(error)))
            return None
        self.entries.append((label, describe(result)))
        return result

    def events(self, label: str, log: EventLog) -> None:
        """Record the events a watcher has received so far, in order."""
        self.entries.append((label, log.snapshot()))

    def path(self, *parts: str) -> str:
        """@return: C{root/part1/part2...}."""
        return "/".join([self.root, *parts]) if parts else self.root

    def wait(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Poll a condition (see L{wait_until})."""
        return wait_until(predicate, timeout=timeout, message=what or None)

    def wait_events(self, log: EventLog, count: int, timeout: float = 10.0) -> None:
        """Wait until a watcher has at least C{count} events."""
        wait_until(
            lambda: log.count() >= count,
            timeout=timeout,
            message=f"{count} event(s) on {log.name} (have {log.snapshot()})",
        )

    def settle(self, client: Any) -> None:
        """
        Make sure every event caused by earlier writes has reached C{client}'s
        watchers: a sync round trip is answered after the events ZooKeeper queued
        before it, and kazoo dispatches callbacks in order on one thread.
        """
        client.sync("/")
        done = threading.Event()
        client.handler.dispatch_callback(_callback(done.set))
        done.wait(5.0)

    def restart(self, hard: bool = True) -> None:
        """
        Kill -9 (or with C{hard=False}, stop) the server and start it again on the
        same port and data dir. Raw clients are left disconnected; kazoo clients
        reconnect by themselves.
        """
        for raw in self._raw_clients:
            raw.drop()
        self.server.restart(hard=hard)

    # clients

    def client(self, register_session: bool = True, **options: Any) -> Any:
        """
        @return: a started kazoo client connected to the server under test; its
            session id is registered first-come as C{session#n}. Closed at the end.
        """
        from kazoo.client import KazooClient

        options.setdefault("timeout", 10.0)
        options.setdefault("hosts", self.server.hosts)
        client = KazooClient(**options)
        self._clients.append(client)
        client.start(timeout=15.0)
        if register_session:
            self.session_ids.append(client.client_id[0])
        return client

    def raw(self, register_session: bool = True, **options: Any) -> Any:
        """
        @return: a connected L{tests.support.rawclient.RawClient}. Closed at the end.
        """
        from tests.support.rawclient import RawClient

        raw = RawClient(self.server.port, **options)
        self._raw_clients.append(raw)
        raw.connect()
        if register_session:
            self.session_ids.append(raw.session_id)
        return raw

    def close(self) -> None:
        """Stop every client the scenario opened."""
        for client in self._clients:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - teardown of a possibly broken client
                pass
        for raw in self._raw_clients:
            try:
                raw.close()
            except Exception:  # noqa: BLE001 - a broken client must not leak the rest
                raw.drop()

    def normalised(self) -> list[tuple[str, Any]]:
        """@return: the recording, normalised."""
        finished_ms = int(time.time() * 1000)
        window = (self.started_ms - 2000, finished_ms + 2000)
        normaliser = Normaliser(self.root, window, self.session_ids, self.extra_zxids)
        return normaliser.normalise(self.entries)


class _callback:
    """A kazoo Callback-compatible wrapper (type, func, args)."""

    def __init__(self, func: Callable[[], None]) -> None:
        self.type = "h4"
        self.func = func
        self.args = ()


# -- the registry and runner ----------------------------------------------------------


@dataclass
class Scenario:
    """
    @ivar name: unique id, used as the pytest id.
    @ivar func: C{func(ctx)}.
    @ivar slow: takes seconds (session expiry, TTL); marked so it can be deselected.
    @ivar needs_super: needs a server started with the suite's super digest.
    @ivar restarts: stops or kills the server mid-scenario, so runs on private
        servers (never the shared ones).
    @ivar note: why the servers are allowed to differ, when the scenario compares less.
    """

    name: str
    func: Callable[[ScenarioContext], None]
    slow: bool = False
    needs_super: bool = False
    restarts: bool = False
    note: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str | None = None,
    *,
    slow: bool = False,
    needs_super: bool = False,
    restarts: bool = False,
    note: str = "",
) -> Callable[[Callable[[ScenarioContext], None]], Callable[[ScenarioContext], None]]:
    """Register a scenario function under C{name} (default: the function name)."""

    def register(func: Callable[[ScenarioContext], None]) -> Callable[[ScenarioContext], None]:
        key = name or func.__name__
        if key in SCENARIOS:
            raise ValueError(f"duplicate scenario {key}")
        SCENARIOS[key] = Scenario(
            key, func, slow=slow, needs_super=needs_super, restarts=restarts, note=note
        )
        return func

    return register


def run_scenario(scn: Scenario, server: ServerProcess) -> tuple[list[tuple[str, Any]], str]:
    """
    Run one scenario on one server.

    @return: the normalised recording, and a traceback if the scenario itself
        crashed (the crash is recorded as the last entry, so it is compared too).
    """
    ctx = ScenarioContext(server)
    crash = ""
    try:
        scn.func(ctx)
    except Exception as error:  # noqa: BLE001 - a crash is a result to compare
        crash = traceback.format_exc()
        ctx.entries.append(("<scenario raised>", describe_error(error)))
    finally:
        ctx.close()
    return ctx.normalised(), crash
