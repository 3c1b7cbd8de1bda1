"""Length-prefixed framing for request and response messages on a QUIC stream (sans-I/O).

Every request and every response travels as one frame on its own QUIC stream::

    +----------------------+---------------------------+
    | length: uint32, BE   | payload: `length` bytes   |
    +----------------------+---------------------------+

:class:`FrameDecoder` is fed bytes in whatever chunks the transport delivers and hands back whole
payloads. It never imports trio or touches a socket (h11 style); the Trio glue lives in
``quicnproto.transport.frames``.

Contract: a decoder raises only :class:`~quicnproto.errors.ProtocolError` for bad input. A length
larger than ``max_frame_size`` is refused as soon as its four header bytes arrive, before any of
the payload is buffered (VALIDATION.md SRV-FR-01), with code ``ErrorCode.FRAME_TOO_LARGE``.
"""

from __future__ import annotations

import struct

from quicnproto.errors import ErrorCode, ProtocolError

__all__ = ["FRAME_HEADER_SIZE", "MAX_FRAME_LENGTH", "FrameDecoder", "encode_frame"]

FRAME_HEADER_SIZE = 4
"""Size of the big-endian length prefix in bytes."""

MAX_FRAME_LENGTH = 2**32 - 1
"""The largest length the four-byte prefix can express."""

_HEADER = struct.Struct(">I")


def encode_frame(payload: bytes) -> bytes:
    """Return ``payload`` preceded by its four-byte big-endian length.

    Args:
        payload: the message bytes.

    Returns:
        The frame, ready to be written to a stream.

    Raises:
        ValueError: if the payload is longer than :data:`MAX_FRAME_LENGTH` (caller misuse).
    """
    if len(payload) > MAX_FRAME_LENGTH:
        raise ValueError("payload too long for a 32-bit length prefix")
    return _HEADER.pack(len(payload)) + bytes(payload)


class FrameDecoder:
    """Reassembles length-prefixed frames from arbitrarily chunked input.

    Use ``receive_data`` for every chunk, then call ``next_frame`` until it returns ``None``;
    call ``receive_eof`` when the peer finishes its side of the stream.

    Every frame header in the buffer is checked as soon as it is complete, so an oversize length
    is refused before its payload is accepted. The decoder holds at most what it was fed and has
    not handed out yet; callers bound that by calling ``next_frame`` after each chunk (or by
    reading exactly :meth:`next_read_size` bytes at a time).
    """

    def __init__(self, max_frame_size: int) -> None:
        """Create a decoder.

        Args:
            max_frame_size: the largest payload length accepted, in bytes.

        Raises:
            ValueError: if ``max_frame_size`` is negative or beyond the prefix range.
        """
        if not 0 <= max_frame_size <= MAX_FRAME_LENGTH:
            raise ValueError("max_frame_size must be between 0 and 2**32 - 1")
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()
        # Offset in ``_buffer`` of the next header not yet validated: every header before it
        # has been checked, and the frames they announce end exactly at this offset.
        self._scan = 0
        self._eof = False

    @property
    def max_frame_size(self) -> int:
        """The largest payload length accepted."""
        return self._max_frame_size

    @property
    def buffered(self) -> int:
        """Number of bytes received and not yet returned by :meth:`next_frame`."""
        return len(self._buffer)

    @property
    def at_eof(self) -> bool:
        """Whether :meth:`receive_eof` was called."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer.

        Raises:
            ProtocolError: ``FRAME_TOO_LARGE`` if a frame header announces more than
                ``max_frame_size`` bytes; ``MALFORMED`` if data arrives after EOF.
        """
        if self._eof:
            raise ProtocolError("data received after the end of the stream")
        if not data:
            return
        self._buffer += data
        self._validate_headers()

    def receive_eof(self) -> None:
        """Record that the peer finished sending.

        Complete frames still buffered remain available from :meth:`next_frame`.

        Raises:
            ProtocolError: ``MALFORMED`` if the stream ends inside a frame (truncated header
                or payload).
        """
        self._eof = True
        if self._scan != len(self._buffer):
            raise ProtocolError("stream ended inside a frame")

    def next_frame(self) -> bytes | None:
        """Return the next complete payload, or ``None`` if more data is needed."""
        if len(self._buffer) < FRAME_HEADER_SIZE:
            return None
        (length,) = _HEADER.unpack_from(self._buffer)
        end = FRAME_HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[FRAME_HEADER_SIZE:end])
        del self._buffer[:end]
        self._scan -= end
        return payload

    def next_read_size(self) -> int:
        """Bytes still missing to complete the first buffered frame (or its header).

        Returns 0 when a complete frame is buffered. A reader that asks the transport for at
        most this many bytes never reads past the end of a frame.
        """
        have = len(self._buffer)
        if have < FRAME_HEADER_SIZE:
            return FRAME_HEADER_SIZE - have
        length: int = _HEADER.unpack_from(self._buffer)[0]
        return max(0, FRAME_HEADER_SIZE + length - have)

    def _validate_headers(self) -> None:
        size = len(self._buffer)
        while self._scan + FRAME_HEADER_SIZE <= size:
            (length,) = _HEADER.unpack_from(self._buffer, self._scan)
            if length > self._max_frame_size:
                # VALIDATION.md SRV-FR-01: refuse on the header, before buffering the payload.
                raise ProtocolError(
                    f"frame of {length} bytes exceeds the limit of {self._max_frame_size}",
                    ErrorCode.FRAME_TOO_LARGE,
                )
            self._scan += FRAME_HEADER_SIZE + length
