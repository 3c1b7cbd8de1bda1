"""Safety numbers: what two users compare out of band to know no one sits in the middle."""

from __future__ import annotations

import hashlib


def safety_number(a: bytes, b: bytes) -> str:
    """A 60-digit number two users compute identically from their identity keys, to compare
    out of band: 30 digits per key (an iterated SHA-512 of it), lower half first."""

    def half(key: bytes) -> str:
        digest = b"quicnproto safety number v1\0" + key
        for _ in range(5200):
            digest = hashlib.sha512(digest + key).digest()
        return "".join(
            f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
        )

    first, second = sorted((half(a), half(b)))
    return first + second
