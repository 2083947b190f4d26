"""
The C{zkreg} command line: dumps are readable and complete, verify exits 0 on a sound
directory and 1 on damage naming the file and offset, truncate needs --yes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from zkreg.cli import main
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import encode_txn
from zkreg.persistence.recovery import recover, write_tree_snapshot
from zkreg.persistence.segment_writer import SegmentWriter
from zkreg.persistence.segments import (
    RECORD_HEADER_BYTES,
    encode_record,
    list_segments,
    scan_segment,
)
from zkreg.persistence.snapshot import HEADER_BYTES, list_snapshots
from zkreg.proto.records import ACL, CreateSessionTxn, CreateTxn, Id, SetDataTxn, TxnHeader

OPEN_ACL = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]


def txns(count: int):
    """createSession, then creates of /node<i> and a setData of each."""
    zxid = 1
    yield (
        TxnHeader(clientId=0x42, cxid=0, zxid=zxid, time=1_700_000_000_000, type=-10),
        CreateSessionTxn(timeOut=6000),
    )
    for i in range(count):
        zxid += 1
        yield (
            TxnHeader(clientId=0x42, cxid=i, zxid=zxid, time=1_700_000_000_000 + zxid, type=1),
            CreateTxn(
                path=f"/node{i}",
                data=b"value-%d" % i,
                acl=OPEN_ACL,
                ephemeral=False,
                parentCVersion=-1,
            ),
        )
        zxid += 1
        yield (
            TxnHeader(clientId=0x42, cxid=i, zxid=zxid, time=1_700_000_000_000 + zxid, type=5),
            SetDataTxn(path=f"/node{i}", data=b"new-%d" % i, version=1),
        )


@pytest.fixture
def data_dir(tmp_path) -> str:
    """A data directory with two log segments and a snapshot in between."""
    directory = str(tmp_path / "data")
    os.makedirs(directory)
    writer = SegmentWriter(directory, 1 << 16, sync=False)
    tree = DataTree()
    for hdr, txn in txns(30):
        writer.write_batch(
            [(hdr.zxid, encode_record(hdr.zxid, encode_txn(hdr, txn)))], hdr.zxid == 32
        )
        tree.apply(hdr, txn)
        if hdr.zxid == 31:
            write_tree_snapshot(directory, tree, sync=False, with_digest=True)
    writer.close_segment()
    return directory


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_log_dump_every_record(data_dir: str) -> None:
    """log dump prints one readable line per record with zxid, session, op and fields."""
    code, text = run("log", "dump", data_dir)
    assert code == 0
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == 61
    assert "session 0x42 cxid 0x0 zxid 0x1 createSession timeOut=6000" in lines[0]
    assert "zxid 0x2 create path='/node0' data='value-0'" in lines[1]
    assert "acl=[world:anyone:0x1f]" in lines[1]
    assert "zxid 0x3d setData path='/node29' data='new-29' version=1" in lines[-1]
    assert text.count("# segment ") == 2
    assert "format version 1" in text


def test_log_dump_after(data_dir: str) -> None:
    """--after limits the dump to later zxids."""
    code, text = run("log", "dump", data_dir, "--after", "0x3b")
    assert code == 0
    assert [line.split()[7] for line in text.splitlines() if not line.startswith("#")] == [
        "0x3c",
        "0x3d",
    ]


def test_snapshot_dump(data_dir: str) -> None:
    """snapshot dump shows the header, sessions and each node's stat (and data on request)."""
    code, text = run("snapshot", "dump", data_dir, "--data")
    assert code == 0
    assert "zxid 0x1f" in text.splitlines()[0]
    assert "session 0x42 timeout 6000 ms" in text
    block = text[text.index("/node14\n") :]
    assert "  cZxid = 0x1e" in block
    assert "  mZxid = 0x1f" in block
    assert "  dataVersion = 1" in block
    assert "  data = b'new-14'" in block
    assert "/node15\n" not in text


def test_verify_sound(data_dir: str) -> None:
    """verify exits 0 and lists every file as ok."""
    code, text = run("log", "verify", data_dir)
    assert code == 0, text
    assert text.count("ok      ") == 3
    assert "no damage" in text


def test_verify_corrupt_middle(data_dir: str) -> None:
    """A flipped byte in the middle: exit 1, the file and the record's offset named."""
    _, segment = list_segments(data_dir)[0]
    offset = scan_segment(segment).records[5].offset
    with open(segment, "r+b") as segment_file:
        segment_file.seek(offset + RECORD_HEADER_BYTES + 4)
        segment_file.write(b"\xfe")
    code, text = run("log", "verify", data_dir)
    assert code == 1
    assert f"DAMAGED {segment} at offset {offset}: checksum mismatch" in text
    code, text = run("log", "dump", data_dir)
    assert code == 1 and f"DAMAGE at offset {offset}" in text


def test_verify_torn_tail(data_dir: str) -> None:
    """A torn tail is damage too (exit 1), reported as cut at startup."""
    _, segment = list_segments(data_dir)[-1]
    offset = scan_segment(segment).records[-1].offset
    os.truncate(segment, offset + 9)
    code, text = run("log", "verify", data_dir)
    assert code == 1
    assert f"TORN    {segment} at offset {offset}" in text


def test_verify_damaged_snapshot(data_dir: str) -> None:
    """A damaged snapshot fails verify; snapshot dump of the directory says it skipped it."""
    _, snapshot = list_snapshots(data_dir)[0]
    with open(snapshot, "r+b") as snapshot_file:
        snapshot_file.seek(HEADER_BYTES + 30)
        snapshot_file.write(b"\x00\x00\x00")
    code, text = run("log", "verify", data_dir)
    assert code == 1 and f"snapshot {snapshot} is not usable: checksum mismatch" in text
    code, text = run("snapshot", "dump", data_dir)
    assert code == 1 and "# skipped" in text


def test_truncate_needs_yes_then_recovers(data_dir: str) -> None:
    """truncate does nothing without --yes; with it, recovery starts again (losing the rest)."""
    first_zxid, segment = list_segments(data_dir)[0]
    offset = scan_segment(segment).records[10].offset
    with open(segment, "r+b") as segment_file:
        segment_file.seek(offset + RECORD_HEADER_BYTES + 4)
        segment_file.write(b"\xfe")
    code, text = run("log", "truncate", segment, str(offset))
    assert code == 2 and "nothing done" in text
    assert len(list_segments(data_dir)) == 2
    for _, path in list_snapshots(data_dir):
        os.remove(path)  # the snapshot is past the cut; without it replay stops at the cut
    code, text = run("log", "truncate", segment, str(offset), "--yes")
    assert code == 0
    assert list_segments(data_dir) == [(first_zxid, segment)]
    assert recover(data_dir).last_zxid == 10


def test_console_script_module() -> None:
    """python -m zkreg.cli runs and reports usage errors with exit code 2."""
    result = subprocess.run(
        [sys.executable, "-m", "zkreg.cli", "log"], capture_output=True, timeout=60, text=True
    )
    assert result.returncode == 2
    assert "usage: zkreg log" in result.stderr


def test_log_dump_one_segment_file(data_dir: str) -> None:
    """log dump takes a segment file as snapshot dump takes a snapshot file."""
    (first_zxid, first), (second_zxid, _) = list_segments(data_dir)
    code, text = run("log", "dump", first)
    assert code == 0
    assert f"# segment {first}: format version" in text
    assert f"first zxid {first_zxid:#x}" in text
    assert f"{second_zxid:#x}" not in text.split("\n", 1)[1]
    assert text.endswith(f"# {second_zxid - first_zxid} records\n")


@pytest.mark.parametrize(
    "argv",
    [("log", "verify"), ("log", "dump"), ("snapshot", "dump")],
    ids=lambda argv: " ".join(argv),
)
def test_no_zkreg_data_is_an_error(tmp_path, argv) -> None:
    code, text = run(*argv, str(tmp_path))
    assert code == 1
    assert f"no zkreg data in {tmp_path}" in text or f"no valid snapshot in {tmp_path}" in text


def test_after_error_says_what_a_zxid_looks_like(data_dir: str, capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        run("log", "dump", data_dir, "--after", "zxid5")
    assert raised.value.code == 2
    assert "'zxid5' is not a zxid" in capsys.readouterr().err
    assert run("log", "dump", data_dir, "--after", "0x1a")[1].endswith("# 35 records\n")
    assert run("log", "dump", data_dir, "--after", "26")[1].endswith("# 35 records\n")


def test_bare_zkreg_prints_help_and_version(capsys) -> None:
    import zkreg

    code, text = run()
    assert code == 2
    assert text.startswith("usage: zkreg") and "log" in text and "snapshot" in text
    with pytest.raises(SystemExit) as raised:
        run("--version")
    assert raised.value.code == 0
    assert capsys.readouterr().out == f"zkreg {zkreg.__version__}\n"
