"""
Writes submitted past a waiting read, across a lost data link, with real processes.

A session server submits a session's write at once even when a read of the same
session waits before it (see L{zkreg.session.pipeline}): the read is evaluated when the
write before it is answered, before the next commit reaches the replica.  That order
holds on one data-link connection; here the data server dies between a commit and its
reply (the ZKREG_TEST_EXIT_BEFORE_REPLY hook) with both writes durable, so after its
restart the replica catches up on both commits before any reply.  The read must then
not be answered with the later write's data: the session server closes such client
connections when the link is lost (as a ZooKeeper server drops its clients when it
loses its leader), and the session lives on with each write applied once.
"""

from __future__ import annotations

import struct

import pytest
from kazoo.client import KazooClient

from tests.support.ports import free_port
from tests.support.rawclient import ConnectionClosed, RawClient
from tests.support.split import FaultyDataServer, link_listen, session_server
from tests.support.waiting import wait_until
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

pytestmark = pytest.mark.timeout(300)


def _pipelined(raw: RawClient, requests: list[tuple[int, object]]) -> list[int]:
    """Send C{requests} in one write, so the session server reads them together."""
    frames: list[bytes] = []
    send_frame = raw.send_frame
    raw.send_frame = frames.append  # type: ignore[method-assign]
    try:
        xids = [raw.submit(opcode, record) for opcode, record in requests]
    finally:
        raw.send_frame = send_frame  # type: ignore[method-assign]
    raw.send_bytes(b"".join(struct.pack(">i", len(frame)) + frame for frame in frames))
    return xids


def _direct_value(data: FaultyDataServer, path: str) -> tuple[bytes, int]:
    client = KazooClient(hosts=data.hosts, timeout=30.0)
    client.start(timeout=30)
    try:
        value, stat = client.get(path)
        return value, stat.version
    finally:
        client.stop()
        client.close()


def test_a_read_never_sees_a_later_write_after_the_link_is_lost():
    link_port = free_port()
    link_args = link_listen(link_port)
    data = FaultyDataServer(extra_args=link_args)
    session = session_server(link_port, "--data-tier-timeout", "120000")
    raw: RawClient | None = None
    try:
        data.start()
        setup = KazooClient(hosts=data.hosts, timeout=30.0)
        setup.start(timeout=30)
        setup.create("/pass", b"0")
        setup.stop()
        setup.close()

        # The first stamped write is committed, then the data server dies unanswered.
        data.fault = "1"
        data.restart()
        session.start()
        raw = RawClient(session.port)
        raw.connect()
        write1, read, write2 = _pipelined(
            raw,
            [
                (OpCode.setData, R.SetDataRequest("/pass", b"1", -1)),
                (OpCode.getData, R.GetDataRequest("/pass", False)),
                (OpCode.setData, R.SetDataRequest("/pass", b"2", -1)),
            ],
        )
        wait_until(lambda: not data.is_running(), timeout=60, message="the fault hook fired")
        assert "exiting between a commit and its reply" in data.log_tail(20000)
        data.kill()  # reap it

        # Both writes were in one group commit: the recovered data server has the
        # later one (else this test would not exercise the catch-up at all).
        data.fault = None
        data.extra_args = []
        data.start()
        assert _direct_value(data, "/pass") == (b"2", 2)
        data.stop()

        data.extra_args = link_args
        data.start()
        answered = {}
        try:
            while read not in answered:
                kind, item = raw.read_one(timeout=60)
                if kind == "reply":
                    answered[item.xid] = item
        except ConnectionClosed:
            pass
        if read in answered:
            # Answered in order, with exactly the writes before it.
            assert write1 in answered
            assert answered[read].body.data == b"1", answered[read]
        else:
            assert write2 not in answered

        # The session lives on, with each write applied once.
        raw.reconnect()
        reply = raw.get_data("/pass")
        assert (reply.body.data, reply.body.stat.version) == (b"2", 2)
    finally:
        if raw is not None:
            raw.drop()
        session.cleanup()
        data.cleanup()
