"""
The session table: ZooKeeper's ids and passwords, expiry buckets by tick, touch, closing.
"""

from __future__ import annotations

from zkreg.data import codes
from zkreg.data.sessions import ExpiryQueue, SessionTable, initial_session_id, session_password


def test_passwords_equal_java_random_output():
    """Values printed by java.util.Random(id ^ 0xB3415C00L).nextBytes(new byte[16])."""
    assert session_password(0x1234).hex() == "3c18abe05b0e6182741d625d127c15b0"
    assert session_password(0x0100018BCFE56800).hex() == "8b0846ad2489fb312884aba76d164e68"
    assert session_password(-5).hex() == "d47144b5e45e45c49c3b7fdcd66257ba"
    assert session_password(0x1234, secret=42) != session_password(0x1234)


def test_initial_id_has_server_id_in_top_byte_and_time_below():
    # Java: ((1700000000123L << 24) >>> 8) | (3L << 56)
    assert initial_session_id(3, 1700000000123) == 255526388083916800
    assert initial_session_id(3, 1700000000123) >> 56 == 3
    assert initial_session_id(0, 0) == 0


def test_ids_increment_and_skip_tracked_ones():
    table = SessionTable(server_id=1, tick_ms=1000, now_ms=5000)
    first = table.next_id()
    table.track(first + 1, 1000, 5000)
    second = table.next_id()
    assert second == first + 2
    table.advance_past(second + 10)
    assert table.next_id() == second + 11


def test_check_password():
    table = SessionTable(server_id=1, tick_ms=1000, now_ms=0)
    sid = table.next_id()
    assert table.check_password(sid, table.password(sid))
    assert not table.check_password(sid, b"\x00" * 16)
    assert not table.check_password(0, table.password(0))


def test_expiry_queue_rounds_deadlines_up_to_the_tick():
    queue = ExpiryQueue(interval_ms=1000, now_ms=0)
    assert queue.update(7, 2500, 100) == 3000
    assert queue.poll(2999) == []
    assert queue.poll(3000) == [7]
    assert queue.poll(10_000) == []
    assert queue.deadline_of(7) is None


def test_expiry_by_tick_with_touch_extending_life():
    table = SessionTable(server_id=1, tick_ms=1000, now_ms=0)
    a = table.next_id()
    b = table.next_id()
    table.track(a, 4000, 0)
    table.track(b, 4000, 0)
    assert table.deadline_of(a) == 5000
    assert table.expired(4999) == []
    assert table.touch(a, 3000)
    assert table.expired(5000) == [b]
    assert table.get(b).closing
    assert table.check(b) == codes.SESSION_EXPIRED
    assert not table.touch(b, 5000)
    assert table.expired(7999) == []
    assert table.expired(8000) == [a]


def test_touch_with_new_timeout_and_removal():
    table = SessionTable(server_id=1, tick_ms=1000, now_ms=0)
    sid = table.next_id()
    table.track(sid, 2000, 0)
    assert table.touch(sid, 0, timeout_ms=10_000)
    assert table.get(sid).timeout_ms == 10_000
    assert table.deadline_of(sid) == 11_000
    table.remove(sid)
    assert table.check(sid) == codes.SESSION_EXPIRED
    assert not table.touch(sid, 0)
    assert table.expired(100_000) == []


def test_closing_session_does_not_expire_again():
    table = SessionTable(server_id=1, tick_ms=1000, now_ms=0)
    sid = table.next_id()
    table.track(sid, 1000, 0)
    table.set_closing(sid)
    assert table.expired(100_000) == []
    assert sid in table
