"""The group context: the state every member agrees on in an epoch (RFC 9420 §8.1).

Its encoding is the context of many derivations (tree signatures, ``ExpandWithLabel`` of the
key schedule, the framing signature of member messages), so it sits low in the layering.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

from .codec import U16, U64, Enum, Opaque, Struct, Vector, Writer
from .extensions import Extension


class ProtocolVersion(IntEnum):
    """MLS protocol versions (RFC 9420 §6). A closed enum: other values do not decode."""

    MLS10 = 1


VERSION = Enum(ProtocolVersion, 2)
"""Codec of a ``ProtocolVersion`` field (uint16)."""


@dataclass(frozen=True)
class GroupContext(Struct):
    """RFC 9420 §8.1. ``epoch`` increases by one per Commit; ``tree_hash`` is the root's tree
    hash; ``cipher_suite`` is a plain integer (validation decides whether it is supported)."""

    version: Annotated[ProtocolVersion, VERSION]
    cipher_suite: Annotated[int, U16]
    group_id: Annotated[bytes, Opaque]
    epoch: Annotated[int, U64]
    tree_hash: Annotated[bytes, Opaque]
    confirmed_transcript_hash: Annotated[bytes, Opaque]
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]

    def encode_into(self, w: Writer) -> None:
        # The context is encoded into every signature and MAC of its epoch: encode it once.
        # (Frozen: the fields never change, so neither does the encoding.)
        cached = self.__dict__.get("_encoding")
        if cached is None:
            inner = Writer()
            super().encode_into(inner)
            cached = self.__dict__["_encoding"] = inner.getvalue()
        w.write(cached)
