"""
Micro-benchmark of a standalone zkreg's reactor-side CPU per pipelined write, in one
process, with no socket and no scheduler noise: what C{python -m bench.write_cpu}
measures for a real server, made deterministic enough to compare two commits.

Real client connections (L{zkreg.session.protocol.ClientConnection} over a
C{StringTransport}) get the bench's real request frames (L{bench.wire}), C{--window}
at a time each, from C{--sessions} sessions; then the log reports the batch durable
at once (group commit, as the file WAL does), the applier answers every write, and
the connections flush their replies.  Two figures per workload:

  - C{total}: the CPU of everything (decode, prep, log encode, apply, commit
    listener, reply encode and output), through a real L{DataServer};
  - C{session}: the session side alone: the same connections over a link that
    answers each write with a prepared outcome and commit (as the data server would)
    without any data-side work.

Times are CPU time (C{time.process_time}); the best of C{--repeat} runs is kept.

Run: C{python -m bench.session_cpu [-n N] [--sessions S] [--window W] [--repeat R]}.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any

from twisted.internet import address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from bench import wire
from bench.inprocess import GroupCommitLog
from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Commit, Outcome, Request
from zkreg.data.server import DataServer
from zkreg.link.inprocess import InProcessDataLink
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, CreateResponse, SetDataResponse, Stat
from zkreg.session.factory import SessionServerFactory

_SIZE = 100
_OPEN = list(OPEN_ACL_UNSAFE)
_SEQUENTIAL = 2
_EPHEMERAL = 1


class _AnsweringLink(InProcessDataLink):
    """
    The in-process link with the data side cut out: each write is answered, at
    L{flush}, with an outcome and a commit prepared as the data server would make
    them (setData: a stat; create: the path; events on the node and its parent).
    """

    def __init__(self, server: DataServer) -> None:
        InProcessDataLink.__init__(self, server)
        self._waiting: list[tuple[Request, Any]] = []
        self._listeners: list[Any] = []
        self._zxid = server.tree.last_zxid
        self._stat = Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, _SIZE, 11)

    def subscribe(self, listener: Any) -> None:
        self._listeners.append(listener)

    def submit_with_callback(self, request: Any, callback: Any) -> None:
        self._waiting.append((request, callback))

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for request, callback in waiting:
            self._zxid += 1
            zxid = self._zxid
            opcode = request.opcode
            record = request.record
            path = record.path
            parent = path[: path.rfind("/")] or "/"
            if opcode == codes.OP_SET_DATA:
                events: tuple = ((3, path),)
                response: Any = SetDataResponse(self._stat)
            elif opcode == codes.OP_CREATE:
                if record.flags & _SEQUENTIAL:
                    path = f"{path}{zxid:010d}"
                events = ((1, path), (4, parent))
                response = CreateResponse(path)
            else:
                events = ((2, path), (4, parent))
                response = None
            commit = Commit(zxid, request.session_id, request.cxid, opcode, None, events, 0, 0)
            for listener in self._listeners:
                listener.committed(commit)
            callback(Outcome(zxid, 0, response))


def _frames(op: str, index: int, window: int) -> list[bytes]:
    if op == "set":
        templates = [wire.set_data_frame(f"/bench/w{index}", b"w" * _SIZE)]
    elif op == "create":
        templates = [wire.create_frame("/bench/seq/n-", b"c" * _SIZE, _SEQUENTIAL)]
    else:
        path = f"/bench/seq/e{index}"
        templates = [
            wire.create_frame(path, b"e" * _SIZE, _EPHEMERAL),
            wire.delete_frame(path),
        ]
    return [wire.with_xid(templates[xid % len(templates)], xid) for xid in range(1, window + 1)]


def run(op: str, count: int, sessions: int, window: int, session_only: bool) -> float:
    """@return: CPU microseconds per write."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = GroupCommitLog(trim_above=100_000)
    config = ServerConfig()
    server = DataServer(config, log=log, clock=clock)
    link: Any = _AnsweringLink(server) if session_only else InProcessDataLink(server)
    factory = SessionServerFactory(config, link, clock, acl_checker=server.acl)
    connections = []
    for index in range(sessions):
        peer = address.IPv4Address("TCP", "127.0.0.1", 40000 + index)
        connection = factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        connection.makeConnection(transport)
        connection.dataReceived(wire.connect_frame(30000))
        log.flush()
        clock.advance(0)
        connections.append((connection, transport))
    setup_session = connections[0][0].session_id
    for path in ["/bench", "/bench/seq"] + [f"/bench/w{i}" for i in range(sessions)]:
        server.submit(
            Request(setup_session, 0, codes.OP_CREATE, CreateRequest(path, b"", _OPEN, 0))
        )
    log.flush()
    clock.advance(0)
    batches = [b"".join(_frames(op, index, window)) for index in range(sessions)]
    rounds = max(1, count // (sessions * window))
    gc.collect()
    gc.freeze()
    flush = link.flush if session_only else log.flush
    started = time.process_time()
    for _ in range(rounds):
        for (connection, _), batch in zip(connections, batches, strict=True):
            connection.dataReceived(batch)
        flush()
        clock.advance(0)
    elapsed = time.process_time() - started
    gc.unfreeze()
    expected = (1 + rounds * window) * 16  # a reply header at least per request
    for _, transport in connections:
        if len(transport.value()) < expected:
            raise RuntimeError(f"{op}: replies missing")
        transport.clear()
    return elapsed / (rounds * sessions * window) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.session_cpu", description=__doc__)
    parser.add_argument("-n", type=int, default=40_000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", default="set,create,ephemeral")
    options = parser.parse_args(argv)
    gc.set_threshold(20_000, 20, 20)  # zkreg.collector's settings
    print(f"{'op':<10} {'total us/write':>15} {'session us/write':>17}")
    for op in options.ops.split(","):
        figures = []
        for session_only in (False, True):
            runs = [
                run(op, options.n, options.sessions, options.window, session_only)
                for _ in range(options.repeat)
            ]
            figures.append(min(runs))
        print(f"{op:<10} {figures[0]:>15.2f} {figures[1]:>17.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
