"""``secret-tree.json``: sender-data keys and per-leaf ratchet keys (RFC 9420 §6.3.2, §9)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..key_schedule import sender_data_key_nonce
from ..secret_tree import RatchetPolicy, RatchetType, SecretTree
from . import expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    sd = case["sender_data"]
    # The sender-data key and nonce come from sender_data_secret and the ciphertext sample.
    key, nonce = sender_data_key_nonce(
        suite, bytes.fromhex(sd["sender_data_secret"]), bytes.fromhex(sd["ciphertext"])
    )
    expect("sender_data.key", key, sd["key"])
    expect("sender_data.nonce", nonce, sd["nonce"])
    # A tree with one leaf per entry of `leaves`, rooted at encryption_secret. The listed
    # generations can be far apart, so the forward window is opened wide enough for them.
    leaves = case["leaves"]
    highest = max((g["generation"] for leaf in leaves for g in leaf), default=0)
    policy = RatchetPolicy(max_forward=highest + 1, max_skipped=highest + 1)
    tree = SecretTree(suite, bytes.fromhex(case["encryption_secret"]), len(leaves), policy)
    for i, generations in enumerate(leaves):
        for j, entry in enumerate(generations):
            at = f"leaves[{i}][{j}]."
            g = entry["generation"]
            # Keys and nonces of leaf i's two ratchets at the listed generation.
            hs = tree.consume(i, RatchetType.HANDSHAKE, g)
            expect(at + "handshake_key", hs.key, entry["handshake_key"])
            expect(at + "handshake_nonce", hs.nonce, entry["handshake_nonce"])
            app = tree.consume(i, RatchetType.APPLICATION, g)
            expect(at + "application_key", app.key, entry["application_key"])
            expect(at + "application_nonce", app.nonce, entry["application_nonce"])
