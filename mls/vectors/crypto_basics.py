"""``crypto-basics.json``: the labeled operations of RFC 9420 §5.1.2, §5.1.3, §5.2, §8, §9.

Every field is recomputed from the case's inputs. Signatures are randomized for ECDSA, so the
given signature is verified and a fresh one is made and verified; likewise the given HPKE
ciphertext is decrypted and a fresh encryption is round-tripped.
"""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..crypto.labels import (
    decrypt_with_label,
    derive_secret,
    derive_tree_secret,
    encrypt_with_label,
    expand_with_label,
    ref_hash,
    sign_with_label,
    verify_with_label,
)
from ..errors import MLSError
from . import Mismatch, expect


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])

    c = case["ref_hash"]
    expect("ref_hash.out", ref_hash(suite, c["label"].encode(), _h(c["value"])), c["out"])

    c = case["expand_with_label"]
    out = expand_with_label(
        suite, _h(c["secret"]), c["label"].encode(), _h(c["context"]), c["length"]
    )
    expect("expand_with_label.out", out, c["out"])

    c = case["derive_secret"]
    expect(
        "derive_secret.out", derive_secret(suite, _h(c["secret"]), c["label"].encode()), c["out"]
    )

    c = case["derive_tree_secret"]
    out = derive_tree_secret(
        suite, _h(c["secret"]), c["label"].encode(), c["generation"], c["length"]
    )
    expect("derive_tree_secret.out", out, c["out"])

    c = case["sign_with_label"]
    priv, pub, label, content = _h(c["priv"]), _h(c["pub"]), c["label"].encode(), _h(c["content"])
    expect("sign_with_label.pub", suite.signature_public_key(priv), c["pub"])
    try:
        verify_with_label(suite, pub, label, content, _h(c["signature"]))
    except MLSError as exc:
        raise Mismatch(
            "sign_with_label.signature", f"does not verify: {type(exc).__name__}"
        ) from None
    own = sign_with_label(suite, priv, label, content)
    try:
        verify_with_label(suite, pub, label, content, own)
    except MLSError as exc:
        raise Mismatch("sign_with_label (own signature)", type(exc).__name__) from None

    c = case["encrypt_with_label"]
    priv, pub, label, context = _h(c["priv"]), _h(c["pub"]), c["label"].encode(), _h(c["context"])
    expect("encrypt_with_label.pub", suite.hpke.public_key(priv), c["pub"])
    try:
        pt = decrypt_with_label(
            suite, priv, label, context, _h(c["kem_output"]), _h(c["ciphertext"])
        )
    except MLSError as exc:
        raise Mismatch(
            "encrypt_with_label.ciphertext", f"does not decrypt: {type(exc).__name__}"
        ) from None
    expect("encrypt_with_label.plaintext", pt, c["plaintext"])
    kem_output, ciphertext = encrypt_with_label(suite, pub, label, context, _h(c["plaintext"]))
    try:
        pt = decrypt_with_label(suite, priv, label, context, kem_output, ciphertext)
    except MLSError as exc:
        raise Mismatch("encrypt_with_label (own ciphertext)", type(exc).__name__) from None
    expect("encrypt_with_label.plaintext (own ciphertext)", pt, c["plaintext"])
