"""
Micro-benchmark of the data server's CPU per write, in one process, stage by stage.

Writes go through L{DataServer.submit_with_callback} (as a standalone session server
submits them) over a memory log that reports durability per batch of C{--batch}, as
the file WAL's group commit does; the commit stream has one listener that does
nothing.  It prints, per workload, the CPU microseconds per write of the whole data
side (submit, prep, txn encode, queue, apply, commit, answer), then of its stages
measured apart (each wrapped in a wall-clock timer, so their sum exceeds the total
by the timers' own cost): prep, txn encode, tree apply, the prep bookkeeping after apply,
the reply (C{outcome_of}), the WAL's record framing (length, zxid, CRC), which
the writer thread does, and the WAL's queueing of a record (C{append_quiet}), which
the reactor does.  Times are CPU time (C{time.process_time}), best of
C{--repeat}; deterministic enough to compare two commits within a few per cent.

Run: C{python -m bench.data_cpu [-n N] [--batch B] [--repeat R] [--ops set,...]}.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from typing import Any

from twisted.internet.task import Clock

from bench.inprocess import OPEN, GroupCommitLog, NullListener, Timed, write_requests
from zkreg.config import ServerConfig
from zkreg.data import applier as applier_module
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.data.txncodec import decode_txn, encode_txn
from zkreg.persistence.wal import FileWriteAheadLog
from zkreg.proto.records import CreateRequest


def _server() -> tuple[DataServer, GroupCommitLog, int]:
    clock = Clock()
    clock.advance(1_700_000_000)
    log = GroupCommitLog()
    server = DataServer(ServerConfig(), log=log, clock=clock)
    server.subscribe(NullListener())
    granted: list[Any] = []
    server.create_session(30000).addCallback(granted.append)
    log.flush()
    session_id = granted[0].session_id
    for path in ("/node", "/queue"):
        server.submit(Request(session_id, 0, codes.OP_CREATE, CreateRequest(path, b"", OPEN, 0)))
    log.flush()
    return server, log, session_id


class _Answers:
    """Counts the answers and their errors, keeping none (as a session server)."""

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0

    def __call__(self, outcome: Any) -> None:
        self.count += 1
        if getattr(outcome, "err", 1) != 0:
            self.errors += 1


def _drive(server: DataServer, log: GroupCommitLog, requests: list[Request], batch: int) -> None:
    answers = _Answers()
    submit = server.submit_with_callback
    flush = log.flush
    for start in range(0, len(requests), batch):
        for request in requests[start : start + batch]:
            submit(request, answers)
        flush()
        del log.records[:-batch]
    if answers.count != len(requests) or answers.errors:
        raise RuntimeError(f"{answers.count} of {len(requests)} answered, or errors")


def total(op: str, count: int, batch: int) -> float:
    """@return: CPU microseconds per write of the whole data side."""
    server, log, session_id = _server()
    requests = write_requests(op, session_id, count)
    gc.collect()
    gc.freeze()
    started = time.process_time()
    _drive(server, log, requests, batch)
    elapsed = time.process_time() - started
    gc.unfreeze()
    return elapsed / count * 1e6


def stages(op: str, count: int, batch: int) -> dict[str, float]:
    """@return: CPU microseconds per write of each stage, each timed apart."""
    server, log, session_id = _server()
    requests = write_requests(op, session_id, count)
    sequencer = server.sequencer
    prep = sequencer._prep
    applier = server.applier
    timers = {
        "prep": Timed(prep.prep, time.perf_counter),
        "apply": Timed(applier.tree.apply, time.perf_counter),
        "committed": Timed(prep.committed, time.perf_counter),
    }
    prep.prep = timers["prep"]  # type: ignore[method-assign]
    applier.tree.apply = timers["apply"]  # type: ignore[method-assign]
    prep.committed = timers["committed"]  # type: ignore[method-assign]
    outcome = timers["outcome"] = Timed(applier_module.outcome_of, time.perf_counter)
    saved_outcome = applier_module.outcome_of
    applier_module.outcome_of = outcome  # type: ignore[assignment]
    try:
        _drive(server, log, requests, batch)
    finally:
        applier_module.outcome_of = saved_outcome  # type: ignore[assignment]
    result = {name: timer.seconds / count * 1e6 for name, timer in timers.items()}
    # The txn encoding, redone on the txns logged (header and txn records).
    records = log.records[-batch:] * (count // batch)
    txns = [decode_txn(record) for _zxid, record in records]
    started = time.process_time()
    for hdr, txn in txns:
        encode_txn(hdr, txn)
    result["encode"] = (time.process_time() - started) / count * 1e6
    # The WAL's framing of the same records, as its writer thread does, no I/O.
    framing = FileWriteAheadLog.__new__(FileWriteAheadLog)
    framing._writer = _NullWriter()  # type: ignore[assignment]
    queued = [(zxid, record, None) for zxid, record in records]  # as append_quiet queues
    started = time.process_time()
    for start in range(0, count, batch):
        framing._encode_and_write(queued[start : start + batch], False)
    result["wal-frame"] = (time.process_time() - started) / count * 1e6
    # The reactor's side of the WAL: queueing each record (append_quiet).
    with tempfile.TemporaryDirectory() as directory:
        wal = FileWriteAheadLog(directory, reactor=_NullReactor())
        started = time.process_time()
        for zxid, record in enumerate(_zxid_record[1] for _zxid_record in records):
            wal.append_quiet(zxid + 1, record)
        result["wal-append"] = (time.process_time() - started) / count * 1e6
    return result


class _NullReactor:
    """Enough of a reactor for a WAL that is appended to and never written."""

    def callLater(self, delay: float, call: Any, *args: Any) -> None:
        pass

    def addSystemEventTrigger(self, *args: Any) -> None:
        return None


class _NullWriter:
    def write_batch(self, batch: Any, roll_first: bool) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data_cpu", description=__doc__)
    parser.add_argument("-n", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", default="set,create,ephemeral")
    options = parser.parse_args(argv)
    # zkreg.collector's settings.
    gc.set_threshold(20_000, 20, 20)
    names = ["prep", "encode", "apply", "committed", "outcome", "wal-frame", "wal-append"]
    print(f"{'op':<10} {'total':>7} " + " ".join(f"{name:>9}" for name in names))
    for op in options.ops.split(","):
        whole = min(total(op, options.n, options.batch) for _ in range(options.repeat))
        parts = [stages(op, options.n, options.batch) for _ in range(options.repeat)]
        best = {name: min(p[name] for p in parts) for name in names}
        print(
            f"{op:<10} {whole:>7.2f} " + " ".join(f"{best[name]:>9.2f}" for name in names),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
