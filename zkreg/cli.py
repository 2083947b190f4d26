"""
The C{zkreg} command line: look into and check a data directory.

  - C{zkreg log dump DIR|SEGMENT} prints every log record (of a directory, or of one
    segment file), one line each (time, session, cxid, zxid, operation and its
    fields), like ZooKeeper's C{TxnLogToolkit};
  - C{zkreg snapshot dump DIR|FILE} prints a snapshot (the newest valid one of a
    directory): its sessions and every node with its stat, like ZooKeeper's
    C{SnapshotFormatter};
  - C{zkreg log verify DIR} checks every checksum of every log segment and snapshot and
    exits 1 on any damage, naming the file and offset;
  - C{zkreg log truncate SEGMENT OFFSET --yes} is the operator's last resort for a log
    damaged in the middle: it cuts the segment at the damaged record and removes every
    later segment, losing every transaction from there on.  It refuses while a server
    holds the data directory (L{zkreg.persistence.dirlock}); the other commands only
    read and run at any time.

Exit codes: 0 fine, 1 damage found (or a dump hit damage, or there is no zkreg data to
look at), 2 usage errors (bare C{zkreg} prints the help).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from collections.abc import Sequence
from typing import TextIO

from zkreg import __version__, discovery_cli, status_cli
from zkreg.persistence.dirlock import DataDirLocked, DataDirUnwritable, lock_data_dir
from zkreg.persistence.segments import (
    CorruptLogError,
    list_segments,
    scan_segment,
)
from zkreg.persistence.snapshot import SnapshotError, list_snapshots, read_header, read_snapshot
from zkreg.persistence.txnlog import describe_txn

__all__ = ["main"]


def _time(ms: int) -> str:
    when = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require_dir(directory: str) -> None:
    if not os.path.exists(directory):
        raise SystemExit(f"zkreg: {directory} does not exist")
    if not os.path.isdir(directory):
        raise SystemExit(f"zkreg: {directory} is not a directory")


#: A log segment's file name: C{log.} and the first zxid in hex.
_SEGMENT_FILE = re.compile(r"^log\.([0-9a-f]+)$")


def _no_data(directory: str) -> str:
    return (
        f"no zkreg data in {directory} (no log segments log.<zxid>, no snapshots "
        f"snapshot.<zxid>); is it the server's --data-dir?"
    )


def _segments_of(target: str) -> list[tuple[int | None, str]]:
    """The segments to read: the file itself, or every segment of a directory."""
    if os.path.isfile(target):
        match = _SEGMENT_FILE.match(os.path.basename(target))
        return [(int(match.group(1), 16) if match else None, target)]
    _require_dir(target)
    return list(list_segments(target))


def log_dump(target: str, after_zxid: int, out: TextIO) -> int:
    """Print every record of a segment file or of every segment of a directory; @return: the exit code."""
    segments = _segments_of(target)
    if not segments:
        out.write(_no_data(target) + "\n")
        return 1
    status = 0
    previous = -1
    count = 0
    for index, (first_zxid, path) in enumerate(segments):
        scan = scan_segment(path, previous, first_zxid)
        version = "?" if scan.version is None else scan.version
        first = "?" if first_zxid is None else f"{first_zxid:#x}"
        out.write(
            f"# segment {path}: format version {version}, first zxid {first}, "
            f"{len(scan.records)} records, {scan.end_offset} of {scan.file_size} bytes used\n"
        )
        for record in scan.records:
            if record.zxid > after_zxid:
                out.write(f"{record.offset:>10} {describe_txn(record.zxid, record.payload)}\n")
                count += 1
        if scan.damage is not None:
            torn = scan.damage.is_torn_tail and index == len(segments) - 1
            kind = "torn tail (cut at startup)" if torn else "DAMAGE"
            out.write(f"# {kind} at offset {scan.damage.offset}: {scan.damage.reason}\n")
            status = 1
        if scan.last_zxid is not None:
            previous = scan.last_zxid
    out.write(f"# {count} records\n")
    return status


def _snapshot_target(target: str) -> tuple[str | None, list[str]]:
    """The snapshot to dump: the file itself, or the newest valid one of a directory."""
    if os.path.isfile(target):
        return target, []
    _require_dir(target)
    problems = []
    for _, path in reversed(list_snapshots(target)):
        try:
            with open(path, "rb") as snapshot_file:
                read_header(path, snapshot_file.read())
        except (SnapshotError, OSError) as error:
            problems.append(str(error))
            continue
        return path, problems
    return None, problems


def snapshot_dump(target: str, with_data: bool, out: TextIO) -> int:
    """Print a snapshot; @return: the exit code."""
    path, problems = _snapshot_target(target)
    for problem in problems:
        out.write(f"# skipped: {problem}\n")
    if path is None:
        out.write(f"no valid snapshot in {target}\n")
        return 1
    try:
        content = read_snapshot(path)
    except (SnapshotError, OSError) as error:
        out.write(f"# {error}\n")
        return 1
    header = content.header
    out.write(
        f"# snapshot {path}: format version {header.version}, zxid {header.zxid:#x}, "
        f"taken {_time(header.taken_ms)}, {len(content.nodes)} nodes, "
        f"{len(content.sessions)} sessions, {len(content.replies)} recorded replies\n"
    )
    if content.digest is not None:
        out.write(f"# tree digest {content.digest}\n")
    out.write("---- sessions\n")
    for session_id, timeout_ms in content.sessions:
        out.write(f"session {session_id:#x} timeout {timeout_ms} ms\n")
    out.write("---- replies\n")
    for reply in content.replies:
        body = "none" if reply.body is None else f"{len(reply.body)} bytes"
        out.write(
            f"reply session {reply.session_id:#x} origin {reply.origin:#x} seq {reply.seq} "
            f"zxid {reply.zxid:#x} err {reply.err} opcode {reply.opcode} body {body}\n"
        )
    out.write("---- nodes\n")
    for node in content.nodes:
        acl = ", ".join(f"{scheme}:{ident}:{perms:#x}" for perms, scheme, ident in node.acl)
        out.write(
            f"{node.path}\n"
            f"  cZxid = {node.czxid:#x}\n"
            f"  ctime = {_time(node.ctime)}\n"
            f"  mZxid = {node.mzxid:#x}\n"
            f"  mtime = {_time(node.mtime)}\n"
            f"  pZxid = {node.pzxid:#x}\n"
            f"  cversion (stored) = {node.cversion}\n"
            f"  dataVersion = {node.version}\n"
            f"  aclVersion = {node.aversion}\n"
            f"  ephemeralOwner = {node.ephemeral_owner:#x}\n"
            f"  dataLength = {0 if node.data is None else len(node.data)}\n"
            f"  acl = [{acl}]\n"
        )
        if with_data:
            out.write(f"  data = {node.data!r}\n")
    return 1 if problems else 0


def log_verify(directory: str, out: TextIO) -> int:
    """Check every segment and snapshot; @return: 0 when all are sound, else 1."""
    _require_dir(directory)
    damaged = 0
    segments = list_segments(directory)
    if not segments and not list_snapshots(directory):
        out.write(_no_data(directory) + "\n")
        return 1
    previous = -1
    records = 0
    for index, (first_zxid, path) in enumerate(segments):
        scan = scan_segment(path, previous, first_zxid)
        records += len(scan.records)
        last = scan.last_zxid
        span = f"zxids {first_zxid:#x}..{last:#x}" if last is not None else "no records"
        if scan.damage is None:
            out.write(f"ok      {path}: {len(scan.records)} records, {span}\n")
        else:
            damaged += 1
            damage = scan.damage
            is_last = index == len(segments) - 1
            if damage.is_torn_tail and is_last:
                out.write(
                    f"TORN    {path} at offset {damage.offset}: {damage.reason}; a partial "
                    f"last write, zkreg cuts it at startup ({len(scan.records)} good "
                    f"records before it)\n"
                )
            else:
                follows = (
                    f"a valid record follows at offset {damage.next_good_offset}"
                    if damage.next_good_offset is not None
                    else "later segments follow"
                )
                out.write(
                    f"DAMAGED {path} at offset {damage.offset}: {damage.reason}; {follows}. "
                    f"zkreg will not start: restore from a backup, or accept losing every "
                    f"txn from here with 'zkreg log truncate {path} {damage.offset} --yes'\n"
                )
        if last is not None:
            previous = last
    for zxid, path in list_snapshots(directory):
        try:
            with open(path, "rb") as snapshot_file:
                read_header(path, snapshot_file.read())
        except (SnapshotError, OSError) as error:
            damaged += 1
            out.write(
                f"DAMAGED {error}; recovery skips it and uses an older snapshot if the "
                f"log reaches back far enough\n"
            )
        else:
            out.write(f"ok      {path}: snapshot at zxid {zxid:#x}\n")
    summary = "no damage" if not damaged else f"{damaged} damaged file(s)"
    out.write(
        f"# {len(segments)} segments ({records} records), "
        f"{len(list_snapshots(directory))} snapshots: {summary}\n"
    )
    return 1 if damaged else 0


def log_truncate(segment: str, offset: int, confirmed: bool, out: TextIO) -> int:
    """Cut a damaged log at C{offset} of C{segment} and drop the later segments."""
    directory = os.path.dirname(os.path.abspath(segment))
    segments = list_segments(directory)
    paths = [os.path.abspath(path) for _, path in segments]
    if os.path.abspath(segment) not in paths:
        out.write(f"{segment} is not a log segment of {directory}\n")
        return 2
    later = paths[paths.index(os.path.abspath(segment)) + 1 :]
    out.write(f"cut {segment} at offset {offset} and remove {len(later)} later segment(s)\n")
    for path in later:
        out.write(f"  remove {path}\n")
    try:
        # Held while cutting: a server must neither run now nor start half-way.
        dir_lock = lock_data_dir(directory)
    except (DataDirLocked, DataDirUnwritable) as error:
        out.write(f"nothing done: {error}\n")
        return 1
    try:
        if not confirmed:
            out.write("nothing done: add --yes to do it (every txn from there on is lost)\n")
            return 2
        with open(segment, "r+b") as segment_file:
            segment_file.truncate(offset)
            os.fsync(segment_file.fileno())
        for path in later:
            os.remove(path)
    finally:
        dir_lock.release()
    out.write("done\n")
    return 0


def _parse_zxid(text: str) -> int:
    try:
        zxid = int(text, 0)
    except ValueError:
        zxid = -1
    if zxid < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a zxid: write it in hex as zkreg prints it (0x1a, or "
            f"0x100000001a with the epoch) or in decimal (26)"
        )
    return zxid


def build_parser() -> argparse.ArgumentParser:
    """@return: the argument parser of C{zkreg}."""
    parser = argparse.ArgumentParser(prog="zkreg", description="Inspect a zkreg data directory.")
    parser.add_argument("--version", action="version", version=f"zkreg {__version__}")
    areas = parser.add_subparsers(dest="area")

    log_parser = areas.add_parser("log", help="the write-ahead log")
    log_commands = log_parser.add_subparsers(dest="command", required=True)
    dump = log_commands.add_parser(
        "dump", help="print every record (of a data directory, or of one segment file)"
    )
    dump.add_argument("target", metavar="DIR|SEGMENT")
    dump.add_argument("--after", type=_parse_zxid, default=-1, help="only records after this zxid")
    verify = log_commands.add_parser(
        "verify", help="check every checksum of the log and the snapshots"
    )
    verify.add_argument("directory")
    truncate = log_commands.add_parser(
        "truncate", help="cut a log damaged in the middle (loses every later txn)"
    )
    truncate.add_argument("segment")
    truncate.add_argument("offset", type=int)
    truncate.add_argument("--yes", action="store_true", help="really do it")

    snapshot_parser = areas.add_parser("snapshot", help="snapshots")
    snapshot_commands = snapshot_parser.add_subparsers(dest="command", required=True)
    snap_dump = snapshot_commands.add_parser(
        "dump", help="print a snapshot (a file, or a directory's newest valid one)"
    )
    snap_dump.add_argument("target")
    snap_dump.add_argument("--data", action="store_true", help="print node data too")

    discovery_cli.add_parser(areas)
    status_cli.add_parser(areas)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """
    Run C{zkreg}; the console entry point.

    @return: the exit code (also passed to C{sys.exit} when run as a script).
    """
    out = sys.stdout if out is None else out
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.area is None:
        parser.print_help(out)
        return 2
    try:
        if args.area == "log" and args.command == "dump":
            return log_dump(args.target, args.after, out)
        if args.area == "log" and args.command == "verify":
            return log_verify(args.directory, out)
        if args.area == "log" and args.command == "truncate":
            return log_truncate(args.segment, args.offset, args.yes, out)
        if args.area == "snapshot" and args.command == "dump":
            return snapshot_dump(args.target, args.data, out)
        if args.area == "discovery":
            return discovery_cli.run(args, out)
        if args.area == "status":
            return status_cli.run(args, out)
    except CorruptLogError as error:
        out.write(f"{error}\n")
        return 1
    except BrokenPipeError:
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
