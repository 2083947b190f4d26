"""
The etcd v3 API as zkreg uses it, over etcd's JSON gateway (C{/v3/...}) with C{treq}.

Why the gateway and treq rather than gRPC: the gateway is part of every etcd 3.4
server (Debian's C{etcd-server}), treq is Twisted's own HTTP client, so the data
server stays on the default reactor with no second event loop; an append is one
HTTP POST over a persistent connection (measured in C{bench/etcd_append.py}).

Only the calls the data tier needs are here: range, put, txn, delete, compaction,
lease grant/keep-alive/revoke, status, and a streaming watch.  Keys and values are
bytes on this side (base64 on the wire); int64 fields come as strings and are
turned into ints.  Each call tries the endpoints in turn, starting with the last
one that answered, so a lost member costs one failed connection.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from treq.client import HTTPClient
from twisted.internet import defer, protocol
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss

__all__ = [
    "Compare",
    "EtcdClient",
    "EtcdError",
    "EtcdUnavailable",
    "KeyValue",
    "Watch",
    "WatchCompacted",
    "b64",
    "prefix_end",
]

_log = Logger(namespace="zkreg.persistence.etcd")

#: etcd's default request limit is 1.5 MiB; what we send stays under this much of
#: raw value bytes per request (base64 adds a third, JSON a little).
MAX_VALUE_BYTES_PER_REQUEST = 1_000_000
#: etcd's default --max-txn-ops.
MAX_TXN_OPS = 128
#: The longest a request waits for an answer (etcd's own limit is 7 s with the
#: default 1 s election timeout).
TIMEOUT_S = 5.0
#: How long a small request waits at one endpoint before the next is tried.  A
#: healthy etcd answers in milliseconds (a few hundred at worst on a loaded machine,
#: and then the retry is harmless); what does not answer in this time was most
#: likely forwarded to a Raft leader that died, and will never be answered.
ATTEMPT_TIMEOUT_S = 0.5
#: Bytes per second a request's size adds to its attempt timeout (1 MB: +1 s).
BYTES_PER_S = 1_000_000
#: gRPC codes etcd answers when a member cannot serve now but another may
#: (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED "too many requests", UNAVAILABLE "no
#: leader", "leader changed", "request timed out").
_RETRYABLE_CODES = frozenset((4, 8, 14))
_JSON: dict[bytes | str, bytes | str] = {"Content-Type": "application/json"}


def _unavailable(code: int, answer: dict[str, Any], message: str) -> bool:
    """@return: whether an error answer means "try another member", not "refused"."""
    if code in (502, 503, 504):
        return True
    if answer.get("code") in _RETRYABLE_CODES:
        return True
    return "leader" in message or "timed out" in message or "proposal dropped" in message


class EtcdError(Exception):
    """etcd answered with an error (a bad request, a compacted revision, ...)."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered."""


class WatchCompacted(EtcdError):
    """A watch's start revision was compacted away; reload from a snapshot."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"watch revision compacted (compact revision {compact_revision})")
        self.compact_revision = compact_revision


def b64(data: bytes) -> str:
    """@return: C{data} as etcd's JSON gateway wants bytes."""
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """@return: the range end covering every key starting with C{prefix}."""
    end = bytearray(prefix)
    for index in range(len(end) - 1, -1, -1):
        if end[index] < 0xFF:
            end[index] += 1
            return bytes(end[: index + 1])
    return b"\x00"


class KeyValue:
    """One key as etcd returns it."""

    __slots__ = ("key", "value", "create_revision", "mod_revision", "version", "lease")

    def __init__(self, data: dict[str, Any]) -> None:
        self.key = _unb64(data.get("key"))
        self.value = _unb64(data.get("value"))
        self.create_revision = int(data.get("create_revision", 0))
        self.mod_revision = int(data.get("mod_revision", 0))
        self.version = int(data.get("version", 0))
        self.lease = int(data.get("lease", 0))


class Compare:
    """Builders of a txn's comparisons (etcd's C{Compare} message)."""

    @staticmethod
    def create_revision(key: bytes, revision: int) -> dict[str, Any]:
        """The key's create revision equals C{revision} (0: the key does not exist)."""
        return {
            "key": b64(key),
            "target": "CREATE",
            "result": "EQUAL",
            "create_revision": str(revision),
        }

    @staticmethod
    def mod_revision(key: bytes, revision: int) -> dict[str, Any]:
        """The key's last modification revision equals C{revision}."""
        return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def put_op(key: bytes, value: bytes, lease: int = 0) -> dict[str, Any]:
    """A txn operation putting C{value} at C{key}."""
    request: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        request["lease"] = str(lease)
    return {"request_put": request}


def range_op(key: bytes) -> dict[str, Any]:
    """A txn operation reading C{key}."""
    return {"request_range": {"key": b64(key)}}


def delete_op(key: bytes, range_end: bytes | None = None) -> dict[str, Any]:
    """A txn operation deleting C{key} (or C{[key, range_end)})."""
    request = {"key": b64(key)}
    if range_end is not None:
        request["range_end"] = b64(range_end)
    return {"request_delete_range": request}


class _Lines(protocol.Protocol):
    """Splits a streamed HTTP body into JSON messages, one per line."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        self._on_message = on_message
        self._buffer = b""
        self.finished: defer.Deferred = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while True:
            line, found, rest = self._buffer.partition(b"\n")
            if not found:
                return
            self._buffer = rest
            if line.strip():
                self._on_message(json.loads(line))

    def connectionLost(self, reason: Any = None) -> None:
        if self._buffer.strip():
            try:
                self._on_message(json.loads(self._buffer))
            except ValueError:
                pass
        self._buffer = b""
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(None)
        else:
            self.finished.errback(reason)


class Watch:
    """
    A streaming watch on a key range (etcd's C{/v3/watch}).

    C{on_events(events, revision)} gets each batch of events as
    C{(type, KeyValue)} pairs with type C{"PUT"} or C{"DELETE"}.

    @ivar done: fires with L{None} when the watch was cancelled, or fails: with
        L{WatchCompacted} when its start revision is gone, with another error when
        the stream broke (the caller re-watches from its last revision).
    """

    def __init__(self) -> None:
        self.done: defer.Deferred = defer.Deferred()
        self._lines: _Lines | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop watching; C{done} fires with L{None}."""
        self._cancelled = True
        self._stop_stream()
        if not self.done.called:
            self.done.callback(None)

    def _stop_stream(self) -> None:
        transport = getattr(self._lines, "transport", None)
        if transport is not None:
            try:
                transport.stopProducing()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def _finish(self, failure: Any = None) -> None:
        if self.done.called:
            return
        if self._cancelled:
            self.done.callback(None)
        elif failure is None:
            self.done.errback(EtcdUnavailable("the watch stream ended"))
        else:
            self.done.errback(failure)


class EtcdClient:
    """
    Calls on one etcd cluster, given its client URLs.

    @ivar endpoints: the client URLs.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        reactor: Any = None,
        timeout: float = TIMEOUT_S,
        attempt_timeout: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        """
        @param timeout: the longest one request may wait for an answer.
        @param attempt_timeout: how long a small request waits for an endpoint
            before the next one is tried (see L{call}).
        """
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if not endpoints:
            raise ValueError("no etcd endpoint given")
        self.endpoints = [endpoint.rstrip("/") for endpoint in endpoints]
        self._reactor: IReactorTime = reactor
        self._timeout = timeout
        self._attempt_s = attempt_timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 4
        self._preferred = 0
        from twisted.web.client import Agent

        self._http = HTTPClient(Agent(reactor, pool=self._pool))

    @defer.inlineCallbacks
    def _post(self, url: str, data: bytes):
        """@return: Deferred firing with C{(HTTP status, body)} of one POST."""
        response = yield self._http.post(url, data=data, headers=_JSON)
        text = yield response.content()
        return response.code, text

    def _attempt_timeout(self, size: int) -> float:
        """@return: how long one attempt sending C{size} bytes may take."""
        return min(self._attempt_s + size / BYTES_PER_S, self._timeout)

    @defer.inlineCallbacks
    def call(self, path: str, body: dict[str, Any], timeout: float | None = None):
        """
        POST C{body} to C{/v3/<path>} at the first endpoint that answers.

        An attempt that fails (connection refused or reset, etcd without a Raft
        leader) goes on to the next endpoint at once.  An attempt that does not
        answer within its timeout (L{ATTEMPT_TIMEOUT_S}, more for a big body, or
        C{timeout}) goes on too: a request a follower forwarded to a leader that
        just died is lost, and etcd itself would only answer "request timed out"
        after 5 s plus two election timeouts.  Only when every endpoint timed out
        (a cluster slow rather than a member dead) is one last attempt given the
        full timeout.  Retrying is safe for every request the data tier makes:
        appends are fenced and find their own slot when a first attempt landed
        after all; the rest are idempotent (puts, keep-alives, reads) or only
        cost a spare lease.

        @param timeout: how long each attempt may take (for requests known to be
            big or slow: snapshot chunks), instead of the short one.
        @return: Deferred firing with the decoded answer.
        @raise EtcdError: when etcd refused the request.
        @raise EtcdUnavailable: when no endpoint answered.
        """
        data = json.dumps(body).encode("utf-8")
        count = len(self.endpoints)
        attempt_s = self._attempt_timeout(len(data)) if timeout is None else timeout
        last_error: Exception | None = None
        timeouts = 0
        plan = [((self._preferred + attempt) % count, attempt_s) for attempt in range(count)]
        attempts = 0
        while attempts < len(plan):
            index, wait_s = plan[attempts]
            attempts += 1
            url = f"{self.endpoints[index]}/v3/{path}"
            try:
                code, text = yield self._post(url, data).addTimeout(wait_s, self._reactor)
            except defer.TimeoutError as failed:
                last_error = EtcdUnavailable(f"{url}: no answer in {wait_s:.2f} s")
                timeouts += 1
                if timeouts == count and wait_s < self._timeout:
                    # Every member is slow, none dead: one more try, with all the time.
                    plan.append((self._preferred, self._timeout))
                del failed
                continue
            except Exception as failed:  # noqa: BLE001 - any transport trouble: next one
                last_error = failed
                continue
            try:
                answer = json.loads(text) if text else {}
            except ValueError:
                last_error = EtcdError(f"{url}: not JSON: {text[:200]!r}")
                continue
            if code != 200 or "error" in answer and "header" not in answer:
                message = answer.get("message") or answer.get("error") or text[:200]
                if _unavailable(code, answer, str(message)):
                    # No Raft leader at this member right now, or it timed out: another.
                    last_error = EtcdUnavailable(f"{url}: {message}")
                    continue
                raise EtcdError(f"{url}: HTTP {code}: {message}")
            self._preferred = index
            return answer
        raise EtcdUnavailable(
            f"no etcd endpoint answered ({', '.join(self.endpoints)}): {last_error}"
        )

    @property
    def current_endpoint(self) -> str:
        """The endpoint the next call tries first (the last one that answered)."""
        return self.endpoints[self._preferred]

    # -- kv -----------------------------------------------------------------------

    @defer.inlineCallbacks
    def get(self, key: bytes):
        """@return: Deferred firing with the L{KeyValue} at C{key}, or L{None}."""
        answer = yield self.call("kv/range", {"key": b64(key)})
        kvs = answer.get("kvs") or []
        return KeyValue(kvs[0]) if kvs else None

    @defer.inlineCallbacks
    def get_prefix(
        self, prefix: bytes, start: bytes | None = None, limit: int = 0, revision: int = 0
    ):
        """
        Read keys starting with C{prefix} (from C{start} on), in key order.  Each
        attempt may take the full timeout: the answer may be megabytes (log pages,
        snapshot chunks), and no write waits for it.

        @return: Deferred firing with C{(list of KeyValue, more, header revision)}.
        """
        body: dict[str, Any] = {
            "key": b64(start if start is not None else prefix),
            "range_end": b64(prefix_end(prefix)),
        }
        if limit:
            body["limit"] = str(limit)
        if revision:
            body["revision"] = str(revision)
        answer = yield self.call("kv/range", body, timeout=self._timeout)
        kvs = [KeyValue(data) for data in answer.get("kvs") or []]
        return kvs, bool(answer.get("more")), int(answer["header"]["revision"])

    @defer.inlineCallbacks
    def put(self, key: bytes, value: bytes, lease: int = 0):
        """@return: Deferred firing with the revision of the put."""
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        answer = yield self.call("kv/put", body)
        return int(answer["header"]["revision"])

    @defer.inlineCallbacks
    def delete_range(self, key: bytes, range_end: bytes):
        """Delete C{[key, range_end)}; @return: Deferred firing with how many went."""
        answer = yield self.call("kv/deleterange", {"key": b64(key), "range_end": b64(range_end)})
        return int(answer.get("deleted", 0))

    @defer.inlineCallbacks
    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ):
        """
        One atomic transaction.

        @return: Deferred firing with C{(succeeded, header revision, responses)}.
        """
        if max(len(compare), len(success), len(failure or ())) > MAX_TXN_OPS:
            raise EtcdError(f"a txn takes at most {MAX_TXN_OPS} operations per list")
        answer = yield self.call(
            "kv/txn", {"compare": compare, "success": success, "failure": failure or []}
        )
        return (
            bool(answer.get("succeeded")),
            int(answer["header"]["revision"]),
            answer.get("responses") or [],
        )

    @defer.inlineCallbacks
    def compact(self, revision: int):
        """Compact the key history up to C{revision} (a compacted one is fine)."""
        try:
            yield self.call("kv/compaction", {"revision": str(revision), "physical": False})
        except EtcdError as failed:
            if "compacted" not in str(failed):
                raise

    # -- leases ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def grant(self, ttl_s: int):
        """@return: Deferred firing with a new lease id of C{ttl_s} seconds."""
        answer = yield self.call("lease/grant", {"TTL": str(ttl_s)})
        return int(answer["ID"])

    @defer.inlineCallbacks
    def keep_alive(self, lease: int):
        """
        Renew a lease once.

        @return: Deferred firing with its remaining TTL in seconds (0 or less: it
            is gone).
        """
        answer = yield self.call("lease/keepalive", {"ID": str(lease)})
        result = answer.get("result") or {}
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> defer.Deferred:
        """Revoke a lease (its keys go at once)."""
        return self.call("lease/revoke", {"ID": str(lease)})

    # -- maintenance -----------------------------------------------------------------

    @defer.inlineCallbacks
    def status(self, endpoint: str):
        """
        @return: Deferred firing with one member's status (C{dbSize}, C{leader},
            C{version}, C{header}) as etcd gives it.
        """
        response = yield self._http.post(
            f"{endpoint.rstrip('/')}/v3/maintenance/status", json={}, timeout=self._timeout
        )
        text = yield response.content()
        return json.loads(text)

    # -- watch -----------------------------------------------------------------------

    def watch_prefix(
        self,
        prefix: bytes,
        start_revision: int,
        on_events: Callable[[list[tuple[str, KeyValue]], int], None],
    ) -> Watch:
        """
        Watch every key under C{prefix} from C{start_revision} on (a streaming POST
        held open; events arrive as etcd commits them).

        @return: a L{Watch}.
        """
        watch = Watch()
        body = {
            "create_request": {
                "key": b64(prefix),
                "range_end": b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }

        def on_message(message: dict[str, Any]) -> None:
            if watch._cancelled:
                return
            result = message.get("result")
            if result is None:
                if "error" in message:
                    watch._finish(EtcdError(str(message["error"])))
                return
            compacted = int(result.get("compact_revision", 0))
            if compacted:
                watch._finish(WatchCompacted(compacted))
                watch._stop_stream()
                return
            if result.get("canceled"):
                watch._finish(EtcdUnavailable(result.get("cancel_reason", "watch canceled")))
                return
            events = [
                (event.get("type", "PUT"), KeyValue(event.get("kv") or {}))
                for event in result.get("events") or []
            ]
            revision = int((result.get("header") or {}).get("revision", 0))
            if events:
                on_events(events, revision)

        endpoint = self.endpoints[self._preferred]
        # No timeout: the stream is meant to stay open.
        requested = self._http.post(f"{endpoint}/v3/watch", json=body)

        def connected(response: Any) -> Any:
            lines = _Lines(on_message)
            watch._lines = lines
            response.deliverBody(lines)
            if watch._cancelled:
                watch._stop_stream()
            return lines.finished

        requested.addCallback(connected)
        requested.addCallbacks(lambda _: watch._finish(), watch._finish)
        return watch

    def close(self) -> defer.Deferred:
        """Close the pooled connections."""
        return self._pool.closeCachedConnections()
