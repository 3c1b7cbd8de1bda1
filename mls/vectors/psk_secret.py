"""``psk_secret.json``: chaining external PSKs into a ``psk_secret`` (RFC 9420 §8.4)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..psk import psk_secret
from ..psk_id import PreSharedKeyID
from . import expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    # Each entry is an external PSK: its PreSharedKeyID has the given psk_id and psk_nonce.
    psks = [
        (
            PreSharedKeyID.external(bytes.fromhex(p["psk_id"]), bytes.fromhex(p["psk_nonce"])),
            bytes.fromhex(p["psk"]),
        )
        for p in case["psks"]
    ]
    # The chain over all of them, in order, is the psk_secret (zeros for an empty list).
    expect("psk_secret", psk_secret(suite, psks), case["psk_secret"])
