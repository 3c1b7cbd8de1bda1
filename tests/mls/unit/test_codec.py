"""The codec's own rules (RFC 9420 §2.1; VALIDATION.md DEC-01..05)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest

from mls.codec import (
    U16,
    U32,
    Empty,
    Enum,
    Opaque,
    Reader,
    Struct,
    Vector,
    Writer,
    decode_exact,
    encode_value,
)
from mls.errors import DecodeError, UsageError
from mls.framing import ContentType, FramedContentAuthData, decode_private_message_content
from mls.group_context import ProtocolVersion
from mls.tree_nodes import decode_ratchet_tree


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (0, "00"),
        (63, "3f"),
        (64, "4040"),
        (16383, "7fff"),
        (16384, "80004000"),
        (2**30 - 1, "bfffffff"),
    ],
)
def test_length_header_bytes_and_minimality(value: int, header: str) -> None:
    w = Writer()
    w.varint(value)
    assert w.getvalue() == bytes.fromhex(header)
    assert Reader(bytes.fromhex(header)).varint() == value


def test_length_header_over_2_30_is_refused() -> None:
    with pytest.raises(UsageError):
        Writer().varint(2**30)


@pytest.mark.parametrize("size", [0, 63, 64, 16383, 16384])
def test_vector_header_grows_with_its_body(size: int) -> None:
    # The header is written in front of a body encoded in place.
    items = tuple(range(size // 2))
    encoded = encode_value(Vector(U16), items)
    body = b"".join(i.to_bytes(2, "big") for i in items)
    w = Writer()
    w.opaque(body)
    assert encoded == w.getvalue()
    assert decode_exact(Vector(U16), encoded) == items


def test_integer_vector_body_must_be_whole_elements() -> None:
    assert decode_exact(Vector(U32), bytes.fromhex("08 00000001 00000002")) == (1, 2)
    with pytest.raises(DecodeError):
        decode_exact(Vector(U32), bytes.fromhex("05 00000001 00"))


def test_integer_vector_element_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError):
        encode_value(Vector(U16), (0x10000,))
    with pytest.raises(UsageError):
        encode_value(Vector(U16), (-1,))


def test_enum_refuses_to_encode_an_unknown_value() -> None:
    codec: Any = Enum(ProtocolVersion, 2)
    with pytest.raises(UsageError):
        encode_value(codec, 2)
    assert encode_value(codec, ProtocolVersion.MLS10) == b"\x00\x01"


@dataclass(frozen=True)
class _Nothing(Struct):
    nothing: Annotated[None, Empty]


def test_vector_of_zero_width_elements_does_not_loop() -> None:
    # A non-empty body of elements that read no bytes would otherwise never end.
    with pytest.raises(DecodeError):
        decode_exact(Vector(_Nothing), b"\x01\x00")
    assert decode_exact(Vector(_Nothing), b"\x00") == ()


def test_vector_elements_cannot_read_past_the_body() -> None:
    # The body claims 2 bytes; its element claims 3, which the rest of the input would hold.
    with pytest.raises(DecodeError):
        decode_exact(Vector(Opaque), b"\x02\x03ab" + b"c")


@dataclass(frozen=True)
class _Blob(Struct):
    data: Annotated[bytes, Opaque]


# Each top-level decoder with a valid input for it.
_ENTRY_POINTS: dict[str, tuple[Any, bytes]] = {
    "Struct.decode": (lambda b, m: _Blob.decode(b, max_size=m), b"\x02ab"),
    "decode_exact": (lambda b, m: decode_exact(Opaque, b, max_size=m), b"\x02ab"),
    "decode_ratchet_tree": (lambda b, m: decode_ratchet_tree(b, max_size=m), b"\x01\x00"),
    "decode_exact_for": (
        lambda b, m: FramedContentAuthData.decode_exact_for(b, ContentType.PROPOSAL, max_size=m),
        b"\x02ab",
    ),
    "decode_private_message_content": (
        lambda b, m: decode_private_message_content(ContentType.APPLICATION, b, max_size=m),
        b"\x02ab\x01s\x00\x00",
    ),
}


@pytest.mark.parametrize("name", sorted(_ENTRY_POINTS))
def test_every_top_level_decoder_applies_the_size_cap_and_wants_bytes(name: str) -> None:
    decode, data = _ENTRY_POINTS[name]
    decode(data, len(data))  # at the cap: decodes
    with pytest.raises(DecodeError):
        decode(data, len(data) - 1)
    with pytest.raises(DecodeError):
        decode(data.decode("latin-1"), 100)  # a str, not bytes
