"""
ObservedTime: the clock of session expiry leaves out the pauses of the server.
"""

from __future__ import annotations

from twisted.internet import task

from zkreg.config import ServerConfig
from zkreg.data.observed import HEARTBEAT_S, ObservedTime
from zkreg.data.server import DataServer


def run_heartbeats(clock: task.Clock, seconds: float) -> None:
    """Let the reactor run normally: every heartbeat on time."""
    for _ in range(round(seconds / HEARTBEAT_S)):
        clock.advance(HEARTBEAT_S)


def test_time_runs_with_the_wall_clock_while_the_reactor_runs():
    clock = task.Clock()
    clock.advance(1000)
    observed = ObservedTime(clock, pause_threshold_ms=500)
    observed.startService()
    start = observed.now_ms()
    run_heartbeats(clock, 3)
    assert observed.now_ms() - start == 3000
    assert observed.pauses == 0


def test_a_pause_is_left_out_but_one_heartbeat():
    clock = task.Clock()
    clock.advance(1000)
    observed = ObservedTime(clock, pause_threshold_ms=500)
    observed.startService()
    start = observed.now_ms()
    clock.advance(8)  # SIGSTOP for 8 s: no heartbeat ran
    assert observed.now_ms() - start == round(HEARTBEAT_S * 1000)
    assert observed.pauses == 1
    assert observed.longest_pause_ms == 8000 - round(HEARTBEAT_S * 1000)
    # Converting back to wall time accounts for the pause.
    assert observed.wall_ms(observed.now_ms()) == round(clock.seconds() * 1000)


def test_stopped_or_disabled_means_wall_clock():
    clock = task.Clock()
    stopped = ObservedTime(clock, pause_threshold_ms=500)
    disabled = ObservedTime(clock, pause_threshold_ms=0)
    disabled.startService()
    clock.advance(10)
    assert stopped.now_ms() == 10000
    assert disabled.now_ms() == 10000
    assert stopped.pauses == disabled.pauses == 0


def test_sessions_survive_a_pause_and_expire_after_real_silence():
    """
    A pause twice the session timeout expires nobody; the client's ping read after
    it keeps its session; a session that stays silent expires one timeout later.
    """
    clock = task.Clock()
    clock.advance(1000)
    server = DataServer(ServerConfig(tick_time_ms=1000, pause_threshold_ms=500), clock=clock)
    server.startService()
    try:
        live = server.create_session(4000).result.session_id
        silent = server.create_session(4000).result.session_id
        run_heartbeats(clock, 1)
        clock.advance(8)  # the pause
        server.touch_sessions([live])  # the ping that waited in the socket
        assert live in server.sessions and silent in server.sessions
        for _ in range(10):
            run_heartbeats(clock, 0.5)
            server.touch_sessions([live])
        assert live in server.sessions
        assert silent not in server.sessions
        assert silent not in server.tree.sessions
    finally:
        server.stopService()
