from __future__ import annotations

import pytest

from mls.errors import DecodeError
from mls.psk_id import PreSharedKeyID, PSKLabel, PSKType, ResumptionPSKUsage


def test_external_psk_id_bytes() -> None:
    psk = PreSharedKeyID.external(b"id", b"nn")
    assert psk.encode() == bytes.fromhex("01026964026e6e")
    assert PreSharedKeyID.decode(psk.encode()) == psk


def test_resumption_psk_id_bytes() -> None:
    psk = PreSharedKeyID.resumption(ResumptionPSKUsage.BRANCH, b"g", 9, b"n")
    assert psk.encode() == bytes.fromhex("020301670000000000000009016e")
    decoded = PreSharedKeyID.decode(psk.encode())
    assert decoded == psk
    assert decoded.psktype == PSKType.RESUMPTION
    assert decoded.psk_id is None


def test_psk_label_bytes() -> None:
    label = PSKLabel(PreSharedKeyID.external(b"", b""), 1, 2)
    assert label.encode() == bytes.fromhex("01000000010002")


@pytest.mark.parametrize("psktype", [0, 3, 255])
def test_dec06_unknown_psk_type_does_not_decode(psktype: int) -> None:
    with pytest.raises(DecodeError):
        PreSharedKeyID.decode(bytes([psktype]) + bytes.fromhex("0000"))


@pytest.mark.parametrize("usage", [0, 4, 255])
def test_dec06_unknown_resumption_usage_does_not_decode(usage: int) -> None:
    good = PreSharedKeyID.resumption(ResumptionPSKUsage.APPLICATION, b"", 0, b"").encode()
    with pytest.raises(DecodeError):
        PreSharedKeyID.decode(good[:1] + bytes([usage]) + good[2:])
