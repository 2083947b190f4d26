"""
The differential harness checks itself: normalisation keeps what must be compared
and the comparator reports real differences, including ones seen on a live server.
"""

from __future__ import annotations

import pytest

from tests.support.differential import Normaliser as _Normaliser
from tests.support.differential import (
    Scenario,
    ScenarioContext,
    SessionId,
    Time,
    Zxid,
    compare,
    run_scenario,
)


def _normalise(entries, root="/droot", window=(1000, 2000), sessions=()):
    return _Normaliser(root, window, sessions).normalise(entries)


def test_zxids_compare_by_rank_not_value() -> None:
    """Two recordings with the same zxid order but different values agree."""
    left = _normalise([("a", {"czxid": Zxid(5), "mzxid": Zxid(9)}), ("b", Zxid(5))])
    right = _normalise([("a", {"czxid": Zxid(105), "mzxid": Zxid(200)}), ("b", Zxid(105))])
    assert compare(left, right) == []


def test_zxid_order_difference_is_caught() -> None:
    """Swapped zxid order (mzxid before czxid) is a difference."""
    left = _normalise([("a", {"czxid": Zxid(5), "mzxid": Zxid(9)})])
    right = _normalise([("a", {"czxid": Zxid(9), "mzxid": Zxid(5)})])
    assert compare(left, right)


def test_zxid_equality_difference_is_caught() -> None:
    """A reply zxid equal to an earlier one on one side only is a difference (a
    failed write that did not get its own zxid)."""
    left = _normalise([("w1", Zxid(5)), ("failed", Zxid(6)), ("w2", Zxid(7))])
    right = _normalise([("w1", Zxid(5)), ("failed", Zxid(5)), ("w2", Zxid(6))])
    assert compare(left, right)


def test_zero_zxid_stays_distinct() -> None:
    """Zxid 0 is not ranked: a node created at zxid 0 differs from one created later."""
    left = _normalise([("a", Zxid(0))])
    right = _normalise([("a", Zxid(3))])
    assert compare(left, right)


def test_sessions_map_to_ordinals() -> None:
    """Session ids map to ordinals in registration order; a swapped owner differs."""
    left = _normalise([("owner", SessionId(77))], sessions=[77, 88])
    right = _normalise([("owner", SessionId(1234))], sessions=[1234, 5678])
    assert compare(left, right) == []
    swapped = _normalise([("owner", SessionId(5678))], sessions=[1234, 5678])
    assert compare(left, swapped)


def test_times_checked_for_plausibility() -> None:
    """A time inside the scenario window is accepted; one outside is reported."""
    inside = _normalise([("t", Time(1500))])
    outside = _normalise([("t", Time(99999))])
    assert inside == [("t", "<time>")]
    assert compare(inside, outside)


def test_root_replaced_in_strings_and_bytes() -> None:
    """The scenario root differs per run and is replaced everywhere."""
    left = _normalise([("p", "/droot/a"), ("b", b"/droot")], root="/droot")
    right = _normalise([("p", "/dother/a"), ("b", b"/dother")], root="/dother")
    assert compare(left, right) == []


def test_stat_field_difference_is_caught() -> None:
    """One stat field off by one (cversion) is reported with its step."""
    stat = {"version": 0, "cversion": 1, "numChildren": 1, "pzxid": Zxid(4)}
    wrong = dict(stat, cversion=2)
    differences = compare(_normalise([("s", stat)]), _normalise([("s", wrong)]))
    assert len(differences) == 1 and "step 0" in differences[0]


def test_missing_and_extra_steps_are_caught() -> None:
    """A recording with an extra step differs."""
    assert compare([("a", 1)], [("a", 1), ("b", 2)])
    assert compare([("a", 1), ("b", 2)], [("a", 1)])


def _ordinary(ctx: ScenarioContext) -> None:
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("a"), b"x")
    ctx.call("get", raw.get_data, ctx.path("a"))
    ctx.call("stat root", raw.exists, ctx.root)


def _one_more_write(ctx: ScenarioContext) -> None:
    """Like L{_ordinary}, with one extra setData: the kind of bug the suite exists to
    catch (a version, mzxid, and a data length that differ)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("a"), b"x")
    raw.set_data(ctx.path("a"), b"yy")
    ctx.call("get", raw.get_data, ctx.path("a"))
    ctx.call("stat root", raw.exists, ctx.root)


@pytest.mark.oracle
def test_live_recordings_agree_and_a_real_difference_is_caught(zk_oracle) -> None:
    """On the real ZooKeeper: the same scenario twice agrees after normalisation; a
    scenario with one extra write does not."""
    first, crash1 = run_scenario(Scenario("ordinary", _ordinary), zk_oracle)
    second, crash2 = run_scenario(Scenario("ordinary", _ordinary), zk_oracle)
    altered, crash3 = run_scenario(Scenario("altered", _one_more_write), zk_oracle)
    assert not (crash1 or crash2 or crash3)
    assert compare(first, second) == []
    differences = compare(first, altered)
    assert differences
    assert any(".version: zookeeper=0 | zkreg=1" in d for d in differences)


def test_deep_difference_names_the_place() -> None:
    """A difference deep in a step is reported with its place, not the whole value."""
    left = [("replies", [{"err": "OK"}, {"err": "NONODE", "body": None}])]
    right = [("replies", [{"err": "OK"}, {"err": "NOAUTH", "body": None}])]
    assert compare(left, right) == ["step 0: replies[1].err: zookeeper='NONODE' | zkreg='NOAUTH'"]
