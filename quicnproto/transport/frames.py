"""Trio glue for length-prefixed frames (``quicnproto.rpc``) on a :class:`QuicStream`.

``read_frame`` asks the stream for at most the bytes still missing from the current frame, so it
never reads past a frame's end and a second call reads the next frame. The whole frame must
arrive before ``deadline`` (VALIDATION.md SRV-FR-01, SRV-Q-03: slow senders cannot hold a
handler forever). Bytes the stream already holds are taken without a scheduling round trip
(``receive_nowait`` when the stream has it), so a frame that arrived whole costs one wait.
"""

from __future__ import annotations

import math
from typing import Protocol

import trio

from quicnproto.errors import ErrorCode, ProtocolError
from quicnproto.rpc import FrameDecoder, encode_frame

__all__ = ["FrameStream", "read_frame", "write_frame"]

_READ_CHUNK = 65536


class FrameStream(Protocol):
    """What the helpers need from a stream (``QuicStream`` provides it)."""

    async def receive_some(self, max_bytes: int = 65536) -> bytes: ...

    async def send_all(self, data: bytes, *, end_stream: bool = False) -> None: ...


async def read_frame(stream: FrameStream, max_size: int, deadline: float = math.inf) -> bytes:
    """Read exactly one frame from ``stream`` and return its payload.

    Args:
        stream: the stream to read.
        max_size: the largest payload accepted, checked on the header before reading on.
        deadline: absolute ``trio.current_time()`` by which the whole frame must have arrived.

    Returns:
        The payload.

    Raises:
        ProtocolError: ``FRAME_TOO_LARGE`` for an oversize header, ``MALFORMED`` if the
            stream ends before a complete frame, ``TIMEOUT`` past the deadline.
        TransportError: the stream was reset or the connection closed.
    """
    decoder = FrameDecoder(max_size)
    if deadline == math.inf:
        return await _read_one(stream, decoder)
    frame = _buffered_frame(stream, decoder)
    if frame is not None:
        # The whole frame was already here (the usual case for a request): no deadline needed.
        await trio.lowlevel.checkpoint_if_cancelled()
        return frame
    with trio.move_on_at(deadline):
        return await _read_one(stream, decoder)
    raise ProtocolError("frame not received before the deadline", ErrorCode.TIMEOUT)


def _buffered_frame(stream: FrameStream, decoder: FrameDecoder) -> bytes | None:
    """Feed ``decoder`` what ``stream`` already holds; the frame if that completes it."""
    receive_nowait = getattr(stream, "receive_nowait", None)
    if receive_nowait is None:
        return None
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            return frame
        data = receive_nowait(min(_READ_CHUNK, decoder.next_read_size()))
        if not data:
            # Nothing buffered yet (None), or the end of the stream (b""): the waiting reader
            # below reports it.
            return None
        decoder.receive_data(data)


async def _read_one(stream: FrameStream, decoder: FrameDecoder) -> bytes:
    receive_nowait = getattr(stream, "receive_nowait", None)
    waited = False
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            if not waited:
                # A cancellation point, without a scheduling round trip: a handler reading
                # the request it was started for has only just been scheduled.
                await trio.lowlevel.checkpoint_if_cancelled()
            return frame
        want = min(_READ_CHUNK, decoder.next_read_size())
        data = receive_nowait(want) if receive_nowait is not None else None
        if data is None:
            data = await stream.receive_some(want)
            waited = True
        if not data:
            decoder.receive_eof()
            raise ProtocolError("stream ended before a frame")
        decoder.receive_data(data)


async def write_frame(stream: FrameStream, payload: bytes, end_stream: bool = True) -> None:
    """Write ``payload`` as one frame, by default finishing the stream with it."""
    await stream.send_all(encode_frame(payload), end_stream=end_stream)
