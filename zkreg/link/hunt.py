"""
Leaving a silent data server for one that answers (a session server given a
C{--data-server} list).

A paused (SIGSTOP) or hung data server keeps its connections open, and its kernel
still accepts new ones: neither a closed connection nor a refused one says it is
gone.  So the data link counts how long its data server has been silent (a data
server beats every L{zkreg.link.serve.BEAT_S}, besides its commits and answers), and
past a few beats of silence it hunts for another one without giving the silent one
up: each other endpoint of the list in turn gets a L{probe}, a connection that says
L{wire.Hello} and waits for the start of a sync, which only a working data server
that serves session servers sends (a standby on etcd does not even listen, a paused
data server accepts but never answers).  The first that answers is where the link
goes next; if the silent one speaks again first, the hunt ends and the link stays.

Moving is safe whatever the reason for the silence: the writes in flight are sent
again to the next data server with their stamps, so none applies twice
(L{zkreg.data.dedup}), and a paused leader that wakes after losing its etcd lease
cannot append (the fence).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from zkreg.link import wire
from zkreg.link.endpoints import EndpointsInTurn
from zkreg.proto.jute import DecodeError

__all__ = ["Hunt", "probe"]

_log = Logger(namespace="zkreg.link.hunt")

#: How long a probe waits for a data server to answer its hello.
PROBE_TIMEOUT_S = 1.0

#: The pause between two rounds of probes over the list.
ROUND_PAUSE_S = 0.1


class _Probe(Int32StringReceiver):
    """Says hello and tells whether the first frame back starts a sync."""

    #: The first frame of a sync is a few bytes; anything this long is not one.
    MAX_LENGTH = 64 * 1024

    def __init__(self, hello: bytes, answer: Callable[[bool], None]) -> None:
        self._hello = hello
        self._answer = answer
        self._done = False

    def connectionMade(self) -> None:
        self.sendString(self._hello)

    def stringReceived(self, frame: bytes) -> None:
        if self._done:
            return
        self._done = True
        try:
            message = wire.decode_message(frame)
        except DecodeError:
            message = None
        self._answer(isinstance(message, wire.SyncStart))
        # The rest (the sync itself) is for the link's own connection, made next.
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._done = True
        self._answer(False)


def probe(endpoint: Any, hello: bytes, clock: Any, timeout_s: float = PROBE_TIMEOUT_S) -> Deferred:
    """
    Ask the data server at C{endpoint} whether it serves session servers now.

    @param hello: the encoded L{wire.Hello} to say.
    @return: a Deferred firing with C{True} when it answered with the start of a
        sync within C{timeout_s}, else C{False} (refused, closed, silent); it never
        fails.
    """
    answered: Deferred = Deferred()
    protocols: list[Any] = []

    def answer(value: bool) -> None:
        if not answered.called:
            answered.callback(value)

    def connected(protocol: Any) -> None:
        protocols.append(protocol)

    def give_up() -> None:
        if not connecting.called:
            connecting.cancel()
        for protocol in protocols:
            transport = protocol.transport
            if transport is not None:
                transport.abortConnection()
        answer(False)

    connecting = endpoint.connect(Factory.forProtocol(lambda: _Probe(hello, answer)))
    connecting.addCallbacks(connected, lambda _failure: answer(False))
    timer = clock.callLater(timeout_s, give_up)

    def done(value: bool) -> bool:
        if timer.active():
            timer.cancel()
        return value

    return answered.addCallback(done)


class Hunt:
    """
    Probes the other endpoints of a list in turn, round after round, while the
    linked data server stays silent; tells C{found} of the first that answers.

    @ivar running: whether it is still hunting.
    """

    def __init__(
        self,
        endpoints: EndpointsInTurn,
        hello: bytes,
        clock: Any,
        still_silent: Callable[[], bool],
        found: Callable[[int, str], None],
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        round_pause_s: float = ROUND_PAUSE_S,
    ) -> None:
        """
        @param still_silent: whether the hunt is still wanted (the same connection,
            still silent); asked before each probe and before moving.
        @param found: C{found(index, description)} with the endpoint that answered.
        """
        self._endpoints = endpoints
        self._hello = hello
        self._clock = clock
        self._still_silent = still_silent
        self._found = found
        self._probe_timeout_s = probe_timeout_s
        self._round_pause_s = round_pause_s
        self._queue: list[tuple[int, str, Any]] = []
        self._pause: Any = None
        self.running = False

    def start(self) -> None:
        """Start the first round of probes now."""
        self.running = True
        self._round()

    def stop(self) -> None:
        """Stop hunting (a probe under way is left to finish, unheard)."""
        self.running = False
        if self._pause is not None and self._pause.active():
            self._pause.cancel()
        self._pause = None

    def _round(self) -> None:
        self._pause = None
        self._queue = self._endpoints.others()
        self._probe_next()

    def _probe_next(self) -> None:
        if not self.running:
            return
        if not self._still_silent():
            self.stop()
            return
        if not self._queue:
            self._pause = self._clock.callLater(self._round_pause_s, self._round)
            return
        index, description, endpoint = self._queue.pop(0)
        probing = probe(endpoint, self._hello, self._clock, self._probe_timeout_s)
        probing.addCallback(self._probed, index, description)
        probing.addErrback(lambda failure: _log.failure("probing {d}", failure, d=description))

    def _probed(self, answered: bool, index: int, description: str) -> None:
        if not self.running:
            return
        if answered and self._still_silent():
            self.stop()
            self._found(index, description)
            return
        self._probe_next()
