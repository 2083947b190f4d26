"""
The input side of a client connection: framing the bytes a client sends into requests.

Framing is a hand-rolled loop over one buffer rather than Twisted's
C{Int32StringReceiver}, for three reasons measured or forced by the protocol: the first
four bytes of a connection may be a four-letter word rather than a length; a frame's
header and body are decoded in place (C{struct.unpack_from} and C{deserialize(buf,
offset)}) without slicing a copy of each frame; and all replies produced by one
C{dataReceived} leave in a single C{writeSequence}.

It is separate from the request pipeline (L{zkreg.session.pipeline}) because it only
cuts frames and hands each on: to the handshake before the session is established, to
the pipeline after; and it decides when to stop reading (a full output, a used-up time
slice), which the pipeline does not care about.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from zkreg.proto.jute import DecodeError
from zkreg.session.fourletter import four_letter_word_of
from zkreg.session.states import AWAIT_CONNECT, CLOSING, ESTABLISHED, HANDSHAKING

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_LENGTH = struct.Struct(">i")
#: Missing bytes of a partial frame above which its pieces are gathered, not appended.
_GATHER_THRESHOLD = 65536
#: Seconds of request processing one connection gets before the others get a turn:
#: a burst of heavy requests is worked through in slices, each a reactor turn apart,
#: so the pings of other connections (and the expiry of sessions) are not starved.
SLICE_S = 0.02
#: Frames processed between two looks at the clock for L{SLICE_S}.
_FRAMES_PER_CLOCK_CHECK = 32


class InputFraming:
    """
    The input-framing half of L{zkreg.session.protocol.ClientConnection} (a mixin:
    it reads the connection's state and hands each frame to the connection).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{ClientConnection.__init__}); C{_begin_batch},
    C{_end_batch}, C{_update_reading} and C{_continue_later} of
    L{zkreg.session.output.ConnectionOutput}; C{abort}, C{_answer_four_letter_word}
    and C{_connect_received} of C{ClientConnection}; and C{_request_received} of
    L{zkreg.session.pipeline.RequestPipeline}.
    """

    factory: SessionServerFactory
    peer: str
    packets_received: int
    _log: Logger
    _state: int
    _buffer: bytes
    #: bytes of the partial frame being gathered in C{_parts} (0: none)
    _wanted: int
    _parts: list[bytes]
    _parts_length: int
    _received_at: float
    _processing: bool
    _out_size: int
    _output_full: bool
    _input_held: bool
    _continue_call: Any

    if TYPE_CHECKING:

        def _begin_batch(self) -> bool: ...

        def _end_batch(self) -> None: ...

        def _update_reading(self) -> None: ...

        def _continue_later(self) -> None: ...

        def abort(self, why: str) -> None: ...

        def _answer_four_letter_word(self, word: str) -> None: ...

        def _connect_received(self, frame: memoryview) -> None: ...

        def _request_received(self, buf: bytes, start: int, end: int) -> None: ...

    def _continue_input(self) -> None:
        self._continue_call = None
        if self._state == CLOSING or self._output_full:
            return
        if self._input_held:
            self._input_held = False
            self._received_at = self.factory.clock.seconds()
            opened = self._begin_batch()
            try:
                self._process_buffer()
            finally:
                if opened:
                    self._end_batch()
        self._update_reading()

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._state == CLOSING:
            return
        if self._wanted:
            # A large frame arrives in pieces: join them once, when it is complete,
            # rather than re-copying the growing buffer on every segment.
            self._parts.append(data)
            self._parts_length += len(data)
            if self._parts_length < self._wanted:
                return
            self._buffer = b"".join(self._parts)
            self._parts = []
            self._parts_length = self._wanted = 0
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        self._received_at = self.factory.clock.seconds()
        self._begin_batch()
        try:
            self._process_buffer()
        finally:
            # Also sends what callbacks queued since the last flush: order is kept.
            self._end_batch()

    def _process_buffer(self) -> None:
        self._processing = True
        try:
            self._process_frames()
        except Exception:
            # A bug must cost this connection only, never the reactor's other work.
            self._log.failure(
                "unexpected failure handling data from {peer}; closing", peer=self.peer
            )
            self.abort("internal error")
        finally:
            self._processing = False

    def _process_frames(self) -> None:
        buf = self._buffer
        end = len(buf)
        offset = 0
        factory = self.factory
        max_packet = factory.max_packet_size
        factory_stats = factory.stats
        output_bound = factory.max_output_buffer
        clock = factory.clock
        slice_ends = clock.seconds() + SLICE_S
        until_clock_check = _FRAMES_PER_CLOCK_CHECK
        received = 0
        try:
            while end - offset >= 4:
                state = self._state
                if state == CLOSING or state == HANDSHAKING:
                    break
                if self._out_size > output_bound or self._output_full:
                    # The replies of this burst already fill the output: leave the
                    # rest of the requests unread until it drains.
                    self._hold_input()
                    break
                until_clock_check -= 1
                if not until_clock_check:
                    until_clock_check = _FRAMES_PER_CLOCK_CHECK
                    if clock.seconds() > slice_ends:
                        # This connection had its slice: the others get a turn.
                        self._hold_input()
                        break
                if state == AWAIT_CONNECT and offset == 0:
                    word = four_letter_word_of(buf)
                    if word is not None:
                        self._buffer = b""
                        self._answer_four_letter_word(word)
                        return
                (length,) = _LENGTH.unpack_from(buf, offset)
                if length < 0 or length > max_packet:
                    self.abort(f"frame length {length} outside 0..{max_packet}")
                    return
                frame_end = offset + 4 + length
                if frame_end > end:
                    break
                start = offset + 4
                offset = frame_end
                received += 1
                if state == ESTABLISHED:
                    self._request_received(buf, start, frame_end)
                else:
                    self._connect_received(memoryview(buf)[start:frame_end])
        except DecodeError as error:
            self.abort(f"undecodable frame: {error}")
            return
        finally:
            # Counted once per burst (nothing reads them during it).
            self.packets_received += received
            factory_stats.packets_received += received
        if self._state == CLOSING:
            self._buffer = b""
            return
        if offset:
            buf = self._buffer = buf[offset:]
        if len(buf) >= 4 and self._state == ESTABLISHED and not self._input_held:
            (length,) = _LENGTH.unpack_from(buf, 0)
            if length + 4 - len(buf) > _GATHER_THRESHOLD:
                self._wanted = length + 4
                self._parts = [buf]
                self._parts_length = len(buf)
                self._buffer = b""

    def _hold_input(self) -> None:
        self._input_held = True
        self._update_reading()
        self._continue_later()
