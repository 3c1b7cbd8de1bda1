"""The ``psk_secret``: chaining pre-shared keys into the key schedule (RFC 9420 §8.4).

Each PSK is first extracted on its own and expanded with a :class:`~mls.psk_id.PSKLabel`
naming it, its position and the list's length; the results are then chained by Extract,
starting from ``KDF.Nh`` zero bytes::

    psk_extracted[i] = Extract(0, psk[i])
    psk_input[i]     = ExpandWithLabel(psk_extracted[i], "derived psk", PSKLabel(id, i, n), Nh)
    psk_secret[i+1]  = Extract(psk_input[i], psk_secret[i])

An empty list yields the zero vector, the same value the key schedule uses for "no PSKs".

This module takes the PSK *values* as input: finding them (an application's external PSK
store, or the ``resumption_psk`` of a past epoch) is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence

from .crypto.ciphersuite import Suite
from .crypto.labels import expand_with_label
from .errors import UsageError
from .psk_id import PreSharedKeyID, PSKLabel

MAX_PSKS = 0xFFFF
"""``PSKLabel.count`` is a uint16, so at most this many PSKs fit in one chain."""


def psk_secret(suite: Suite, psks: Sequence[tuple[PreSharedKeyID, bytes]]) -> bytes:
    """The ``psk_secret`` of a list of ``(PreSharedKeyID, psk value)`` pairs, in the order
    the Commit's PreSharedKey proposals (or the GroupSecrets' ``psks``) list them (RFC 9420
    §8.4).

    Raises:
        UsageError: more than 65535 PSKs.
    """
    count = len(psks)
    if count > MAX_PSKS:
        raise UsageError(f"{count} PSKs exceed the uint16 count of PSKLabel")
    zero = bytes(suite.hash_length)
    secret = zero
    for index, (psk_id, value) in enumerate(psks):
        extracted = suite.kdf_extract(zero, value)
        label = PSKLabel(psk_id, index, count).encode()
        psk_input = expand_with_label(suite, extracted, b"derived psk", label, suite.hash_length)
        secret = suite.kdf_extract(psk_input, secret)
    return secret
