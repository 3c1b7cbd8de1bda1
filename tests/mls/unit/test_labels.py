"""The labeled operations (RFC 9420 §5.1.2, §5.1.3, §5.2, §8, §9).

The official values are checked by tests/mls/vectors/test_crypto_basics.py; these tests pin
the struct encodings independently (hand-built bytes) and the failure modes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.crypto.ciphersuite import CipherSuite, Suite, get_suite
from mls.crypto.labels import (
    decrypt_with_label,
    derive_secret,
    derive_tree_secret,
    encrypt_with_label,
    expand_with_label,
    make_key_package_ref,
    make_proposal_ref,
    ref_hash,
    sign_with_label,
    verify_with_label,
)
from mls.errors import DecryptionError, UsageError, ValidationError, VerificationError

SUITES = [pytest.param(get_suite(s), id=f"cs{int(s)}") for s in CipherSuite]


def vl(data: bytes) -> bytes:
    """A short (<64 bytes) opaque<V>: one-byte length header (RFC 9420 §2.1.2)."""
    assert len(data) < 64
    return bytes([len(data)]) + data


@pytest.mark.parametrize("suite", SUITES)
def test_expand_with_label_encodes_kdf_label(suite: Suite) -> None:
    secret = bytes(range(suite.hash_length))
    info = (16).to_bytes(2, "big") + vl(b"MLS 1.0 joiner") + vl(b"ctx")
    expected = suite.kdf_expand(secret, info, 16)
    assert expand_with_label(suite, secret, b"joiner", b"ctx", 16) == expected


@pytest.mark.parametrize("suite", SUITES)
def test_expand_with_label_long_context_uses_two_byte_header(suite: Suite) -> None:
    secret = bytes(suite.hash_length)
    context = bytes(100)
    info = (8).to_bytes(2, "big") + vl(b"MLS 1.0 x") + b"\x40\x64" + context
    assert expand_with_label(suite, secret, b"x", context, 8) == suite.kdf_expand(secret, info, 8)


@pytest.mark.parametrize("suite", SUITES)
def test_derive_secret_and_tree_secret(suite: Suite) -> None:
    secret = b"\x07" * suite.hash_length
    out = derive_secret(suite, secret, b"epoch")
    assert len(out) == suite.hash_length
    assert out == expand_with_label(suite, secret, b"epoch", b"", suite.hash_length)
    tree = derive_tree_secret(suite, secret, b"secret", 0x01020304, suite.aead_key_length)
    assert tree == expand_with_label(
        suite, secret, b"secret", b"\x01\x02\x03\x04", suite.aead_key_length
    )
    assert derive_tree_secret(suite, secret, b"secret", 0, 12) != derive_tree_secret(
        suite, secret, b"secret", 1, 12
    )
    for bad in (-1, 2**32):
        with pytest.raises(UsageError):
            derive_tree_secret(suite, secret, b"secret", bad, 12)
    with pytest.raises(UsageError):
        expand_with_label(suite, secret, b"x", b"", 2**16)


@pytest.mark.parametrize("suite", SUITES)
def test_refs(suite: Suite) -> None:
    value = b"\xaa" * 10
    assert ref_hash(suite, b"L", value) == suite.hash(vl(b"L") + vl(value))
    assert make_key_package_ref(suite, value) == suite.hash(
        vl(b"MLS 1.0 KeyPackage Reference") + vl(value)
    )
    assert make_proposal_ref(suite, value) == suite.hash(
        vl(b"MLS 1.0 Proposal Reference") + vl(value)
    )
    assert len(make_key_package_ref(suite, value)) == suite.hash_length


@pytest.mark.parametrize("suite", SUITES)
def test_sign_with_label_signs_sign_content(suite: Suite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    sig = sign_with_label(suite, priv, b"LeafNodeTBS", b"content")
    verify_with_label(suite, pub, b"LeafNodeTBS", b"content", sig)
    # The signed message is exactly SignContent.
    suite.verify(pub, vl(b"MLS 1.0 LeafNodeTBS") + vl(b"content"), sig)
    # Domain separation: another label or content fails.
    with pytest.raises(VerificationError):
        verify_with_label(suite, pub, b"KeyPackageTBS", b"content", sig)
    with pytest.raises(VerificationError):
        verify_with_label(suite, pub, b"LeafNodeTBS", b"contenu", sig)
    with pytest.raises(VerificationError):
        verify_with_label(
            suite, pub, b"LeafNodeTBS", b"content", sig[:-1] + bytes([sig[-1] ^ 0x80])
        )


@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_with_label_round_trip_and_failures(suite: Suite) -> None:
    sk, pk = suite.hpke.generate_key_pair()
    kem_output, ct = encrypt_with_label(suite, pk, b"UpdatePathNode", b"ctx", b"path secret")
    assert (
        decrypt_with_label(suite, sk, b"UpdatePathNode", b"ctx", kem_output, ct) == b"path secret"
    )
    # The info is EncryptContext and the aad is empty.
    info = vl(b"MLS 1.0 UpdatePathNode") + vl(b"ctx")
    assert suite.hpke.open(sk, kem_output, info, b"", ct) == b"path secret"
    for label, context, kem, c in (
        (b"Welcome", b"ctx", kem_output, ct),
        (b"UpdatePathNode", b"ctx2", kem_output, ct),
        (b"UpdatePathNode", b"ctx", kem_output, ct[:-1] + bytes([ct[-1] ^ 1])),
        (b"UpdatePathNode", b"ctx", kem_output[:-1], ct),
        (b"UpdatePathNode", b"ctx", b"", ct),
    ):
        with pytest.raises(DecryptionError):
            decrypt_with_label(suite, sk, label, context, kem, c)


@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_to_invalid_public_key(suite: Suite) -> None:
    _, pk = suite.hpke.generate_key_pair()
    for bad in (b"", pk[:-1], pk + b"\x00"):
        with pytest.raises(ValidationError) as info:
            encrypt_with_label(suite, bad, b"Welcome", b"", b"x")
        assert info.value.rule == "§5.1.1/public-key-encoding"


NUMBERS = st.sampled_from([int(s) for s in CipherSuite])
_KEYS = {int(s): get_suite(s).hpke.generate_key_pair() for s in CipherSuite}
_SIG_KEYS = {int(s): get_suite(s).generate_signature_key_pair() for s in CipherSuite}


@given(number=NUMBERS, kem_output=st.binary(max_size=140), ciphertext=st.binary(max_size=80))
def test_decrypt_arbitrary_bytes_raises_only_decryption_error(
    number: int, kem_output: bytes, ciphertext: bytes
) -> None:
    suite = get_suite(number)
    sk, _ = _KEYS[number]
    with pytest.raises(DecryptionError):
        decrypt_with_label(suite, sk, b"Welcome", b"", kem_output, ciphertext)


@given(number=NUMBERS, public_key=st.binary(max_size=140))
def test_encrypt_to_arbitrary_public_key(number: int, public_key: bytes) -> None:
    suite = get_suite(number)
    try:
        kem_output, ct = encrypt_with_label(suite, public_key, b"Welcome", b"", b"x")
    except ValidationError as exc:
        assert exc.rule == "§5.1.1/public-key-encoding"
    else:
        # Only a valid point (any 32/56 bytes for X25519/X448 except small-order ones) gets here.
        assert len(kem_output) == len(public_key)
        assert len(ct) == 17


@given(number=NUMBERS, public_key=st.binary(max_size=140), signature=st.binary(max_size=140))
def test_verify_with_label_arbitrary_bytes(
    number: int, public_key: bytes, signature: bytes
) -> None:
    suite = get_suite(number)
    with pytest.raises(ValidationError):  # VerificationError is a ValidationError
        verify_with_label(suite, public_key, b"LeafNodeTBS", b"c", signature)


@given(number=NUMBERS, signature=st.binary(max_size=140))
def test_verify_with_label_arbitrary_signature_valid_key(number: int, signature: bytes) -> None:
    suite = get_suite(number)
    _, pub = _SIG_KEYS[number]
    with pytest.raises(VerificationError):
        verify_with_label(suite, pub, b"LeafNodeTBS", b"c", signature)
