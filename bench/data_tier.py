"""
Micro-benchmark of the data tier alone: a L{DataServer} driven through an
L{InProcessDataLink}, no network, no session server, no reactor (a C{task.Clock}).

It measures what the data tier itself costs per operation, the part of a pipelined
write or read that H5's profile attributed to C{DataServer.submit} and its Deferred
chain, C{perform_read} and record construction:

  - C{setData}: N setData (100-byte value) on one node, all submitted before any
    answer is looked at (the pipelined shape), through C{link.submit};
  - C{create}: N persistent sequential creates under one parent (OPEN_ACL_UNSAFE);
  - C{getData}: N C{perform_read} of a getData on the tree (the session server's
    local read);
  - C{getData-session}: the same with a L{Request} built per read, as the session
    server's reader does; C{getData-answer}: through C{answer_read} (no Request,
    no Outcome; C{nan} against a tree that lacks it);
  - C{getData-submit}: N getData through C{link.submit} (a read ordered behind writes);
  - C{setData-batch64} / C{create-batch64}: the same writes over a log that
    acknowledges in batches of 64 (L{ManualLog}), the shape of the file WAL's group
    commit;
  - C{*-cb}: the same through C{link.submit_with_callback} (no Deferred per write;
    C{nan} against a tree that lacks it).

One no-op commit listener is subscribed, as the session server always is.  Each
workload runs C{--repeat} times on a fresh server and the best time is reported
(the machine is shared: the minimum is the least disturbed run).  Times are the
process's CPU time (C{time.process_time}), so time spent descheduled while other
processes run does not count.

Run: C{python -m bench.data_tier [-n N] [--repeat R] [--only a,b] [--json PATH]}.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.reads import perform_read
from zkreg.data.server import DataServer
from zkreg.link.inprocess import InProcessDataLink
from zkreg.persistence.memlog import ManualLog, MemoryLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, GetDataRequest, Id, SetDataRequest

_AUTH = (Id("ip", "127.0.0.1"),)
_VALUE = b"x" * 100
_BATCH = 64


class _Listener:
    """A commit listener that only counts, standing in for the session server."""

    def __init__(self) -> None:
        self.commits = 0

    def committed(self, commit: Any) -> None:
        self.commits += 1


class _Setup:
    """A fresh server with one live session and the nodes the workloads use."""

    def __init__(self, log: Any) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.server = DataServer(ServerConfig(), log=log, clock=self.clock)
        self.link = InProcessDataLink(self.server)
        self.listener = _Listener()
        self.link.subscribe(self.listener)
        grants: list[Any] = []
        self.link.create_session(30000).addCallback(grants.append)
        self._flush()
        self.session_id = grants[0].session_id
        self.cxid = 0
        for path in ("/node", "/queue"):
            self.submit(codes.OP_CREATE, CreateRequest(path, _VALUE, list(OPEN_ACL_UNSAFE), 0))
        self._flush()

    def _flush(self) -> None:
        log = self.server.log
        if isinstance(log, ManualLog):
            log.flush()

    def submit(self, opcode: int, record: Any) -> Any:
        self.cxid += 1
        return self.link.submit(Request(self.session_id, self.cxid, opcode, record, _AUTH))


def _write_workload(
    opcode: int, make_record: Callable[[int], Any], batched: bool, callback_api: bool = False
) -> Callable[[int], float]:
    def run(count: int) -> float:
        setup = _Setup(ManualLog() if batched else MemoryLog())
        if callback_api and not hasattr(setup.link, "submit_with_callback"):
            return float("nan")
        requests = [
            Request(setup.session_id, cxid, opcode, make_record(cxid), _AUTH)
            for cxid in range(1, count + 1)
        ]
        answers: list[Any] = []
        collect = answers.append
        submit = setup.link.submit
        log = setup.server.log
        flush = log.flush if batched else None
        start = time.process_time()
        if callback_api:
            submit_with_callback = setup.link.submit_with_callback
            for index, request in enumerate(requests, 1):
                submit_with_callback(request, collect)
                if flush is not None and index % _BATCH == 0:
                    flush()
            if flush is not None:
                flush()
        elif flush is None:
            for request in requests:
                submit(request).addCallback(collect)
        else:
            for index, request in enumerate(requests, 1):
                submit(request).addCallback(collect)
                if index % _BATCH == 0:
                    flush()
            flush()
        elapsed = time.process_time() - start
        _check(answers, count)
        return elapsed

    return run


def _check(answers: list[Any], count: int) -> None:
    if len(answers) != count or any(getattr(o, "err", 1) for o in answers):
        errors = {getattr(o, "err", o) for o in answers}
        raise SystemExit(f"benchmark broken: {len(answers)}/{count} answers, errors {errors}")


def _get_data_read(count: int) -> float:
    setup = _Setup(MemoryLog())
    view = setup.link.read_view()
    acl = setup.server.acl
    request = Request(setup.session_id, 1, codes.OP_GET_DATA, GetDataRequest("/node", False), _AUTH)
    answers = []
    collect = answers.append
    start = time.process_time()
    for _ in range(count):
        collect(perform_read(view, request, acl))
    elapsed = time.process_time() - start
    _check(answers, count)
    return elapsed


def _get_data_session(count: int) -> float:
    """As the session server reads today: a Request built per read, an Outcome back."""
    setup = _Setup(MemoryLog())
    view = setup.link.read_view()
    acl = setup.server.acl
    record = GetDataRequest("/node", False)
    session_id = setup.session_id
    opcode = codes.OP_GET_DATA
    answers = []
    collect = answers.append
    start = time.process_time()
    for _ in range(count):
        collect(perform_read(view, Request(session_id, 0, opcode, record, _AUTH), acl))
    elapsed = time.process_time() - start
    _check(answers, count)
    return elapsed


def _get_data_answer(count: int) -> float:
    """The record-free entry point, C{answer_read}: no Request, no Outcome."""
    try:
        from zkreg.data.reads import answer_read
    except ImportError:
        return float("nan")
    setup = _Setup(MemoryLog())
    view = setup.link.read_view()
    acl = setup.server.acl
    record = GetDataRequest("/node", False)
    session_id = setup.session_id
    opcode = codes.OP_GET_DATA
    answers = []
    collect = answers.append
    start = time.process_time()
    for _ in range(count):
        collect(answer_read(view, opcode, record, _AUTH, session_id, acl))
    elapsed = time.process_time() - start
    if len(answers) != count or any(err for err, _ in answers):
        raise SystemExit("benchmark broken: getData-answer")
    return elapsed


def _get_data_submit(count: int) -> float:
    setup = _Setup(MemoryLog())
    record = GetDataRequest("/node", False)
    requests = [
        Request(setup.session_id, cxid, codes.OP_GET_DATA, record, _AUTH)
        for cxid in range(1, count + 1)
    ]
    answers: list[Any] = []
    collect = answers.append
    submit = setup.link.submit
    start = time.process_time()
    for request in requests:
        submit(request).addCallback(collect)
    elapsed = time.process_time() - start
    _check(answers, count)
    return elapsed


def _set_data(cxid: int) -> Any:
    return SetDataRequest("/node", _VALUE, -1)


def _create(cxid: int) -> Any:
    return CreateRequest("/queue/item-", _VALUE, list(OPEN_ACL_UNSAFE), 2)


WORKLOADS: dict[str, Callable[[int], float]] = {
    "setData": _write_workload(codes.OP_SET_DATA, _set_data, False),
    "create": _write_workload(codes.OP_CREATE, _create, False),
    "getData": _get_data_read,
    "getData-session": _get_data_session,
    "getData-answer": _get_data_answer,
    "getData-submit": _get_data_submit,
    "setData-batch64": _write_workload(codes.OP_SET_DATA, _set_data, True),
    "create-batch64": _write_workload(codes.OP_CREATE, _create, True),
    "setData-cb": _write_workload(codes.OP_SET_DATA, _set_data, False, True),
    "create-cb": _write_workload(codes.OP_CREATE, _create, False, True),
    "setData-batch64-cb": _write_workload(codes.OP_SET_DATA, _set_data, True, True),
}


def main(argv: list[str] | None = None) -> int:
    """Run the workloads and print microseconds per operation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="operations per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per workload (best kept)")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--json", default=None, help="also write results here")
    options = parser.parse_args(argv)
    names = [name for name in options.only.split(",") if name] or list(WORKLOADS)
    results = {}
    for name in names:
        best = None
        for _ in range(options.repeat):
            gc.collect()
            elapsed = WORKLOADS[name](options.n)
            best = elapsed if best is None else min(best, elapsed)
        assert best is not None
        results[name] = best / options.n * 1e6
        sys.stdout.write(f"{name:18s} {results[name]:8.2f} us/op\n")
        sys.stdout.flush()
    if options.json:
        with open(options.json, "w") as out:
            json.dump({"n": options.n, "us_per_op": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
