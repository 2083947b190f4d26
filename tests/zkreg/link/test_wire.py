"""
The data link's fast paths give the bytes of the records they stand for.
"""

from __future__ import annotations

import pytest

from zkreg.data.messages import WriteStamp
from zkreg.data.txncodec import decode_logged_txn, encode_stamped_txn
from zkreg.link import wire
from zkreg.proto.jute import DecodeError
from zkreg.proto.records import Id, SetDataTxn, TxnHeader


@pytest.mark.parametrize(
    "tag, zxid, err, body",
    [(7, 0x100000005, 0, b"\x00\x01stat"), (0x7FFFFFFF, -1, -101, None), (1, 2, 0, b"")],
)
def test_result_frame_is_the_result_record(tag, zxid, err, body):
    record = wire.Result(tag, False, zxid, err, body)
    assert wire.result_frame(tag, zxid, err, body) == wire.encode_frame(record)
    assert wire.decode_result(wire.encode_message(record)) == (tag, False, zxid, err, body)


def test_a_failed_result_decodes():
    record = wire.Result(3, True, 0, 0, b"disk full")
    assert wire.decode_result(wire.encode_message(record)) == (3, True, 0, 0, b"disk full")


@pytest.mark.parametrize("cut", [1, 5, 21, 23])
def test_a_truncated_or_padded_result_is_refused(cut):
    message = wire.encode_message(wire.Result(3, False, 9, 0, b"body"))
    with pytest.raises(DecodeError):
        wire.decode_result(message[:-cut])
    with pytest.raises(DecodeError):
        wire.decode_result(message + b"\x00" * cut)


def test_a_commit_frame_carries_the_log_record():
    hdr = TxnHeader(0x1234, 5, 0x100000009, 1_700_000_000_000, 5)
    txn = SetDataTxn("/a", b"value", 3)
    record = encode_stamped_txn(hdr, txn, WriteStamp(99, 4, 3), 5)
    frame = wire.commit_frame(record)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert frame[4] == wire.COMMIT
    assert decode_logged_txn(frame[5:]) == (hdr, txn, WriteStamp(99, 4, 3), 5)


def test_decode_message_refuses_trailing_bytes():
    message = wire.encode_message(wire.Beat(5))
    assert wire.decode_message(message) == wire.Beat(5)
    with pytest.raises(DecodeError):
        wire.decode_message(message + b"\x00")


@pytest.mark.parametrize(
    "auth, body",
    [
        ([Id("ip", "127.0.0.1")], b"\x00\x00\x00\x02/a"),
        ([Id("ip", "10.0.0.1"), Id("digest", "bob:x"), Id("x509", "CN=\u00e9")], None),
        ([], b""),
    ],
)
def test_submit_message_is_the_submit_record(auth, body):
    record = wire.Submit(9, 0x1234, -5, 5, auth, body, 77, 3, 2)
    encoded = wire.submit_message(9, 0x1234, -5, 5, wire.encode_auth(auth), body, 77, 3, 2)
    assert encoded == wire.encode_message(record)
    assert wire.decode_message(encoded) == record
