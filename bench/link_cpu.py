"""
Micro-benchmark of the data link's two ends, in one process: the CPU each side spends
per pipelined write, with no client connection, no socket and no scheduler noise.

A L{TCPDataLink} (the session server's end) and a L{DataLinkServerFactory} over a
L{DataServer} (the data server's end) are connected in memory; writes are submitted
in bursts of C{--batch} through C{submit_with_callback} (as a session server does)
over a log that acknowledges each burst at once (group commit, reported as the file
WAL does: one "durable up to" per batch), and
the time spent in each end is summed: the data server's is its receiving, prep,
log encode, apply, commit stream and results; the session server's is submitting,
reading results and applying the commit stream to its replica.  Times are CPU time
(C{time.process_time}); the best of C{--repeat} runs is kept.  The collector is
set as a zkreg server process sets it (L{zkreg.collector}) unless C{--default-gc}.

Run: C{python -m bench.link_cpu [-n N] [--batch B] [--repeat R] [--default-gc]}.
"""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Any

from twisted.internet.task import Clock
from twisted.test import iosim

from bench.inprocess import OPEN, GroupCommitLog, NullListener, Timed, write_requests
from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.link.tcp import DataLinkServerFactory, TCPDataLink
from zkreg.proto.records import CreateRequest


def run(op: str, count: int, batch: int) -> tuple[float, float]:
    """@return: CPU microseconds per write of the data side and of the session side."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = GroupCommitLog()
    server = DataServer(ServerConfig(), log=log, clock=clock)
    factory = DataLinkServerFactory(server, clock=clock)
    link = TCPDataLink([], clock, data_tier_timeout_s=30.0)
    link.subscribe(NullListener())
    session_side, data_side, pump = iosim.connectedServerAndClient(
        lambda: factory.buildProtocol(None), link.build_protocol
    )
    pump.flush()
    granted: list[Any] = []
    link.create_session(30000).addCallback(granted.append)
    for _ in range(2):
        pump.flush()
        log.flush()
    session_id = granted[0].session_id
    for path in ("/node", "/queue"):
        server.submit(Request(session_id, 0, codes.OP_CREATE, CreateRequest(path, b"", OPEN, 0)))
    log.flush()
    pump.flush()
    gc.collect()
    gc.freeze()
    data_time = Timed(data_side.dataReceived)
    data_side.dataReceived = data_time  # type: ignore[method-assign]
    flush = Timed(log.flush)
    session_time = Timed(session_side.dataReceived)
    session_side.dataReceived = session_time  # type: ignore[method-assign]
    answers: list[Any] = []
    then = answers.append
    submit_with_callback = getattr(link, "submit_with_callback", None)

    def submit_batch(requests: list[Request]) -> None:
        if submit_with_callback is None:  # the link before it had it
            for request in requests:
                link.submit(request).addCallback(then)
        else:
            for request in requests:
                submit_with_callback(request, then)

    submit = Timed(submit_batch)
    requests = write_requests(op, session_id, count)
    for start in range(0, count, batch):
        submit(requests[start : start + batch])
        pump.flush()
        flush()
        pump.flush()
    gc.unfreeze()
    if len(answers) != count or any(getattr(a, "err", 1) != 0 for a in answers):
        raise RuntimeError(f"{op}: {len(answers)} of {count} answered, or errors")
    data = (data_time.seconds + flush.seconds) / count * 1e6
    session = (session_time.seconds + submit.seconds) / count * 1e6
    return data, session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.link_cpu", description=__doc__)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ops", default="set,create,ephemeral")
    parser.add_argument("--default-gc", action="store_true", help="CPython's collector settings")
    options = parser.parse_args(argv)
    if not options.default_gc:
        # zkreg.collector's settings (written out: the bench also runs older trees).
        gc.set_threshold(20_000, 20, 20)
    print(f"{'op':<10} {'data us/write':>14} {'session us/write':>17}")
    for op in options.ops.split(","):
        runs = [run(op, options.n, options.batch) for _ in range(options.repeat)]
        data = min(r[0] for r in runs)
        session = min(r[1] for r in runs)
        print(f"{op:<10} {data:>14.1f} {session:>17.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
