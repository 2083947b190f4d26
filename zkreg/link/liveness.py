"""
Liveness over a session server's data link (L{zkreg.link.tcp.TCPDataLink}), both ways:
what the link sends unasked, so that the data server knows its sessions and the link
alive (session touches, batched; a beat when nothing else was sent), and the data
server's silence, which the link watches.

A data server that stops speaking without closing its connections (a SIGSTOPped or
hung process: its kernel even accepts new ones) is noticed by its silence: it beats
every L{zkreg.link.serve.BEAT_S}, and after L{HUNT_AFTER_S} without a frame the link
probes the other data servers of its list and moves to the first that answers
(L{zkreg.link.hunt}); after L{DATA_SERVER_TIMEOUT_S} it drops the connection in any
case.

It is separate from the link's connection (L{zkreg.link.tcp}) because it only keeps
time: it sends on the connection, drops it, or moves the link to another data server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger

from zkreg.data.tree import DataTree
from zkreg.link import wire
from zkreg.link.endpoints import EndpointsInTurn
from zkreg.link.hunt import Hunt
from zkreg.link.states import LOG_NAMESPACE

if TYPE_CHECKING:
    from zkreg.link.tcp import LinkProtocol

#: A data server silent this long (no beat, no commit) is taken for gone, even when
#: no other data server answers (see L{HUNT_AFTER_S}).
DATA_SERVER_TIMEOUT_S = 10.0

#: After this much silence of the data server (three beats) the link looks for
#: another one of its list that answers (L{zkreg.link.hunt}).
HUNT_AFTER_S = 1.5

#: How often the link adds up its data server's silence.
SILENCE_CHECK_S = 0.1

_log = Logger(namespace=LOG_NAMESPACE)


class LinkLiveness:
    """
    The liveness part of L{zkreg.link.tcp.TCPDataLink} (a mixin: its beats and
    silence checks are looping calls the link starts and stops).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{TCPDataLink.__init__}).
    """

    #: Touches are gathered for this long and sent as one frame: a session server
    #: touches a session on every client packet, and the data server only needs to
    #: hear of each live session well within a tick.
    TOUCH_DELAY_S = 0.05

    clock: Any
    name: str
    auth_schemes: list[str]
    tree: DataTree | None
    connected_to: str | None
    data_server_timeout_s: float
    hunt_after_s: float
    #: how many times a silent data server was left for one that answered
    moves: int
    _endpoints: EndpointsInTurn
    _protocol: LinkProtocol | None
    _synced: bool
    #: the sessions touched since the last touches were sent
    _touched: dict[int, None]
    _touch_call: Any
    _sent_since_beat: bool
    #: seconds of silence of the linked data server, counted while we ran
    _silent_s: float
    _checked_at: float | None
    _hunt: Hunt | None

    # -- touches and beats -------------------------------------------------------------

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """
        See L{IDataLink.touch_sessions}; sent within L{TOUCH_DELAY_S}, batched, and
        while the link is down gathered until it is back.
        """
        self._touched.update(dict.fromkeys(session_ids))
        if self._touch_call is None and self._touched and self._synced:
            self._touch_call = self.clock.callLater(self.TOUCH_DELAY_S, self._send_touches)

    def _send_touches(self) -> None:
        self._touch_call = None
        protocol = self._protocol
        if protocol is None or not self._synced:
            return
        touched, self._touched = self._touched, {}
        protocol.send(wire.Touch(list(touched)))
        self._sent_since_beat = True

    def _beat(self) -> None:
        """Say we are alive when nothing else was sent since the last beat."""
        if not self._sent_since_beat and self._protocol is not None and self._synced:
            self._protocol.send(wire.Touch([]))
        self._sent_since_beat = False

    # -- silence -----------------------------------------------------------------------

    def _check_silence(self) -> None:
        """
        Add up the data server's silence; past L{hunt_after_s}, look for another
        data server of the list that answers (L{zkreg.link.hunt}); past
        L{data_server_timeout_s}, drop the connection whatever the others say.

        Only time this process ran counts: after a stall of our own, the frames not
        read yet are not the data server's silence (each check adds at most two
        check intervals).
        """
        now = self.clock.seconds()
        last, self._checked_at = self._checked_at, now
        if self._protocol is None or last is None:
            return
        self._silent_s += min(now - last, 2 * SILENCE_CHECK_S)
        if self._silent_s >= self.data_server_timeout_s:
            _log.warn(
                "data server {silent} silent for {seconds:.0f}s; reconnecting",
                silent=self.connected_to,
                seconds=self._silent_s,
            )
            self._silent_s = 0.0
            cast(Any, self._protocol.transport).abortConnection()
            return
        if self._silent_s < self.hunt_after_s or len(self._endpoints) < 2:
            return
        if self._hunt is not None and self._hunt.running:
            return
        protocol = self._protocol
        _log.warn(
            "data server {silent} silent for {seconds:.1f}s; looking for another that answers",
            silent=self.connected_to,
            seconds=self._silent_s,
        )
        last_zxid = self.tree.last_zxid if self.tree is not None else -1
        hello = wire.encode_message(
            wire.Hello(wire.PROTOCOL_VERSION, last_zxid, self.name, self.auth_schemes)
        )
        self._hunt = Hunt(
            self._endpoints,
            hello,
            self.clock,
            still_silent=lambda: self._protocol is protocol and self._silent_s >= self.hunt_after_s,
            found=self._found,
        )
        self._hunt.start()

    def _found(self, index: int, description: str) -> None:
        """Another data server answered while ours is silent: move to it."""
        _log.warn(
            "data server {found} answers while {silent} is silent: moving to it",
            found=description,
            silent=self.connected_to,
        )
        self.moves += 1
        self._endpoints.select(index)
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            cast(Any, protocol.transport).abortConnection()

    def _stop_hunting(self) -> None:
        if self._hunt is not None:
            self._hunt.stop()
            self._hunt = None
