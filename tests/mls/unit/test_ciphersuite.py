"""Cipher suites (RFC 9420 §5.1, §17.1): parameters, primitives and their failure modes."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from mls.crypto.ciphersuite import SUPPORTED_SUITES, CipherSuite, Suite, get_suite
from mls.crypto.hpke import AeadId, KdfId, KemId
from mls.errors import (
    DecryptionError,
    MLSError,
    UnsupportedError,
    UsageError,
    ValidationError,
    VerificationError,
)

SUITES = [pytest.param(get_suite(s), id=f"cs{int(s)}") for s in CipherSuite]
ECDSA_SUITES = [p for p in SUITES if p.id in ("cs2", "cs5", "cs7")]
EDDSA_SUITES = [p for p in SUITES if p.id in ("cs1", "cs3", "cs4", "cs6")]

# RFC 9420 §17.1: (KEM, KDF, AEAD, Nh, Nk, Nn, signature scheme, public key length)
EXPECTED = {
    1: (KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM, 32, 16, 12, "ed25519", 32),
    2: (KemId.DHKEM_P256_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM, 32, 16, 12, "ecdsa_secp256r1_sha256", 65),
    3: (KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.CHACHA20_POLY1305, 32, 32, 12, "ed25519", 32),
    4: (KemId.DHKEM_X448_HKDF_SHA512, KdfId.HKDF_SHA512, AeadId.AES_256_GCM, 64, 32, 12, "ed448", 57),
    5: (KemId.DHKEM_P521_HKDF_SHA512, KdfId.HKDF_SHA512, AeadId.AES_256_GCM, 64, 32, 12, "ecdsa_secp521r1_sha512", 133),
    6: (KemId.DHKEM_X448_HKDF_SHA512, KdfId.HKDF_SHA512, AeadId.CHACHA20_POLY1305, 64, 32, 12, "ed448", 57),
    7: (KemId.DHKEM_P384_HKDF_SHA384, KdfId.HKDF_SHA384, AeadId.AES_256_GCM, 48, 32, 12, "ecdsa_secp384r1_sha384", 97),
}  # fmt: skip

HASHLIB_NAME = {32: "sha256", 48: "sha384", 64: "sha512"}


# -- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_suite_parameters_match_rfc9420_table(number: int) -> None:
    kem, kdf, aead, nh, nk, nn, scheme, pk_len = EXPECTED[number]
    suite = get_suite(number)
    assert suite.id == number and suite.id is CipherSuite(number)
    assert (suite.hpke.kem_id, suite.hpke.kdf_id, suite.hpke.aead_id) == (kem, kdf, aead)
    assert (suite.hash_length, suite.aead_key_length, suite.aead_nonce_length) == (nh, nk, nn)
    assert suite.signature_scheme.name == scheme
    _, pub = suite.generate_signature_key_pair()
    assert len(pub) == pk_len


def test_get_suite_is_cached_and_frozen() -> None:
    assert get_suite(1) is get_suite(CipherSuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
    assert SUPPORTED_SUITES == tuple(CipherSuite)
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_suite(1).hash_length = 1  # type: ignore[misc]
    assert "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" in repr(get_suite(1))


@pytest.mark.parametrize("value", [0, 8, 0x0A0A, 0xFFFF, -1, 2**70, True, "1", None, 1.0])
def test_unknown_suite_unsupported(value: object) -> None:
    with pytest.raises(UnsupportedError):
        get_suite(value)  # type: ignore[arg-type]


# -- hash, MAC, KDF ---------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_hash_and_mac_match_hashlib(suite: Suite) -> None:
    name = HASHLIB_NAME[suite.hash_length]
    assert suite.hash(b"abc") == hashlib.new(name, b"abc").digest()
    assert suite.mac(b"Jefe", b"what do ya want for nothing?") == hmac.digest(
        b"Jefe", b"what do ya want for nothing?", name
    )


def test_hkdf_rfc5869_case_1() -> None:
    suite = get_suite(1)  # HKDF-SHA256
    prk = suite.kdf_extract(bytes(range(13)), b"\x0b" * 22)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = suite.kdf_expand(prk, bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize("suite", SUITES)
def test_kdf_expand_limits(suite: Suite) -> None:
    prk = bytes(suite.hash_length)
    assert len(suite.kdf_expand(prk, b"", 255 * suite.hash_length)) == 255 * suite.hash_length
    for bad in (0, 255 * suite.hash_length + 1):
        with pytest.raises(UsageError):
            suite.kdf_expand(prk, b"", bad)


# -- AEAD -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_aead_round_trip_and_failures(suite: Suite) -> None:
    key = bytes(range(suite.aead_key_length))
    nonce = bytes(suite.aead_nonce_length)
    ct = suite.aead_seal(key, nonce, b"aad", b"plaintext")
    assert len(ct) == len(b"plaintext") + 16
    assert suite.aead_open(key, nonce, b"aad", ct) == b"plaintext"
    for args in (
        (key, nonce, b"aad", ct[:-1] + bytes([ct[-1] ^ 1])),  # wrong tag
        (key, nonce, b"AAD", ct),
        (bytes(suite.aead_key_length), nonce, b"aad", ct),
        (key, b"\x01" + nonce[1:], b"aad", ct),
        (key, nonce, b"aad", ct[:15]),
        (key, nonce, b"aad", b""),
    ):
        with pytest.raises(DecryptionError) as info:
            suite.aead_open(*args)
        assert info.value.rule == "§5.1/aead-open"
    with pytest.raises(UsageError):
        suite.aead_seal(key[:-1], nonce, b"", b"")
    with pytest.raises(UsageError):
        suite.aead_open(key, nonce[:-1], b"", ct)


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_sign_verify_and_wrong_signature(suite: Suite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    assert suite.signature_public_key(priv) == pub
    sig = suite.sign(priv, b"message")
    suite.verify(pub, b"message", sig)
    with pytest.raises(VerificationError):
        suite.verify(pub, b"messagf", sig)
    with pytest.raises(VerificationError):
        suite.verify(pub, b"message", sig[:-1] + bytes([sig[-1] ^ 1]))
    with pytest.raises(VerificationError):
        suite.verify(suite.generate_signature_key_pair()[1], b"message", sig)
    with pytest.raises(VerificationError):
        suite.verify(pub, b"message", b"")


@pytest.mark.parametrize("suite", ECDSA_SUITES)
def test_ecdsa_raw_r_s_rejected(suite: Suite) -> None:
    """RFC 9420 §5.1.2 / VALIDATION.md CRD-05: ECDSA signatures are DER; raw r||s fails."""
    priv, pub = suite.generate_signature_key_pair()
    sig = suite.sign(priv, b"m")
    assert sig[0] == 0x30  # a DER SEQUENCE
    r, s = decode_dss_signature(sig)
    n = len(priv)
    raw = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    with pytest.raises(VerificationError) as info:
        suite.verify(pub, b"m", raw)
    assert info.value.rule == "§5.1.2/signature"
    # Non-canonical DER (a long-form length where the short form fits) is rejected too.
    if sig[1] < 0x80:
        with pytest.raises(VerificationError):
            suite.verify(pub, b"m", b"\x30\x81" + sig[1:])
    # Trailing bytes after the DER sequence.
    with pytest.raises(VerificationError):
        suite.verify(pub, b"m", sig + b"\x00")


@pytest.mark.parametrize("suite", ECDSA_SUITES)
def test_ecdsa_public_key_encodings_rejected(suite: Suite) -> None:
    """VALIDATION.md CRD-04: compressed, off-curve, and wrong-length points are refused."""
    priv, pub = suite.generate_signature_key_pair()
    sig = suite.sign(priv, b"m")
    n = len(pub)
    off_curve = pub[:-1] + bytes([pub[-1] ^ 1])
    compressed = bytes([2 + (pub[-1] & 1)]) + pub[1 : 1 + (n - 1) // 2]
    for bad in (off_curve, compressed, b"", pub[:-1], pub + b"\x00", b"\x04" + bytes(n - 1)):
        with pytest.raises(ValidationError) as info:
            suite.verify(bad, b"m", sig)
        assert info.value.rule == "§5.1.1/public-key-encoding"
        assert not isinstance(info.value, VerificationError)
        with pytest.raises(ValidationError):
            suite.check_signature_public_key(bad)
    suite.check_signature_public_key(pub)


@pytest.mark.parametrize("suite", EDDSA_SUITES)
def test_eddsa_wrong_length_keys_rejected(suite: Suite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    sig = suite.sign(priv, b"m")
    for bad in (b"", pub[:-1], pub + b"\x00"):
        with pytest.raises(ValidationError) as info:
            suite.verify(bad, b"m", sig)
        assert info.value.rule == "§5.1.1/public-key-encoding"
    with pytest.raises(UsageError):
        suite.sign(priv[:-1], b"m")


def test_ed25519_accepts_seed_and_public_key_as_private_key() -> None:
    suite = get_suite(1)
    priv, pub = suite.generate_signature_key_pair()
    assert len(priv) == 32
    long_form = priv + pub
    assert suite.signature_public_key(long_form) == pub
    assert suite.sign(long_form, b"m") == suite.sign(priv, b"m")  # Ed25519 is deterministic
    # A public half that is not the seed's would make signatures verify under another key.
    _, other_pub = suite.generate_signature_key_pair()
    with pytest.raises(UsageError):
        suite.sign(priv + other_pub, b"m")
    with pytest.raises(UsageError):
        suite.signature_public_key(priv + other_pub)


@pytest.mark.parametrize("suite", SUITES)
def test_hpke_public_key_check(suite: Suite) -> None:
    _, pk = suite.hpke.generate_key_pair()
    suite.check_hpke_public_key(pk)
    with pytest.raises(ValidationError) as info:
        suite.check_hpke_public_key(pk[:-1])
    assert info.value.rule == "§5.1.1/public-key-encoding"


# -- arbitrary inputs raise only mls.errors types ---------------------------------------------


@given(
    number=st.sampled_from(sorted(EXPECTED)),
    public_key=st.binary(max_size=140),
    signature=st.binary(max_size=140),
)
def test_verify_arbitrary_bytes_raises_only_mls_errors(
    number: int, public_key: bytes, signature: bytes
) -> None:
    suite = get_suite(number)
    with pytest.raises(MLSError):
        suite.verify(public_key, b"message", signature)


@given(
    number=st.sampled_from(sorted(EXPECTED)),
    data=st.binary(max_size=140),
    which=st.sampled_from(["sig", "hpke"]),
)
def test_public_key_checks_raise_only_validation_errors(
    number: int, data: bytes, which: str
) -> None:
    suite = get_suite(number)
    try:
        if which == "sig":
            suite.check_signature_public_key(data)
        else:
            suite.check_hpke_public_key(data)
    except ValidationError as exc:
        assert exc.rule == "§5.1.1/public-key-encoding"
        assert data.hex() not in str(exc) or not data


@given(number=st.sampled_from(sorted(EXPECTED)), ciphertext=st.binary(max_size=64))
def test_aead_open_arbitrary_ciphertext(number: int, ciphertext: bytes) -> None:
    suite = get_suite(number)
    with pytest.raises(DecryptionError):
        suite.aead_open(bytes(suite.aead_key_length), bytes(12), b"", ciphertext)


@pytest.mark.parametrize("suite_id", [2, 5, 7])
def test_ecdsa_signing_accepts_scalar_without_leading_zeros(suite_id: int) -> None:
    suite = get_suite(suite_id)
    full, _ = suite.generate_signature_key_pair()
    value = int.from_bytes(full, "big") >> 16  # two leading zero octets when written at full width
    padded = value.to_bytes(len(full), "big")
    short = value.to_bytes((value.bit_length() + 7) // 8, "big")
    assert len(short) < len(padded)
    public = suite.signature_public_key(padded)
    assert suite.signature_public_key(short) == public
    suite.verify(public, b"message", suite.sign(short, b"message"))
