"""
Curator's connection states: transitions, listener dispatch off the caller's stack,
simulated session expiration, and the error policies.  All on a L{task.Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from curatorish.state import (
    ConnectionState,
    ConnectionStateManager,
    SessionConnectionStateErrorPolicy,
    StandardConnectionStateErrorPolicy,
)

S = ConnectionState


def make_manager(**options):
    clock = Clock()
    seen: list[ConnectionState] = []
    client = object()
    manager = ConnectionStateManager(client, clock, session_timeout_ms=10_000, **options)
    manager.add_listener(lambda who, state: seen.append(state) if who is client else None)
    manager.start()
    return manager, clock, seen


def test_first_positive_state_is_connected_then_reconnected() -> None:
    manager, clock, seen = make_manager()
    assert manager.add_state_change(S.RECONNECTED)
    assert manager.set_to_suspended()
    assert manager.add_state_change(S.RECONNECTED)
    clock.advance(0)
    assert seen == [S.CONNECTED, S.SUSPENDED, S.RECONNECTED]


def test_listeners_get_the_client_set_after_construction() -> None:
    clock = Clock()
    framework = object()
    seen: list[object] = []
    manager = ConnectionStateManager(None, clock, session_timeout_ms=10_000)
    manager.add_listener(lambda who, state: seen.append(who))
    manager.start()
    manager.set_client(framework)
    manager.add_state_change(S.CONNECTED)
    clock.advance(0)
    assert seen == [framework]


def test_listeners_run_later_not_on_the_callers_stack() -> None:
    manager, clock, seen = make_manager()
    manager.add_state_change(S.CONNECTED)
    assert seen == []
    clock.advance(0)
    assert seen == [S.CONNECTED]


def test_repeated_state_is_not_posted_again() -> None:
    manager, clock, seen = make_manager()
    manager.add_state_change(S.CONNECTED)
    assert not manager.add_state_change(S.CONNECTED)
    clock.advance(0)
    assert seen == [S.CONNECTED]


def test_suspended_is_not_posted_when_lost_or_already_suspended() -> None:
    manager, clock, seen = make_manager(session_expiration_percent=0)
    manager.add_state_change(S.CONNECTED)
    assert manager.set_to_suspended()
    assert not manager.set_to_suspended()
    assert manager.add_state_change(S.LOST)
    assert not manager.set_to_suspended()
    assert manager.add_state_change(S.RECONNECTED)
    clock.advance(0)
    assert seen == [S.CONNECTED, S.SUSPENDED, S.LOST, S.RECONNECTED]


def test_read_only_is_negative_so_a_later_connect_is_still_connected() -> None:
    manager, clock, seen = make_manager()
    manager.add_state_change(S.READ_ONLY)
    manager.add_state_change(S.RECONNECTED)
    clock.advance(0)
    assert seen == [S.READ_ONLY, S.CONNECTED]
    assert manager.is_connected


def test_a_raising_listener_is_logged_and_others_still_run_in_order() -> None:
    manager, clock, seen = make_manager()
    order: list[str] = []

    def bad(client, state):
        order.append("bad")
        raise RuntimeError("listener bug")

    manager.add_listener(bad)
    manager.add_listener(lambda client, state: order.append("good"))
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(0)
    assert seen == [S.CONNECTED, S.SUSPENDED]
    assert order == ["bad", "good", "bad", "good"]


def test_removed_listener_is_not_called() -> None:
    manager, clock, seen = make_manager()
    calls: list[ConnectionState] = []

    def listener(client, state):
        calls.append(state)

    manager.add_listener(listener)
    manager.remove_listener(listener)
    manager.remove_listener(listener)
    manager.add_state_change(S.CONNECTED)
    clock.advance(0)
    assert calls == [] and seen == [S.CONNECTED]


def test_simulated_expiration_after_session_timeout_while_suspended() -> None:
    injected: list[bool] = []
    manager, clock, seen = make_manager(
        negotiated_timeout_ms=lambda: 4000, inject_session_expiration=lambda: injected.append(True)
    )
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(3.999)
    assert injected == []
    clock.advance(0.002)
    assert injected == [True]


def test_simulated_expiration_uses_the_percentage_and_requested_timeout() -> None:
    injected: list[bool] = []
    manager, clock, seen = make_manager(
        session_expiration_percent=50, inject_session_expiration=lambda: injected.append(True)
    )
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(4.9)
    assert injected == []
    clock.advance(0.2)
    assert injected == [True]


def test_simulated_expiration_without_injector_posts_lost() -> None:
    manager, clock, seen = make_manager()
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(10.0)
    clock.advance(0)
    assert seen == [S.CONNECTED, S.SUSPENDED, S.LOST]


def test_reconnect_cancels_simulated_expiration() -> None:
    injected: list[bool] = []
    manager, clock, seen = make_manager(inject_session_expiration=lambda: injected.append(True))
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(5)
    manager.add_state_change(S.RECONNECTED)
    clock.advance(20)
    assert injected == []
    assert clock.getDelayedCalls() == []


def test_zero_percent_disables_simulated_expiration() -> None:
    manager, clock, seen = make_manager(session_expiration_percent=0)
    manager.add_state_change(S.CONNECTED)
    manager.set_to_suspended()
    clock.advance(1000)
    assert manager.current_state is S.SUSPENDED


def test_wait_until_connected_fires_true_on_connect_and_false_on_timeout() -> None:
    manager, clock, seen = make_manager()
    results: list[bool] = []
    manager.wait_until_connected(5).addCallback(results.append)
    clock.advance(4)
    manager.add_state_change(S.CONNECTED)
    assert results == [True]
    manager.set_to_suspended()
    manager.wait_until_connected(1).addCallback(results.append)
    clock.advance(1)
    assert results == [True, False]
    assert clock.getDelayedCalls() != []  # only the simulated expiration is left


def test_closed_manager_posts_nothing() -> None:
    manager, clock, seen = make_manager()
    manager.close()
    assert not manager.add_state_change(S.CONNECTED)
    clock.advance(0)
    assert seen == []


def test_error_policies() -> None:
    standard = StandardConnectionStateErrorPolicy()
    session = SessionConnectionStateErrorPolicy()
    assert [s for s in S if standard.is_error_state(s)] == [S.SUSPENDED, S.LOST]
    assert [s for s in S if session.is_error_state(s)] == [S.LOST]
    assert [s for s in S if s.is_connected] == [S.CONNECTED, S.RECONNECTED, S.READ_ONLY]


def test_current_state_is_the_state_posted() -> None:
    """The first connection reads CONNECTED (Curator keeps RECONNECTED internally);
    a later one RECONNECTED; after close the session is LOST."""
    manager, clock, seen = make_manager()
    assert manager.current_state is None
    assert manager.add_state_change(S.RECONNECTED)
    assert manager.current_state is S.CONNECTED
    assert not manager.add_state_change(S.RECONNECTED)
    assert manager.set_to_suspended()
    assert manager.add_state_change(S.RECONNECTED)
    assert manager.current_state is S.RECONNECTED
    clock.advance(0)
    manager.close()
    assert manager.current_state is S.LOST
    assert seen == [S.CONNECTED, S.SUSPENDED, S.RECONNECTED]
