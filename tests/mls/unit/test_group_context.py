from __future__ import annotations

import pytest

from mls.errors import DecodeError
from mls.extensions import Extension
from mls.group_context import GroupContext, ProtocolVersion

CONTEXT = GroupContext(
    version=ProtocolVersion.MLS10,
    cipher_suite=1,
    group_id=b"gid",
    epoch=2,
    tree_hash=b"\xaa",
    confirmed_transcript_hash=b"",
    extensions=(Extension(3, b""),),
)
BYTES = bytes.fromhex("0001000103676964000000000000000201aa0003000300")


def test_group_context_bytes() -> None:
    assert CONTEXT.encode() == BYTES
    assert GroupContext.decode(BYTES) == CONTEXT


@pytest.mark.parametrize("version", [0, 2, 0xFFFF])
def test_dec06_version_other_than_mls10_does_not_decode(version: int) -> None:
    with pytest.raises(DecodeError):
        GroupContext.decode(version.to_bytes(2, "big") + BYTES[2:])


def test_unknown_cipher_suite_decodes_as_an_integer() -> None:
    # Whether a suite is supported is validation's call, not the decoder's.
    assert GroupContext.decode(BYTES[:2] + b"\x0a\x0a" + BYTES[4:]).cipher_suite == 0x0A0A
