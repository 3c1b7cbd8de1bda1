"""Length-prefixed framing (quicnproto.rpc): whole, chunked, trailing, oversize, truncated."""

from __future__ import annotations

import struct

import pytest

from quicnproto.errors import ErrorCode, ProtocolError
from quicnproto.rpc import FRAME_HEADER_SIZE, FrameDecoder, encode_frame

PAYLOADS = [b"", b"a", b"hello world", bytes(range(256)) * 40]


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert encode_frame(b"x" * 0x01020304)[:4] == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("payload", PAYLOADS, ids=len)
def test_decode_whole_frame(payload: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    decoder.receive_data(encode_frame(payload))
    assert decoder.next_frame() == payload
    assert decoder.next_frame() is None
    assert decoder.buffered == 0
    decoder.receive_eof()
    assert decoder.at_eof


@pytest.mark.parametrize("payload", PAYLOADS, ids=len)
def test_decode_byte_at_a_time(payload: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    wire = encode_frame(payload)
    for i, byte in enumerate(wire):
        assert decoder.next_frame() is None
        assert decoder.next_read_size() >= 1
        decoder.receive_data(bytes([byte]))
        if i < len(wire) - 1:
            assert decoder.next_frame() is None
    assert decoder.next_read_size() == 0
    assert decoder.next_frame() == payload
    decoder.receive_eof()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 100, 4096])
def test_decode_several_frames_in_chunks(chunk: int) -> None:
    wire = b"".join(encode_frame(p) for p in PAYLOADS)
    decoder = FrameDecoder(max_frame_size=1 << 20)
    frames: list[bytes] = []
    for start in range(0, len(wire), chunk):
        decoder.receive_data(wire[start : start + chunk])
        frames.extend(drain(decoder))
    decoder.receive_eof()
    assert frames == PAYLOADS


def test_trailing_data_stays_buffered_for_the_next_frame() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(encode_frame(b"first") + b"\x00\x00")
    assert decoder.next_frame() == b"first"
    assert decoder.next_frame() is None
    assert decoder.buffered == 2
    assert decoder.next_read_size() == 2
    decoder.receive_data(b"\x00\x02xy")
    assert decoder.next_frame() == b"xy"


def test_trailing_partial_frame_at_eof_is_protocol_error() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(encode_frame(b"ok") + b"\x00\x00\x00\x05ab")
    with pytest.raises(ProtocolError) as info:
        decoder.receive_eof()
    assert info.value.code == ErrorCode.MALFORMED
    # The complete frame before the truncated one is still delivered.
    assert decoder.next_frame() == b"ok"


def test_oversize_header_rejected_before_payload() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    with pytest.raises(ProtocolError) as info:
        decoder.receive_data(struct.pack(">I", 11))
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def test_oversize_header_4gib_rejected_on_header_alone() -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    decoder.receive_data(b"\xff\xff")
    with pytest.raises(ProtocolError) as info:
        decoder.receive_data(b"\xff\xff")
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def test_oversize_second_header_rejected_when_it_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=4)
    with pytest.raises(ProtocolError) as info:
        decoder.receive_data(encode_frame(b"abcd") + struct.pack(">I", 5))
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def test_exact_max_size_accepted() -> None:
    decoder = FrameDecoder(max_frame_size=4)
    decoder.receive_data(encode_frame(b"abcd"))
    assert decoder.next_frame() == b"abcd"


@pytest.mark.parametrize("cut", range(1, FRAME_HEADER_SIZE + 5))
def test_truncated_at_every_offset(cut: int) -> None:
    wire = encode_frame(b"hello")
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(wire[:cut])
    if cut == len(wire):
        decoder.receive_eof()
        assert decoder.next_frame() == b"hello"
        return
    assert decoder.next_frame() is None
    with pytest.raises(ProtocolError) as info:
        decoder.receive_eof()
    assert info.value.code == ErrorCode.MALFORMED


def test_clean_eof_without_data() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_eof()
    assert decoder.next_frame() is None


def test_data_after_eof_is_protocol_error() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_eof()
    with pytest.raises(ProtocolError) as info:
        decoder.receive_data(b"x")
    assert info.value.code == ErrorCode.MALFORMED


def test_empty_chunks_are_ignored() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(b"")
    decoder.receive_data(encode_frame(b"z"))
    decoder.receive_data(b"")
    assert drain(decoder) == [b"z"]


def test_invalid_max_frame_size_is_caller_misuse() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=-1)
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=2**32)
