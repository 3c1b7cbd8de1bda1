"""Every wire struct round-trips (VALIDATION.md DEC-07): ``decode(encode(x)) == x`` and
``encode(decode(b)) == b``, for values drawn from the struct's own codec declaration."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.codec import STRUCTS, Struct
from mls.framing import ContentType, FramedContentAuthData
from tests.strategies import for_struct, import_all_mls

import_all_mls()

ALL_STRUCTS = list(STRUCTS)


def test_every_struct_is_covered() -> None:
    # The registry holds the structs of every layer (a missing import would shrink it).
    names = {cls.__name__ for cls in ALL_STRUCTS}
    assert {
        "MLSMessage",
        "KeyPackage",
        "Welcome",
        "GroupInfo",
        "Commit",
        "Node",
        "UpdatePath",
        "PreSharedKeyID",
        "GroupContext",
        "Credential",
        "Extension",
    } <= names


def _roundtrip(cls: type[Struct], value: Any) -> None:
    encoded = value.encode()
    if cls is FramedContentAuthData:
        # Its wire form depends on the enclosing content type.
        content_type = (
            ContentType.COMMIT if value.confirmation_tag is not None else ContentType.PROPOSAL
        )
        decoded = FramedContentAuthData.decode_exact_for(encoded, content_type)
    else:
        decoded = cls.decode(encoded)
    assert decoded == value
    assert decoded.encode() == encoded


@pytest.mark.parametrize("cls", ALL_STRUCTS, ids=lambda c: c.__name__)
@given(data=st.data())
def test_struct_roundtrip(cls: type[Struct], data: st.DataObject) -> None:
    _roundtrip(cls, data.draw(for_struct(cls)))
