""":class:`QuicStream`, one bidirectional stream as the application sees it, and
:class:`ConnectionInfo`, what the application may know about its connection.

A stream holds only its own buffers and flags; everything that touches aioquic or the
connection's accounting goes through its :class:`StreamOwner` (the connection driver).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from quicnproto.errors import ErrorCode, TransportError, TransportReason
from quicnproto.transport.quic.limits import SEND_CHUNK


def _closed() -> bool:
    return True


def _no_close(error_code: int, reason: str) -> None:
    pass


@dataclass(eq=False)
class ConnectionInfo:
    """What the application may know about one QUIC connection (server or client side)."""

    id: int
    """Unique per process."""

    remote_address: tuple[str, int]
    """The peer's IP address and UDP port."""

    state: dict[str, Any] = field(default_factory=dict, repr=False)
    """Free for the application, e.g. the identity authenticated on this connection."""

    alpn_protocol: str | None = None
    """The negotiated ALPN protocol, once the handshake completed."""

    _is_closing: Callable[[], bool] = field(default=_closed, repr=False)
    _close: Callable[[int, str], None] = field(default=_no_close, repr=False)

    @property
    def is_closed(self) -> bool:
        """Whether the connection was closed or terminated."""
        return self._is_closing()

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str = "") -> None:
        """Close the connection with an application error code (idempotent).

        Every stream of the connection fails with :class:`TransportError` afterwards.
        """
        self._close(error_code, reason)

    def detach(self) -> None:
        """The connection is gone: drop the callables that refer back to it (a reference
        cycle), so it is freed as soon as nothing else holds it."""
        self._is_closing = _closed
        self._close = _no_close


class StreamOwner(Protocol):
    """What a :class:`QuicStream` needs from the connection that drives it."""

    info: ConnectionInfo

    def consumed(self, size: int) -> None:
        """The application took ``size`` buffered bytes."""

    async def wait_send_window(self, stream: QuicStream) -> None:
        """Wait while too much of the stream's sent data is unacknowledged."""

    def send_stream_data(self, stream: QuicStream, data: bytes, *, end_stream: bool) -> None:
        """Queue ``data`` on the stream."""

    def reset_stream(self, stream: QuicStream, code: int) -> None:
        """Abort both directions of the stream."""

    def finish_stream(self, stream: QuicStream) -> None:
        """Release the stream: send EOF if possible, stop reading."""


class QuicStream:
    """One bidirectional QUIC stream, as seen by the application.

    Reads and writes are bounded: unread received data is capped by
    ``TransportLimits.max_stream_buffer`` (the stream is reset beyond it) and ``send_all``
    waits while too much sent data is unacknowledged.
    """

    def __init__(self, owner: StreamOwner, stream_id: int, *, local: bool) -> None:
        self.stream_id = stream_id
        self.connection: ConnectionInfo = owner.info
        self._owner = owner
        self._local = local
        self._recv_buffer = bytearray()
        self._recv_eof = False
        self._recv_done = False
        self._peer_ended = False
        self._recv_error: TransportError | None = None
        self._send_done = False
        self._send_eof = False
        self._send_error: TransportError | None = None
        self._lot = trio.lowlevel.ParkingLot()
        self._reading = False
        self._writing = False
        self._closed = False
        self._handler_scope: trio.CancelScope | None = None
        """The running handler's scope (peer-opened streams); cancelled on STOP_SENDING."""

    def __repr__(self) -> str:
        return f"<QuicStream {self.stream_id} of connection {self.connection.id}>"

    # -- application API ----------------------------------------------------------------

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes`` received bytes, waiting for some if needed.

        Returns:
            ``b""`` once the peer finished its side of the stream.

        Raises:
            StreamResetError: the peer (or a limit) reset the stream.
            TransportError: the connection closed.
        """
        self._check_can_read(max_bytes)
        self._reading = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            parked = False
            while True:
                data = self._take(max_bytes)
                if data is not None:
                    if not parked:
                        # Having parked was our schedule point; otherwise yield once here.
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                await self._lot.park()
                parked = True
        finally:
            self._reading = False

    def receive_nowait(self, max_bytes: int = 65536) -> bytes | None:
        """Return up to ``max_bytes`` bytes already received, without waiting.

        Returns:
            ``None`` when nothing is buffered yet, ``b""`` once the peer finished its side.

        Raises:
            StreamResetError: the peer (or a limit) reset the stream.
            TransportError: the connection closed.
        """
        self._check_can_read(max_bytes)
        return self._take(max_bytes)

    def _check_can_read(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._reading:
            raise trio.BusyResourceError("another task is already reading from this stream")

    def _take(self, max_bytes: int) -> bytes | None:
        if self._recv_buffer:
            data = bytes(self._recv_buffer[:max_bytes])
            del self._recv_buffer[:max_bytes]
            self._owner.consumed(len(data))
            return data
        if self._recv_error is not None:
            raise self._recv_error
        if self._recv_eof:
            return b""
        return None

    async def send_all(self, data: bytes, *, end_stream: bool = False) -> None:
        """Send ``data`` (and the end of the stream if ``end_stream``).

        Waits while more than a bounded amount of this stream's data is unacknowledged, so a
        peer that does not read makes the writer wait rather than the process grow.

        Raises:
            StreamResetError: the stream was reset (by us, or STOP_SENDING from the peer).
            TransportError: the connection closed, or the stream was already finished.
        """
        if self._writing:
            raise trio.BusyResourceError("another task is already writing to this stream")
        self._writing = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(bytes(data))
            offset = 0
            while True:
                self._check_can_send()
                await self._owner.wait_send_window(self)
                self._check_can_send()
                chunk = view[offset : offset + SEND_CHUNK]
                offset += len(chunk)
                last = offset >= len(view)
                self._owner.send_stream_data(self, bytes(chunk), end_stream=end_stream and last)
                if last:
                    break
        finally:
            self._writing = False
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Finish our side of the stream; a no-op if it is already finished."""
        if self._send_eof:
            await trio.lowlevel.checkpoint()
            return
        await self.send_all(b"", end_stream=True)

    def reset(self, error_code: int) -> None:
        """Abort both directions of the stream with an application error code.

        Sends RESET_STREAM for our side (unless finished) and STOP_SENDING for the peer's side
        (unless already received in full). Pending and future reads and writes fail with
        :class:`StreamResetError`.
        """
        self._owner.reset_stream(self, error_code)

    async def aclose(self) -> None:
        """Release the stream: finish sending if we can, stop receiving, and reset otherwise."""
        await trio.lowlevel.checkpoint()
        self._owner.finish_stream(self)

    async def __aenter__(self) -> QuicStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            self._owner.reset_stream(self, ErrorCode.INTERNAL)
        else:
            self._owner.finish_stream(self)

    # -- driver side ----------------------------------------------------------------------

    def _check_can_send(self) -> None:
        if self._send_error is not None:
            raise self._send_error
        if self._send_eof:
            raise TransportError(
                "the stream was already finished for sending", TransportReason.STREAM_FINISHED
            )

    def _wake(self) -> None:
        self._lot.unpark_all()
