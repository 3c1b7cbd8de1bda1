"""Throughput of the crypto layer per cipher suite; prints one JSON object.

    .venv/bin/python benchmarks/crypto.py [--seconds 0.2]

Each entry is operations per second for: expand_with_label, derive_tree_secret, aead seal
(1 KiB), sign_with_label, verify_with_label, encrypt_with_label, decrypt_with_label and
derive_key_pair. Never asserted on; for comparing changes on one machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import cryptography

from mls.crypto import (
    CipherSuite,
    decrypt_with_label,
    derive_tree_secret,
    encrypt_with_label,
    expand_with_label,
    get_suite,
    sign_with_label,
    verify_with_label,
)


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return round(n / (now - start), 1)


def bench_suite(number: int, seconds: float) -> dict[str, float]:
    suite = get_suite(number)
    secret = bytes(suite.hash_length)
    key = bytes(suite.aead_key_length)
    nonce = bytes(suite.aead_nonce_length)
    payload = bytes(1024)
    sig_priv, sig_pub = suite.generate_signature_key_pair()
    signature = sign_with_label(suite, sig_priv, b"LeafNodeTBS", payload)
    hpke_sk, hpke_pk = suite.hpke.generate_key_pair()
    kem_output, ciphertext = encrypt_with_label(suite, hpke_pk, b"UpdatePathNode", b"", secret)
    return {
        "expand_with_label": rate(
            lambda: expand_with_label(suite, secret, b"key", b"", 16), seconds
        ),
        "derive_tree_secret": rate(
            lambda: derive_tree_secret(suite, secret, b"secret", 7, suite.hash_length), seconds
        ),
        "aead_seal_1k": rate(lambda: suite.aead_seal(key, nonce, b"", payload), seconds),
        "sign_with_label": rate(
            lambda: sign_with_label(suite, sig_priv, b"LeafNodeTBS", payload), seconds
        ),
        "verify_with_label": rate(
            lambda: verify_with_label(suite, sig_pub, b"LeafNodeTBS", payload, signature), seconds
        ),
        "encrypt_with_label": rate(
            lambda: encrypt_with_label(suite, hpke_pk, b"UpdatePathNode", b"", secret), seconds
        ),
        "decrypt_with_label": rate(
            lambda: decrypt_with_label(
                suite, hpke_sk, b"UpdatePathNode", b"", kem_output, ciphertext
            ),
            seconds,
        ),
        "derive_key_pair": rate(lambda: suite.hpke.derive_key_pair(secret), seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.2, help="time per measurement")
    args = parser.parse_args()
    result = {
        "benchmark": "mls.crypto",
        "unit": "ops/s",
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "suites": {s.name: bench_suite(int(s), args.seconds) for s in CipherSuite},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
