"""Property tests for the frame decoder: reassembly under any chunking; hostile bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quicnproto.errors import ErrorCode, ProtocolError
from quicnproto.rpc import FrameDecoder, encode_frame

MAX = 512


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    pieces = []
    last = 0
    for cut in [*cuts, len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return pieces


@given(st.lists(st.binary(max_size=MAX), max_size=8), st.data())
def test_any_chunking_reassembles_the_same_frames(
    payloads: list[bytes], data: st.DataObject
) -> None:
    wire = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(MAX)
    frames = []
    for piece in data.draw(chunked(wire)):
        decoder.receive_data(piece)
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    decoder.receive_eof()
    assert frames == payloads
    assert decoder.buffered == 0


def feed(decoder: FrameDecoder, pieces: list[bytes]) -> list[bytes]:
    frames = []
    for piece in pieces:
        decoder.receive_data(piece)
        while (frame := decoder.next_frame()) is not None:
            assert len(frame) <= MAX
            frames.append(frame)
    decoder.receive_eof()
    return frames


@given(st.binary(max_size=2048), st.data())
def test_arbitrary_bytes_yield_frames_or_protocol_error(blob: bytes, data: st.DataObject) -> None:
    decoder = FrameDecoder(MAX)
    try:
        frames = feed(decoder, data.draw(chunked(blob)))
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.FRAME_TOO_LARGE)
    else:
        # Whatever was accepted re-encodes to exactly the input.
        assert b"".join(encode_frame(f) for f in frames) == blob


@given(
    st.lists(st.binary(max_size=64), min_size=1, max_size=4),
    st.integers(0, 10_000),
    st.sampled_from(["flip", "truncate", "insert", "length"]),
    st.data(),
)
def test_mutated_frames_yield_frames_or_protocol_error(
    payloads: list[bytes], where: int, how: str, data: st.DataObject
) -> None:
    wire = bytearray(b"".join(encode_frame(p) for p in payloads))
    at = where % len(wire)
    if how == "flip":
        wire[at] ^= 1 << (where % 8)
    elif how == "truncate":
        del wire[at:]
    elif how == "insert":
        wire[at:at] = bytes([where % 256])
    else:
        wire[at] = 0xFF
    decoder = FrameDecoder(MAX)
    try:
        frames = feed(decoder, data.draw(chunked(bytes(wire))))
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.FRAME_TOO_LARGE)
    else:
        assert b"".join(encode_frame(f) for f in frames) == bytes(wire)
