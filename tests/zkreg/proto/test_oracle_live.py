"""
The codec against a live Apache ZooKeeper: the fixture scenarios run again through
the recording proxy, so a ZooKeeper (or codec) change shows up even before the
fixtures are re-recorded.
"""

from __future__ import annotations

import uuid

import pytest
from proto_conversation import decode_conversation

from tests.zkreg.proto.fixtures import capture
from zkreg.proto import records as R

pytestmark = pytest.mark.oracle


@pytest.fixture
def proxy(zk_oracle):  # type: ignore[no-untyped-def]
    recorder = capture.RecordingProxy(zk_oracle.port)
    yield recorder
    recorder.close()


def test_raw_scenario_live_decodes_and_reencodes(proxy: capture.RecordingProxy) -> None:
    """Every frame of the raw scenario, live, decodes completely and re-encodes identically."""
    root = f"/proto_live_{uuid.uuid4().hex[:8]}"
    capture.raw_scenario(proxy.port, root=root, clean=True)
    frames = decode_conversation(capture.settle(proxy))
    assert len(frames) > 70
    for frame in frames:
        assert frame.reencode() == frame.raw, frame
    bodies = [f.body for f in frames]
    assert R.WatcherEvent(3, 3, root) in bodies


def test_both_handshake_forms_live(proxy: capture.RecordingProxy) -> None:
    """ZooKeeper answers with the readOnly byte exactly when the client sent one."""
    with_byte = capture.connect(proxy.port, read_only_byte=True)
    without_byte = capture.connect(proxy.port, read_only_byte=False)
    try:
        assert with_byte.handshake.readOnly is False
        assert without_byte.handshake.readOnly is None
    finally:
        with_byte.close()
        without_byte.close()
