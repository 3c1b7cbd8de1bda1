"""``deserialization.json``: variable-size length headers (RFC 9420 §2.1.2)."""

from __future__ import annotations

from typing import Any

from ..codec import Reader, Writer
from . import expect


def check(case: dict[str, Any]) -> None:
    header = bytes.fromhex(case["vlbytes_header"])
    # Decoding the header gives the length, and consumes every byte of it.
    r = Reader(header)
    expect("length", r.varint(), case["length"])
    expect("vlbytes_header (consumed)", r.remaining, 0)
    # Encoding the length gives back exactly the header (headers are minimal).
    w = Writer()
    w.varint(case["length"])
    expect("vlbytes_header", w.getvalue(), case["vlbytes_header"])
