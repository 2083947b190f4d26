"""
The time a server was awake to observe: the clock of session expiry.

A session expires when its client was silent for its timeout, but the server can only
hear a client while its reactor runs.  After a pause (a SIGSTOP, a heavy request, an
expiry storm, a swapped-out process) the expiry timer runs before the pings that
waited in the sockets are read, and every session would look silent for the length
of the pause.  So expiry runs on observed time: wall time minus the pauses.  A
heartbeat every L{HEARTBEAT_S} notes that the reactor ran; a gap between two
observations longer than the pause threshold is a pause, and all of it but one
heartbeat is left out, which moves every session deadline by the pause (ZooKeeper's
leader re-arms every session after an election for the same reason).  The pings
read right after the pause then touch their sessions before any deadline passes.

A server whose clients really went away still expires them, later by the length of
the pauses: liveness of the live clients comes first.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

__all__ = ["HEARTBEAT_S", "ObservedTime"]

#: How often the reactor notes that it runs.
HEARTBEAT_S = 0.1


class ObservedTime(service.Service):
    """
    Milliseconds of wall time, less the pauses seen while running.

    Pauses are detected only while the service runs (its heartbeat makes a gap
    meaningful); stopped, L{now_ms} is the wall clock.

    @ivar pause_threshold_ms: a gap between observations longer than this is a
        pause; 0 disables pause detection.
    @ivar paused_ms: total length of the pauses left out, in ms.
    @ivar pauses: number of pauses seen.
    @ivar longest_pause_ms: the longest pause seen, in ms.
    """

    log = Logger()

    def __init__(self, clock: Any, pause_threshold_ms: int) -> None:
        self._clock = clock
        self.pause_threshold_ms = pause_threshold_ms
        self.paused_ms = 0
        self.pauses = 0
        self.longest_pause_ms = 0
        self._last_ms = self._wall_ms()
        self._heartbeat: LoopingCall | None = None

    def _wall_ms(self) -> int:
        # round, not int: a call due at a tick boundary must not read as 1 ms early.
        return round(self._clock.seconds() * 1000)

    def now_ms(self) -> int:
        """The observed time: wall time minus every pause seen so far."""
        wall = self._wall_ms()
        gap = wall - self._last_ms
        if gap > 0:
            if self.running and self.pause_threshold_ms and gap > self.pause_threshold_ms:
                self._paused(gap - round(HEARTBEAT_S * 1000))
            self._last_ms = wall
        return wall - self.paused_ms

    def wall_ms(self, observed_ms: int) -> int:
        """The wall time (ms) of an observed time, as of the pauses seen so far."""
        return observed_ms + self.paused_ms

    def _paused(self, pause_ms: int) -> None:
        self.paused_ms += pause_ms
        self.pauses += 1
        self.longest_pause_ms = max(self.longest_pause_ms, pause_ms)
        self.log.warn(
            "the server did not run for {pause_ms} ms (stopped, or busy); session "
            "deadlines move by that much",
            pause_ms=pause_ms,
        )

    def startService(self) -> None:
        service.Service.startService(self)
        self._last_ms = self._wall_ms()
        if self.pause_threshold_ms > 0:
            self._heartbeat = LoopingCall(self.now_ms)
            self._heartbeat.clock = self._clock
            self._heartbeat.start(HEARTBEAT_S, now=False)

    def stopService(self) -> None:
        service.Service.stopService(self)
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None
