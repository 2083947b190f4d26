"""
Seeded random operation sequences: the same pseudo-random program of creates (every
mode but container, whose deletion is timed by a background sweep), deletes, sets,
setACLs, checks inside multis, reads with watches, from two sessions, one of which
is closed and replaced midway.  Each seed is one scenario; every reply, every
event and the final tree are recorded.

The sequential variants wait for each reply; the pipelined ones send a whole batch
before reading, so every write is checked against the writes still in flight; the
restarted ones kill -9 the server a third of the way through and resume every
session (private servers, see C{Scenario.restarts}).
"""

from __future__ import annotations

import random
from typing import Any

from tests.integration.scenarios._ops import (
    OPEN,
    acl,
    op_check,
    op_create,
    op_delete,
    op_set,
    op_ttl,
)
from tests.support.differential import ScenarioContext, scenario
from tests.support.rawclient import RawClient, describe_trace
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

#: Shallow names drawn more often, so deeper creates find their parents.
NAMES = ["a", "b", "c", "a", "b", "a", "a/x", "a/y", "b/x", "a/x/p", "b/x/q", "a/x"]
#: u:p's digest id (base64 sha1 of "u:p"), for ACLs only session C can pass.
DIGEST_UP = (
    "u:" + __import__("base64").b64encode(__import__("hashlib").sha1(b"u:p").digest()).decode()
)
ACLS = [
    OPEN,
    OPEN,
    OPEN,
    [acl(1)],
    [acl(31 & ~8)],
    [acl(31 & ~4)],
    [acl(31 & ~2)],
    [acl(31, "digest", DIGEST_UP)],
    [acl(31, "auth", "")],
    [acl(1), acl(31, "digest", DIGEST_UP)],
]
SEEDS_SEQUENTIAL = 40
SEEDS_PIPELINED = 30
SEEDS_RESTARTED = 6
OPS_PER_PROGRAM = 70


def _random_write(rng: random.Random, root: str) -> tuple[int, Any]:
    path = f"{root}/{rng.choice(NAMES)}"
    kind = rng.randrange(11)
    if kind < 5:
        flags = rng.choice([0, 0, 0, 1, 2, 3])
        data = rng.choice([b"", b"d", None, bytes(rng.randrange(256) for _ in range(5))])
        return op_create(path, data, flags, rng.choice(ACLS))
    if kind < 6:
        return op_ttl(path, 600000, rng.choice([5, 6]))
    if kind < 8:
        return op_delete(path, rng.choice([-1, -1, 0, 1, 2]))
    if kind < 10:
        return op_set(path, rng.choice([b"x", b"", b"yy"]), rng.choice([-1, -1, 0, 1, 2]))
    return op_check(path, rng.choice([-1, 0, 1]))


def _random_request(rng: random.Random, root: str, with_set_acl: bool = True) -> tuple[int, Any]:
    """
    One request: (opcode, record) - a write, a multi, a read or (if allowed) a setACL.

    Pipelined programs leave setACL out: ZooKeeper 3.8 records an in-flight setACL
    without its new ACL, so whether a request pipelined behind it is judged by the
    old or the new ACL depends on whether the setACL has committed yet - a race in
    ZooKeeper itself, which no differential check can pin down.
    """
    roll = rng.randrange(20)
    if roll == 12 and not with_set_acl:
        roll = 13
    path = f"{root}/{rng.choice(NAMES)}"
    if roll < 9:
        opcode, record = _random_write(rng, root)
        if opcode == OpCode.check:
            return OpCode.multi, [(opcode, record)]
        return opcode, record
    if roll < 12:
        return OpCode.multi, [_random_write(rng, root) for _ in range(rng.randrange(1, 5))]
    if roll < 13:
        version = rng.choice([-1, 0, 1])
        return OpCode.setACL, R.SetACLRequest(path, list(rng.choice(ACLS)), version)
    if with_set_acl and roll == 19 and rng.random() < 0.6:
        # watch management (sequential programs only): persistent/recursive watches,
        # checkWatches and removeWatches of a random type
        choice = rng.randrange(3)
        if choice == 0:
            return OpCode.addWatch, R.AddWatchRequest(path, rng.choice([0, 1]))
        if choice == 1:
            return OpCode.checkWatches, R.CheckWatchesRequest(path, rng.choice([1, 2, 3]))
        return OpCode.removeWatches, R.RemoveWatchesRequest(path, rng.choice([1, 2, 3]))
    watch = rng.random() < 0.4
    reads = [
        (OpCode.exists, R.ExistsRequest(path, watch)),
        (OpCode.getData, R.GetDataRequest(path, watch)),
        (OpCode.getChildren2, R.GetChildren2Request(path, watch)),
        (OpCode.getACL, R.GetACLRequest(path)),
        (OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest(root)),
    ]
    return rng.choice(reads)


def _view(reply: Any) -> Any:
    """A reply with child lists sorted (ZooKeeper does not order them)."""
    body = reply.body
    if body is not None and hasattr(body, "children"):
        return {
            "err": reply.err,
            "children": sorted(body.children),
            "stat": getattr(body, "stat", None),
        }
    return reply


def _final_tree(ctx: ScenarioContext, raw: RawClient) -> list:
    nodes: list = []

    def walk(path: str) -> None:
        got = raw.get_data(path)
        nodes.append((path, got, raw.get_acl(path)))
        kids = raw.get_children(path)
        if kids.ok:
            for kid in sorted(kids.body.children):
                walk(f"{path}/{kid}")

    walk(ctx.root)
    return nodes


def _run_sequential(ctx: ScenarioContext, seed: int, restart: bool = False) -> None:
    rng = random.Random(seed)
    a = ctx.raw()
    a.create(ctx.root)
    b = ctx.raw()
    c = ctx.raw()
    c.add_auth("digest", b"u:p")
    sessions = {"A": a, "B": b, "C": c}
    for step in range(OPS_PER_PROGRAM):
        if restart and step == OPS_PER_PROGRAM // 3:
            # kill -9 and recover; every session resumes (C adds its auth again)
            ctx.restart(hard=True)
            for who, raw in sessions.items():
                ctx.record(f"{who} resumed", raw.connect().timeout_ms)
            c.add_auth("digest", b"u:p")
        if step == OPS_PER_PROGRAM // 2:
            b.close()
            sessions["B"] = b = ctx.raw()
            ctx.record("B replaced", step)
        who = rng.choice("AABC")
        opcode, record = _random_request(rng, ctx.root)
        reply = sessions[who].call(opcode, record)
        ctx.record(f"{step} {who} {OpCode(opcode).name}", _view(reply))
    for who, raw in sessions.items():
        raw.settle()
        ctx.record(f"trace {who}", describe_trace(raw.trace))
    ctx.record("final tree", _final_tree(ctx, a))


def _run_pipelined(ctx: ScenarioContext, seed: int) -> None:
    rng = random.Random(seed)
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.trace.clear()
    xids = [
        raw.submit(*_random_request(rng, ctx.root, with_set_acl=False))
        for _ in range(OPS_PER_PROGRAM)
    ]
    raw.wait_reply(xids[-1], 30.0)
    ctx.record("trace", describe_trace(raw.trace))
    ctx.record("replies", [_view(item) for kind, item in raw.trace if kind == "reply"])
    ctx.record("final tree", _final_tree(ctx, raw))


def _register(seed: int, pipelined: bool, restart: bool = False) -> None:
    def run(ctx: ScenarioContext) -> None:
        if pipelined:
            _run_pipelined(ctx, seed)
        else:
            _run_sequential(ctx, seed, restart)

    mode = "pipelined" if pipelined else ("restarted" if restart else "sequential")
    run.__doc__ = f"Random program (seed {seed}), {mode}: every reply, event and the final tree."
    scenario(f"random_{mode}_seed{seed:02d}", restarts=restart)(run)


for _seed in range(SEEDS_SEQUENTIAL):
    _register(_seed, False)
for _seed in range(SEEDS_PIPELINED):
    _register(100 + _seed, True)
for _seed in range(SEEDS_RESTARTED):
    _register(200 + _seed, False, restart=True)
