"""Per-connection stream bookkeeping: which streams are open, what they buffer, and how each
one finishes, is reset or is refused.

:class:`StreamBook` is the part of a connection driver that a :class:`~.stream.QuicStream`
talks to (it implements :class:`~.stream.StreamOwner`); ``connection.Connection`` builds on it
and supplies the core's connection, the clock-driven transmit and the close.

Guarantees:

- a stream is forgotten only once both directions are done; one of our own streams that we
  stopped reading early keeps its slot until the peer's FIN or RESET_STREAM arrives, so a new
  stream never pushes the peer past its cap while our reset is in flight;
- every finished peer-initiated stream ID is remembered, so late frames for it are ignored
  rather than taken for a new stream;
- buffered bytes are counted per connection (``buffered``) as they are stored, read and
  discarded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

# A plain range set, whichever core drives the connection (aioquic is always installed).
from aioquic.quic.rangeset import RangeSet

from quicnproto.errors import ErrorCode, StreamResetError, TransportReason
from quicnproto.log import log_event
from quicnproto.transport.quic.backends import QuicCore
from quicnproto.transport.quic.limits import MAX_FINISHED_RANGES, SEND_HIGH_WATER
from quicnproto.transport.quic.stream import ConnectionInfo, QuicStream

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

_log = logging.getLogger("quicnproto.transport")


class StreamBook:
    """The streams of one connection and their state transitions."""

    quic: QuicConnection
    core: QuicCore
    info: ConnectionInfo
    closing: bool
    terminated: trio.Event
    last_activity: float

    def __init__(self) -> None:
        self.streams: dict[int, QuicStream] = {}
        self.buffered = 0
        """Received bytes held in stream buffers, across the connection."""
        self.peer_open = 0
        """Peer-initiated streams currently open."""
        self._send_lot = trio.lowlevel.ParkingLot()
        # Indices (stream_id >> 2) of finished peer-initiated bidirectional streams, so late
        # frames for a finished stream are ignored rather than taken as a new stream. Ranges
        # stay few for honest peers; a peer that fragments it is disconnected.
        self._peer_finished = RangeSet()

    def close(
        self, error_code: int = ErrorCode.NO_ERROR, reason: str = "", *, transport: bool = False
    ) -> None:
        raise NotImplementedError

    def _close_for(
        self,
        why: str,
        error_code: int,
        phrase: str,
        *,
        level: int = logging.INFO,
        transport: bool = False,
    ) -> None:
        """Log ``quic_connection_closing`` with ``reason=why``, then close."""
        log_event(level, "quic_connection_closing", logger=_log, conn=self.info.id, reason=why)
        self.close(error_code, phrase, transport=transport)

    def transmit_soon(self) -> None:
        raise NotImplementedError

    def _local_stream_closed(self) -> None:
        """One of our own streams closed."""

    def consumed(self, size: int) -> None:
        """The application read ``size`` buffered bytes of one of our streams."""
        self.buffered -= size

    def _refuse_stream(self, stream_id: int, code: int) -> None:
        self._try_reset(stream_id, code)
        self._try_stop(stream_id, code)
        self._finish_peer_index(stream_id >> 2)

    def _finish_peer_index(self, index: int) -> None:
        self._peer_finished.add(index)
        if len(self._peer_finished) > MAX_FINISHED_RANGES and not self.closing:
            self._close_for(
                "stream ids",
                ErrorCode.RATE_LIMITED,
                "stream ID fragmentation",
                level=logging.WARNING,
            )

    def _try_reset(self, stream_id: int, code: int) -> None:
        try:
            self.quic.reset_stream(stream_id, code)
        except self.core.STREAM_ERRORS:
            pass

    def _try_stop(self, stream_id: int, code: int) -> None:
        try:
            self.quic.stop_stream(stream_id, code)
        except self.core.STREAM_ERRORS:
            pass

    def _on_peer_reset(self, stream: QuicStream, code: int) -> None:
        stream._peer_ended = True
        if stream._recv_done:
            self._maybe_close_stream(stream)
            return
        stream._recv_error = StreamResetError("stream reset by peer", code)
        self._discard_buffer(stream)
        self._mark_recv_done(stream)
        stream._wake()

    def _limit_reset(self, stream: QuicStream, code: ErrorCode, what: str) -> None:
        log_event(
            logging.WARNING,
            "quic_stream_limit",
            logger=_log,
            conn=self.info.id,
            stream=stream.stream_id,
            reason=what,
        )
        self.reset_stream(stream, code, transmit=False)

    # -- stream state ---------------------------------------------------------------------

    def _discard_buffer(self, stream: QuicStream) -> None:
        self.buffered -= len(stream._recv_buffer)
        stream._recv_buffer.clear()

    def _mark_recv_done(self, stream: QuicStream) -> None:
        if not stream._recv_done:
            stream._recv_done = True
            self._maybe_close_stream(stream)

    def _mark_send_done(self, stream: QuicStream) -> None:
        if not stream._send_done:
            stream._send_done = True
            self._maybe_close_stream(stream)

    def _maybe_close_stream(self, stream: QuicStream) -> None:
        if not (stream._recv_done and stream._send_done) or stream._closed:
            return
        if stream._local and not stream._peer_ended and not self.terminated.is_set():
            # We stopped reading our own stream early: keep its slot until the peer's FIN or
            # RESET_STREAM shows the peer has finished it too, so a new stream never pushes
            # the node past its cap while our reset is still in flight.
            return
        stream._closed = True
        self.streams.pop(stream.stream_id, None)
        self.last_activity = trio.current_time()
        if stream._local:
            self._local_stream_closed()
        else:
            self.peer_open -= 1
            self._finish_peer_index(stream.stream_id >> 2)
        # A closed stream only moves the watchdog's deadlines later (the idle deadline counts
        # from now), so it is not woken: it re-evaluates when its current deadline passes.

    def send_stream_data(self, stream: QuicStream, data: bytes, *, end_stream: bool) -> None:
        """Queue ``data`` on ``stream``; the timer task sends it (see :meth:`transmit_soon`)."""
        try:
            self.quic.send_stream_data(stream.stream_id, data, end_stream=end_stream)
        except self.core.STREAM_ERRORS as exc:
            # The core already reset or finished this stream's sending side (or closed).
            stream._send_error = StreamResetError("the stream can no longer send", 0)
            self._mark_send_done(stream)
            raise stream._send_error from exc
        if end_stream:
            stream._send_eof = True
            self._mark_send_done(stream)
        self.last_activity = trio.current_time()
        self.transmit_soon()

    def reset_stream(self, stream: QuicStream, code: int, *, transmit: bool = True) -> None:
        """Abort both directions of ``stream`` with ``code``."""
        error = StreamResetError("stream reset locally", code)
        if not stream._send_done:
            self._try_reset(stream.stream_id, code)
            stream._send_error = error
            self._mark_send_done(stream)
        if not stream._recv_done:
            self._try_stop(stream.stream_id, code)
            stream._recv_error = error
            self._mark_recv_done(stream)
        self._discard_buffer(stream)
        stream._wake()
        self._send_lot.unpark_all()
        if transmit:
            self.transmit_soon()

    def finish_stream(self, stream: QuicStream) -> None:
        """Release a stream the application is done with.

        Unsent EOF is sent if nothing is being written; unread input is stopped.
        """
        if self.terminated.is_set():
            self._discard_buffer(stream)
            return
        queued = False
        if not stream._send_done:
            queued = True
            if stream._writing:
                self._try_reset(stream.stream_id, ErrorCode.INTERNAL)
                stream._send_error = StreamResetError(
                    "stream closed", ErrorCode.INTERNAL, TransportReason.STREAM_CLOSED
                )
                self._mark_send_done(stream)
            else:
                try:
                    self.quic.send_stream_data(stream.stream_id, b"", end_stream=True)
                    stream._send_eof = True
                except self.core.STREAM_ERRORS:
                    pass
                self._mark_send_done(stream)
        if not stream._recv_done:
            queued = True
            self._try_stop(stream.stream_id, ErrorCode.NO_ERROR)
            stream._recv_error = StreamResetError(
                "stream closed", ErrorCode.NO_ERROR, TransportReason.STREAM_CLOSED
            )
            self._mark_recv_done(stream)
        self._discard_buffer(stream)
        stream._wake()
        if queued:
            # Nothing new to send for a stream already finished both ways (the common case):
            # a pending ACK then waits for the next request or its timer, not a packet now.
            self.transmit_soon()

    async def wait_send_window(self, stream: QuicStream) -> None:
        """Wait while too much of this stream's sent data is unacknowledged."""
        while (
            stream._send_error is None
            and not self.terminated.is_set()
            and self.core.unacknowledged_bytes(self.quic, stream.stream_id) > SEND_HIGH_WATER
        ):
            await self._send_lot.park()

    def wake_writers(self) -> None:
        """Let writers waiting for the send window look again."""
        if self._send_lot:
            self._send_lot.unpark_all()
