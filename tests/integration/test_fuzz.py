"""
Bounded fuzzing of the wire: garbage and mangled frames must never hurt other sessions.

A fixed-seed generator throws a few thousand hostile connections at a running server:
random bytes, bit-flipped and truncated handshakes, length prefixes that lie, oversize
and negative lengths, requests before any handshake, a valid handshake followed by
garbage or by mutated requests, half frames then close, and reconnect attempts that
name the victim's session with a wrong password.  Meanwhile a kazoo session holding an
ephemeral node and some data keeps working; at the end the server answers C{ruok}, the
session is the same one, and every byte of its data is still there.

DESIGN.md: "Bad input gets a clear ZooKeeper error code or a closed connection, never a
crashed reactor, never a lost or half-applied write."  The same test runs against
Apache ZooKeeper to show the expectations are ZooKeeper's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
import struct
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.differential import Normaliser, compare
from tests.support.rawclient import RawClient, describe_trace
from tests.support.servers import (
    ServerProcess,
    ZkregServer,
    ZooKeeperOracle,
    unavailable_reason,
)
from tests.support.waiting import wait_until
from zkreg.proto.consts import OpCode
from zkreg.proto.records import (
    ACL,
    AddWatchRequest,
    CheckVersionRequest,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    Id,
    RequestHeader,
    SetACLRequest,
    SetDataRequest,
    SyncRequest,
)

pytestmark = pytest.mark.timeout(180)

SEED = 20261124
#: Hostile connections per run, and a wall-clock bound on the loop.
FRAMES = 4000
TIME_BUDGET_S = 30.0
#: Every this many connections, the victim session must still read and write.
CHECK_EVERY = 250
#: Paths the mutated requests aim at: far (in bits) from the victim's, so a flipped
#: bit cannot turn a fuzz write into a write to the data under test.
FUZZ_ROOT = "/zz"
OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def frame(payload: bytes) -> bytes:
    """@return: C{payload} behind its 4-byte big-endian length."""
    return struct.pack(">i", len(payload)) + payload


def handshake(session_id: int = 0, password: bytes = b"\0" * 16, timeout_ms: int = 10000) -> bytes:
    """@return: a ConnectRequest frame."""
    return frame(ConnectRequest(0, 0, timeout_ms, session_id, password, False).serialize())


def request(xid: int, opcode: int, record: object | None) -> bytes:
    """@return: a request frame."""
    body = RequestHeader(xid, opcode).serialize()
    if record is not None:
        body += record.serialize()  # type: ignore[attr-defined]
    return frame(body)


def sample_requests(rng: random.Random) -> list[bytes]:
    """@return: a few valid requests on the fuzz paths, to be mutated."""
    path = f"{FUZZ_ROOT}/n{rng.randrange(50)}"
    data = rng.randbytes(rng.randrange(0, 64))
    return [
        request(1, OpCode.getData, GetDataRequest(path, rng.random() < 0.5)),
        request(2, OpCode.create, CreateRequest(path, data, OPEN_ACL, rng.choice([0, 1, 2, 3]))),
        request(3, OpCode.setData, SetDataRequest(path, data, -1)),
        request(4, OpCode.exists, GetDataRequest(path, True)),
        request(5, OpCode.getChildren, GetDataRequest(FUZZ_ROOT, True)),
    ]


def flip_bits(rng: random.Random, data: bytes, count: int) -> bytes:
    """@return: C{data} with C{count} random bits inverted."""
    mutable = bytearray(data)
    for _ in range(count):
        index = rng.randrange(len(mutable) * 8)
        mutable[index // 8] ^= 1 << (index % 8)
    return bytes(mutable)


class Attack:
    """
    One hostile connection: the bytes to send and whether the server must close it.

    @ivar name: the kind of mangling, for the failure report.
    @ivar payload: what is written.
    @ivar must_close: the server is required to hang up (e.g. a length over the limit).
    @ivar must_refuse_session: the first reply, if any, must be a refusal (timeOut 0):
        the handshake named another client's session with a wrong password.
    @ivar linger: read the replies until the server goes quiet before closing, so the
        server answers while the client is still there (most attacks hang up at once).
    """

    def __init__(
        self,
        name: str,
        payload: bytes,
        must_close: bool = False,
        must_refuse_session: bool = False,
        linger: bool = False,
    ) -> None:
        self.name = name
        self.payload = payload
        self.must_close = must_close
        self.must_refuse_session = must_refuse_session
        self.linger = linger


def make_attack(rng: random.Random, victim_session: int) -> Attack:
    """Pick one mangling at random (from C{rng}, so the run is reproducible)."""
    kind = rng.randrange(12)
    valid = handshake()
    if kind == 0:
        return Attack("random bytes", rng.randbytes(rng.randrange(1, 300)))
    if kind == 1:
        return Attack("bit-flipped handshake", flip_bits(rng, valid, rng.randrange(1, 6)))
    if kind == 2:
        return Attack("truncated handshake", valid[: rng.randrange(1, len(valid))])
    if kind == 3:
        lie = len(valid) - 4 + rng.choice([-20, -5, -1, 1, 7, 1000])
        return Attack("lying length", struct.pack(">i", max(lie, 0)) + valid[4:])
    if kind == 4:
        size = rng.choice([1048576 + 1, 0x7FFFFFFF, 50_000_000])
        return Attack("oversize length", struct.pack(">i", size) + rng.randbytes(64), True)
    if kind == 5:
        size = rng.choice([-1, -4, -0x80000000])
        return Attack("negative length", struct.pack(">i", size) + rng.randbytes(16), True)
    if kind == 6:
        return Attack("request before handshake", rng.choice(sample_requests(rng)))
    if kind == 7:
        garbage = frame(rng.randbytes(rng.randrange(0, 100)))
        return Attack("handshake then garbage frame", valid + garbage, linger=rng.random() < 0.1)
    if kind == 8:
        mutated = b"".join(
            flip_bits(rng, r, rng.randrange(1, 4)) for r in rng.sample(sample_requests(rng), 3)
        )
        return Attack("handshake then mutated requests", valid + mutated, linger=rng.random() < 0.1)
    if kind == 9:
        whole = valid + b"".join(sample_requests(rng))
        return Attack("half frame then close", whole[: rng.randrange(len(valid) + 1, len(whole))])
    if kind == 10:
        password = rng.randbytes(16)
        return Attack(
            "victim's session id, wrong password",
            handshake(victim_session, password),
            must_refuse_session=True,
        )
    word = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(4))
    return Attack("random four letters", word)


def _drain_until_quiet(conn: socket.socket, quiet: float = 0.05, limit: float = 1.0) -> None:
    """Read until the server closes, stays silent for C{quiet} s, or C{limit} s pass."""
    conn.settimeout(quiet)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if not conn.recv(65536):
                return
        except (TimeoutError, OSError):
            return


def deliver(port: int, attack: Attack) -> str | None:
    """
    Send one attack; for those with a required outcome, wait for it.

    @return: a description of a violated requirement, or None.
    """
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    except OSError as failure:
        return f"{attack.name}: could not connect: {failure!r}"
    with conn:
        try:
            conn.sendall(attack.payload)
        except OSError:
            return None  # the server hung up mid-send: acceptable for any attack
        if attack.linger:
            _drain_until_quiet(conn)
        if not (attack.must_close or attack.must_refuse_session):
            return None
        received = bytearray()
        deadline = time.monotonic() + 5.0
        conn.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                break
            received += chunk
        else:
            return f"{attack.name}: connection still open after 5 s"
        if attack.must_refuse_session and len(received) >= 4:
            response, _ = ConnectResponse.deserialize(bytes(received[4:]), 0)
            if response.timeOut > 0:
                return f"{attack.name}: session granted (timeOut={response.timeOut})"
    return None


@pytest.fixture(scope="module", params=["zookeeper", "zkreg"])
def fuzz_target(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """
    A private server per kind, with no per-IP connection limit: thousands of
    connections from 127.0.0.1 in a few seconds would otherwise be refused (ZooKeeper's
    maxClientCnxns is 60), and the junk the fuzz creates stays out of shared servers.
    """
    reason = unavailable_reason(request.param)
    if reason is not None:
        pytest.skip(f"{request.param} unavailable: {reason}")
    if request.param == "zookeeper":
        server: ServerProcess = ZooKeeperOracle(extra_config={"maxClientCnxns": "0"})
    else:
        server = ZkregServer(extra_args=["--max-client-cnxns", "0"])
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def victim(fuzz_target, kazoo_client):
    """A kazoo session with data, children and an ephemeral, and what it wrote."""
    client = kazoo_client(fuzz_target)
    base = f"/victim_{uuid.uuid4().hex[:8]}"
    expected = {base: b"root-data", f"{base}/a": bytes(range(256)), f"{base}/b": b""}
    for path, data in expected.items():
        client.create(path, data)
    ephemeral = f"{base}/eph"
    client.create(ephemeral, b"mine", ephemeral=True)
    expected[ephemeral] = b"mine"
    client.ensure_path(FUZZ_ROOT)
    return client, base, expected


def check_victim(client, base: str, expected: dict[str, bytes], session_id: int) -> None:
    """
    The victim's session is the same, its data intact, and it can still write.

    The victim may have been disconnected for a moment: ZooKeeper closes a session's
    current connection as soon as a handshake names that session, before it checks the
    password (C{ZooKeeperServer.processConnectRequest}), so a hijack attempt kicks the
    victim, which reconnects to the same session.  What must not happen is the session
    ending or changing.
    """
    retry = client.retry  # rides over a connection loss, fails on session expiry
    for path, data in expected.items():
        value, _ = retry(client.get, path)
        assert value == data, path
    assert retry(client.exists, f"{base}/eph").ephemeralOwner == session_id
    assert sorted(retry(client.get_children, base)) == ["a", "b", "eph"]
    assert retry(client.set, f"{base}/b", b"").dataLength == 0
    wait_until(lambda: client.connected, timeout=20.0, message="victim reconnected")
    assert client.client_id[0] == session_id, "victim's session changed"


def test_fuzzed_connections_do_not_hurt_other_sessions(fuzz_target, victim) -> None:
    """
    A few thousand mangled connections (fixed seed, bounded time): the server stays
    up, hangs up on impossible lengths, refuses session hijacks, and the victim
    session keeps its id, its ephemeral and its data, and can still read and write.
    """
    client, base, expected = victim
    session_id = client.client_id[0]
    rng = random.Random(SEED)
    violations: list[str] = []
    counts: dict[str, int] = {}
    started = time.monotonic()
    sent = 0
    while sent < FRAMES and time.monotonic() - started < TIME_BUDGET_S:
        attack = make_attack(rng, session_id)
        counts[attack.name] = counts.get(attack.name, 0) + 1
        problem = deliver(fuzz_target.port, attack)
        if problem:
            violations.append(problem)
        sent += 1
        if sent % CHECK_EVERY == 0:
            check_victim(client, base, expected, session_id)
    assert fuzz_target.is_running(), fuzz_target.log_tail()
    assert fuzz_target.four_letter("ruok") == "imok"
    assert not violations, violations[:10]
    check_victim(client, base, expected, session_id)
    assert sent >= 500, f"only {sent} connections in {TIME_BUDGET_S}s: {counts}"


def test_fresh_client_after_fuzzing_sees_everything(fuzz_target, victim, kazoo_client) -> None:
    """After a burst of garbage, a new client connects and reads the victim's data."""
    client, base, expected = victim
    session_id = client.client_id[0]
    rng = random.Random(SEED + 1)
    for _ in range(300):
        deliver(fuzz_target.port, make_attack(rng, session_id))
    fresh = kazoo_client(fuzz_target)
    for path, data in expected.items():
        assert fresh.get(path)[0] == data
    check_victim(client, base, expected, session_id)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=200), declared=st.integers(-(2**31), 2**31 - 1))
def test_any_frame_after_handshake_is_survived(fuzz_target, body: bytes, declared: int) -> None:
    """
    Hypothesis: a valid handshake then one frame of arbitrary bytes with an arbitrary
    declared length never takes the server down.
    """
    payload = handshake() + struct.pack(">i", declared) + body
    with socket.create_connection(("127.0.0.1", fuzz_target.port), timeout=5.0) as conn:
        try:
            conn.sendall(payload)
        except OSError:
            pass
    assert fuzz_target.four_letter("ruok") == "imok"


# -- differential: random operations, ZooKeeper's answers as the oracle ----------------

#: Random operations per seed, and the seeds.
PROGRAM_STEPS = 800
PROGRAM_SEEDS = (1, 2, 3, 4, 5)


def random_path(rng: random.Random, root: str) -> str:
    """
    A path in a small tree under C{root} (so ops collide), sometimes malformed.  Never
    "/" or "" (which ZooKeeper reads as the root): other tests' nodes live there.
    """
    roll = rng.random()
    if roll < 0.04:
        return rng.choice(["rel/a", f"{root}/a/", f"{root}//a", f"{root}/./a"])
    depth = rng.choice([0, 1, 1, 2, 2, 3])
    return root + "".join("/" + rng.choice("ab") for _ in range(depth))


#: Digest users the random programs authenticate as: user -> password.
DIGEST_USERS = {"alice": "apw", "bob": "bpw"}


def digest_id(user: str) -> str:
    """@return: ZooKeeper's digest id C{user:base64(sha1(user:password))}."""
    secret = f"{user}:{DIGEST_USERS[user]}".encode()
    return f"{user}:{base64.b64encode(hashlib.sha1(secret).digest()).decode()}"


def random_acl(rng: random.Random) -> list:
    """
    Mostly open; sometimes read-only, empty (InvalidACL), creator-only (needs auth),
    or one digest user's (NoAuth for the others).
    """
    roll = rng.random()
    if roll < 0.80:
        return OPEN_ACL
    if roll < 0.86:
        return [ACL(1, Id("world", "anyone"))]
    if roll < 0.89:
        return []
    if roll < 0.94:
        return [ACL(31, Id("auth", ""))]
    user = rng.choice(sorted(DIGEST_USERS))
    return [ACL(rng.choice([31, 1, 17]), Id("digest", digest_id(user)))]


def random_op(rng: random.Random, root: str) -> tuple[str, int, object]:
    """@return: C{(label, opcode, record)} of one random request."""
    path = random_path(rng, root)
    data = None if rng.random() < 0.05 else rng.randbytes(rng.randrange(0, 6))
    version = rng.choice([-1, -1, 0, 1, 2, 5])
    watch = rng.random() < 0.5
    kind = rng.choice(
        ["create"] * 6 + ["delete"] * 3 + ["set"] * 3 + ["get"] * 2 + ["exists"] * 2
        + ["children", "children2", "acl", "setacl", "multi", "count", "ephemerals",
           "addwatch", "sync", "create2", "ttl"]
    )  # fmt: skip
    # No standalone check: ZooKeeper 3.8.0 answers it only when it fails, so a waiting
    # client cannot tell "passed" from "lost"; it is exercised inside multi.  No
    # containers and no TTLs that can expire: both servers reap those from a timer, so
    # when they vanish depends on timing, not on the program.
    if kind in ("create", "create2"):
        flags = rng.choice([0, 0, 0, 1, 1, 2, 3, 5, -1, 7])
        opcode = OpCode.create if kind == "create" else OpCode.create2
        return kind, opcode, CreateRequest(path, data, random_acl(rng), flags)
    if kind == "ttl":
        ttl = rng.choice([0, -5, 3_600_000, 2**41])  # invalid, or too long to expire here
        return kind, OpCode.createTTL, CreateTTLRequest(path, data, OPEN_ACL, 5, ttl)
    if kind == "delete":
        return kind, OpCode.delete, DeleteRequest(path, version)
    if kind == "set":
        return kind, OpCode.setData, SetDataRequest(path, data or b"", version)
    if kind == "get":
        return kind, OpCode.getData, GetDataRequest(path, watch)
    if kind == "exists":
        return kind, OpCode.exists, ExistsRequest(path, watch)
    if kind == "children":
        return kind, OpCode.getChildren, GetChildrenRequest(path, watch)
    if kind == "children2":
        return kind, OpCode.getChildren2, GetChildren2Request(path, watch)
    if kind == "acl":
        return kind, OpCode.getACL, GetACLRequest(path)
    if kind == "setacl":
        return kind, OpCode.setACL, SetACLRequest(path, random_acl(rng), version)
    if kind == "count":
        return kind, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(path)
    if kind == "ephemerals":
        return kind, OpCode.getEphemerals, GetEphemeralsRequest(path)
    if kind == "addwatch":
        return kind, OpCode.addWatch, AddWatchRequest(path, rng.choice([0, 1, 2]))
    if kind == "sync":
        return kind, OpCode.sync, SyncRequest(path)
    ops: list[tuple[int, object]] = []
    for _ in range(rng.randrange(1, 4)):
        sub_path = random_path(rng, root)
        sub = rng.choice(["create", "delete", "set", "check"])
        if sub == "create":
            ops.append((OpCode.create, CreateRequest(sub_path, b"m", OPEN_ACL, rng.choice([0, 1]))))
        elif sub == "delete":
            ops.append((OpCode.delete, DeleteRequest(sub_path, rng.choice([-1, 0, 1]))))
        elif sub == "set":
            ops.append((OpCode.setData, SetDataRequest(sub_path, b"s", rng.choice([-1, 0, 1]))))
        else:
            ops.append((OpCode.check, CheckVersionRequest(sub_path, rng.choice([-1, 0, 1]))))
    return kind, OpCode.multi, ops


def _sorted_children(view: object) -> object:
    """
    Children and ephemeral lists compared as sets: ZooKeeper returns them in a hash
    order, and the ephemerals' order hashes whole paths, which start with a random root.
    """
    if isinstance(view, dict):
        return {
            key: sorted(value)
            if key in ("children", "ephemerals") and isinstance(value, list)
            else _sorted_children(value)
            for key, value in view.items()
        }
    if isinstance(view, list):
        return [_sorted_children(item) for item in view]
    return view


def _event_runs_sorted(trace: list) -> list:
    """
    The order of replies and events a client saw, each run of events between two
    replies sorted: when a session closes, ZooKeeper deletes its ephemerals in a hash
    order of their paths (which start with a random root), so only the set of events
    in a run is comparable; runs and replies keep their order.
    """
    view: list = []
    run: list = []
    for entry in describe_trace(trace):
        if entry[0] == "event":
            run.append(json.dumps(entry[1], sort_keys=True))
            continue
        view.extend(["event", json.loads(event)] for event in sorted(run))
        run = []
        view.append(list(entry))
    view.extend(["event", json.loads(event)] for event in sorted(run))
    return view


def run_program(server: ServerProcess, seed: int, steps: int) -> list[tuple[str, object]]:
    """
    Play one seeded random program over two sessions (A and B; B is sometimes
    replaced by a new session, so its ephemerals go) and record every reply and event.

    @return: the recording, normalised (zxids by rank, sessions by order, times, root).
    """
    rng = random.Random(seed)
    root = f"/difz_{uuid.uuid4().hex[:8]}"
    started_ms = int(time.time() * 1000) - 1000
    clients = {"A": RawClient(server.port), "B": RawClient(server.port)}
    sessions = []
    for client in clients.values():
        client.connect()
        sessions.append(client.session_id)
    # The program works below root/t, never directly under "/": a sequential create
    # of root/t is numbered by its parent's cversion, which must be private.
    recording: list[tuple[str, object]] = [
        ("create root", clients["A"].create(root).describe_for_diff())
    ]
    universe = f"{root}/t"
    try:
        for step in range(steps):
            if rng.random() < 0.02:
                clients["B"].close()
                clients["B"] = RawClient(server.port)
                clients["B"].connect()
                sessions.append(clients["B"].session_id)
                recording.append((f"{step} B: new session", None))
                continue
            name = rng.choice("AB")
            if rng.random() < 0.02:
                user = rng.choice(sorted(DIGEST_USERS))
                password = DIGEST_USERS[user] if rng.random() < 0.8 else "wrong"
                secret = f"{user}:{password}".encode()
                reply = clients[name].add_auth("digest", secret)
                recording.append((f"{step} {name}: auth {user}", reply.describe_for_diff()))
                continue
            label, opcode, record = random_op(rng, universe)
            reply = clients[name].call(opcode, record)
            recording.append(
                (f"{step} {name}: {label}", _sorted_children(reply.describe_for_diff()))
            )
        for name, client in clients.items():
            client.settle()
            recording.append((f"replies and events of {name}", _event_runs_sorted(client.trace)))
    finally:
        for client in clients.values():
            client.close()
    window = (started_ms, int(time.time() * 1000) + 1000)
    return Normaliser(root, window, sessions).normalise(recording)


@pytest.mark.parametrize("seed", PROGRAM_SEEDS)
def test_random_operations_answer_as_zookeeper(zk_oracle, zkreg_server, seed: int) -> None:
    """
    A seeded random mix of every kind of request over two sessions, with colliding
    paths, bad versions, bad flags, bad ACLs, malformed paths, watches of every kind and
    a session replaced now and then: zkreg answers every step as ZooKeeper does (error
    code, body, stats with zxids by rank) and delivers the same events in the same order.
    """
    expected = run_program(zk_oracle, seed, PROGRAM_STEPS)
    actual = run_program(zkreg_server, seed, PROGRAM_STEPS)
    differences = compare(expected, actual)
    assert not differences, f"{len(differences)} steps differ:\n" + "\n".join(differences[:8])
