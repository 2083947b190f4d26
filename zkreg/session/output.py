"""
The output side of a client connection: replies collected per batch and sent in one
write, straight to the socket when the transport has nothing queued, and bounded (the
transport drives the connection as a push producer; past C{max_output_buffer} unsent
bytes the connection is not read, and past C{output_stall_timeout} it is closed).
Reading is paused and resumed here for every reason at once (throttling, held input,
full output).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from zkreg.session.states import CLOSING, ESTABLISHED
from zkreg.transports import send_now

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

#: Bytes of replies collected in one batch above which they are handed to the
#: transport as a sequence rather than joined (a large node's data is then never
#: copied into a joined batch).
_JOIN_LIMIT = 65536


class ConnectionOutput:
    """
    The output half of L{zkreg.session.protocol.ClientConnection} (a mixin: both
    halves share the connection's state).
    """

    factory: SessionServerFactory
    transport: Any
    session_id: int
    peer: str
    packets_sent: int
    _log: Logger
    _state: int
    _out: list[bytes] | None
    _out_size: int
    _close_after_flush: bool
    _processing: bool
    _direct_write: bool
    _output_full: bool
    _transport_full: bool
    _transport_paused: bool
    _input_held: bool
    _reading_paused: bool
    _stall_timer: Any
    _stall_call: Any
    _continue_call: Any
    _buffer: bytes
    _write_received: list[float]

    if TYPE_CHECKING:

        def _lose_connection(self) -> None: ...

        def _continue_input(self) -> None: ...

        def _settle_write_latencies(self, now: float | None = None) -> None: ...

    def send(self, frame: bytes) -> None:
        """
        Queue one frame behind everything already sent or queued on this connection.

        Within a batch (one dataReceived, one Deferred callback) frames are collected
        and written together at its end; outside one they are written at once.
        """
        self.packets_sent += 1
        self.factory.stats.packets_sent += 1
        if self._out is not None:
            self._out.append(frame)
            self._out_size += len(frame)
        elif self._state != CLOSING or self._close_after_flush:
            self._write(frame)
            if self._transport_full:
                self._check_output()

    def send_pieces(self, pieces: tuple[bytes, ...]) -> None:
        """
        L{send} for one frame given in pieces (a header, then a node's data as the
        tree holds it): the data is handed to the transport as it is, never copied
        into a reply of its own, so replies of one large node share its buffer.
        """
        self.packets_sent += 1
        self.factory.stats.packets_sent += 1
        if self._out is not None:
            self._out.extend(pieces)
            self._out_size += sum(map(len, pieces))
        elif self._state != CLOSING or self._close_after_flush:
            self.transport.writeSequence(pieces)
            if self._transport_full:
                self._check_output()

    def _write(self, data: bytes) -> None:
        if self._direct_write:
            send_now(self.transport, data)
        else:
            self.transport.write(data)

    def send_event(self, frame: bytes) -> None:
        """Deliver a watch notification (already encoded, shared by all watchers)."""
        if self._state == ESTABLISHED:
            self._flush_later()
            self.send(frame)

    def _flush_later(self) -> None:
        """
        Collect frames produced outside a dataReceived (replies of a group commit,
        notifications) until the factory flushes every such connection, once per
        reactor turn: a group commit of many writes is then one send per
        connection, not one per reply.
        """
        if self._out is None:
            self._out = []
            self.factory.flush_later(self)  # type: ignore[arg-type]  # always a ClientConnection

    def flush(self) -> None:
        """Send the frames collected by L{_flush_later} (unless a batch owns them)."""
        if self._out is not None and not self._processing:
            self._end_batch()

    def _begin_batch(self) -> bool:
        if self._out is not None:
            return False
        self._out = []
        return True

    def _end_batch(self) -> None:
        if self._write_received:
            self._settle_write_latencies()
        out = self._out
        size = self._out_size
        self._out = None
        self._out_size = 0
        if out:
            if len(out) == 1:
                self._write(out[0])
            elif size > _JOIN_LIMIT:
                self.transport.writeSequence(out)
            else:
                self._write(b"".join(out))
            if self._transport_full:
                self._check_output()
        if self._close_after_flush:
            self._close_after_flush = False
            self._lose_connection()

    # -- bounded output (IPushProducer, driven by the transport) ---------------------

    def pauseProducing(self) -> None:
        """
        The transport holds more unsent bytes than its own (small) buffer size: from
        now until it drains, each write checks them against C{max_output_buffer}.
        """
        self._transport_full = True
        self._check_output()

    def _unsent_bytes(self) -> int:
        """
        The bytes queued on the TCP transport (over TLS, the TLS transport relays
        these attributes to the TCP one under it, where the encrypted replies wait),
        plus any cleartext TLS holds back until its handshake allows sending.
        """
        transport = self.transport
        unsent = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        held_by_tls = transport.__dict__.get("_appSendBuffer")
        if held_by_tls:
            unsent += sum(map(len, held_by_tls))
        return unsent

    def _check_output(self) -> None:
        """
        Past C{max_output_buffer} unsent bytes: read no more requests until they
        drain, and close the connection if it stays so for C{output_stall_timeout}.
        """
        if self._output_full or self._unsent_bytes() <= self.factory.max_output_buffer:
            return
        self._output_full = True
        self._update_reading()
        timeout = self.factory.output_stall_timeout_s
        if self._stall_timer is None and timeout > 0:
            self._stall_timer = self.factory.clock.callLater(timeout, self._output_stalled)

    def resumeProducing(self) -> None:
        """The transport sent everything it held: read (and process) requests again."""
        self._transport_full = False
        self._output_full = False
        self._cancel_stall_timer()
        if self._input_held:
            self._continue_later()
        else:
            self._update_reading()

    def stopProducing(self) -> None:
        """The transport is closing; connectionLost frees the rest."""

    def _cancel_stall_timer(self) -> None:
        timer = self._stall_timer
        if timer is not None:
            self._stall_timer = None
            if timer.active():
                timer.cancel()

    def _output_stalled(self) -> None:
        self._stall_timer = None
        if self._state == CLOSING and not self._close_after_flush:
            return
        transport = self.transport
        unsent = self._unsent_bytes()
        self.factory.stats.slow_consumers_closed += 1
        self._log.warn(
            "client {peer} (session 0x{session_id:x}) read none of its {unsent} unsent "
            "bytes of replies for {timeout} s; closing its connection",
            peer=self.peer,
            session_id=self.session_id,
            unsent=unsent,
            timeout=self.factory.output_stall_timeout_s,
        )
        self._state = CLOSING
        self._out = None
        self._out_size = 0
        self._buffer = b""
        transport.abortConnection()

    def _update_reading(self) -> None:
        """Read from the socket unless throttled, held or the output is full."""
        paused = (
            self._reading_paused
            or self._output_full
            or self._input_held
            or self._stall_call is not None
        )
        if paused == self._transport_paused or self._state == CLOSING:
            return
        self._transport_paused = paused
        if paused:
            self.transport.pauseProducing()
        else:
            self.transport.resumeProducing()

    def _continue_later(self) -> None:
        """Process the frames left in the buffer in a later reactor turn."""
        if self._continue_call is None:
            self._continue_call = self.factory.clock.callLater(0, self._continue_input)

    def stall_reading(self, seconds: float) -> None:
        """
        Stop reading from this client for C{seconds}: the server-wide throttler's
        queue is full (ZooKeeper's throttler stalls the same way).
        """
        if self._stall_call is not None or self._state == CLOSING:
            return
        self._stall_call = self.factory.clock.callLater(seconds, self._stall_over)
        self._update_reading()

    def _stall_over(self) -> None:
        self._stall_call = None
        self._update_reading()

    @property
    def output_paused(self) -> bool:
        """Whether this connection is not read because its unsent output is over the bound."""
        return self._output_full
