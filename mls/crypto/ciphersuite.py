"""Cipher suites (RFC 9420 §5.1, §17.1).

A :class:`Suite` bundles what one MLS cipher suite fixes: the hash (and the HMAC and HKDF over
it), the AEAD, the signature scheme and the HPKE instance. :func:`get_suite` returns the one
cached object per suite; every other MLS module takes a ``Suite`` rather than a suite number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import UnsupportedError
from .hpke import AeadId, Hpke, KdfId, KemId
from .primitives import (
    AES_128_GCM,
    AES_256_GCM,
    CHACHA20_POLY1305,
    SHA256,
    SHA384,
    SHA512,
    Aead,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP521Sha512,
    Ed448Scheme,
    Ed25519Scheme,
    HashFunction,
    SignatureScheme,
)


class CipherSuite(IntEnum):
    """The MLS cipher suites of the IANA registry (RFC 9420 §17.1), named verbatim."""

    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 1
    MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 2
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 3
    MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448 = 4
    MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 5
    MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448 = 6
    MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 7


@dataclass(frozen=True)
class Suite:
    """The algorithms of one cipher suite (RFC 9420 §5.1).

    Attributes:
        id: the cipher suite.
        hash_length: ``Nh``, the hash output size, which is also the KDF output size.
        aead_key_length: ``Nk``.
        aead_nonce_length: ``Nn``.
        hpke: the suite's HPKE instance (KEM, KDF and AEAD from §17.1).
        signature_scheme: the suite's signature scheme.
    """

    id: CipherSuite
    hash_length: int = field(init=False)
    aead_key_length: int = field(init=False)
    aead_nonce_length: int = field(init=False)
    hpke: Hpke = field(repr=False)
    hash_function: HashFunction = field(repr=False)
    aead: Aead = field(repr=False)
    signature_scheme: SignatureScheme = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash_length", self.hash_function.digest_size)
        object.__setattr__(self, "aead_key_length", self.aead.nk)
        object.__setattr__(self, "aead_nonce_length", self.aead.nn)

    # -- hash, MAC, KDF, AEAD (§5.1) ----------------------------------------------------------

    def hash(self, data: bytes) -> bytes:
        return self.hash_function.hash(data)

    def mac(self, key: bytes, data: bytes) -> bytes:
        """HMAC with the suite's hash (RFC 9420 §5.1)."""
        return self.hash_function.hmac(key, data)

    def kdf_extract(self, salt: bytes, ikm: bytes) -> bytes:
        return self.hash_function.extract(salt, ikm)

    def kdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return self.hash_function.expand(prk, info, length)

    def aead_seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self.aead.seal(key, nonce, aad, plaintext)

    def aead_open(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """Raises :class:`~mls.errors.DecryptionError` if the ciphertext does not authenticate."""
        return self.aead.open(key, nonce, aad, ciphertext)

    # -- signatures (§5.1.2) -------------------------------------------------------------------

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        return self.signature_scheme.sign(private_key, message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        """Raises :class:`~mls.errors.VerificationError` unless ``signature`` is valid, and
        :class:`~mls.errors.ValidationError` if ``public_key`` is not a valid encoding."""
        self.signature_scheme.verify(public_key, message, signature)

    def generate_signature_key_pair(self) -> tuple[bytes, bytes]:
        """A fresh ``(private, public)`` signature key pair."""
        return self.signature_scheme.generate()

    def signature_public_key(self, private_key: bytes) -> bytes:
        return self.signature_scheme.public_key(private_key)

    def check_signature_public_key(self, public_key: bytes) -> None:
        """Raises :class:`~mls.errors.ValidationError` (``§5.1.1/public-key-encoding``)
        unless ``public_key`` is a valid signature key encoding (VALIDATION.md CRD-04)."""
        self.signature_scheme.check_public_key(public_key)

    # -- HPKE keys (§5.1.3) --------------------------------------------------------------------

    def check_hpke_public_key(self, public_key: bytes) -> None:
        """Raises :class:`~mls.errors.ValidationError` (``§5.1.1/public-key-encoding``)
        unless ``public_key`` is a valid HPKE key encoding (VALIDATION.md CRD-04)."""
        self.hpke.check_public_key(public_key)


def _build(suite: CipherSuite) -> Suite:
    kem, kdf, aead_id, hash_function, aead, scheme = _PARAMETERS[suite]
    return Suite(
        id=suite,
        hpke=Hpke(kem, kdf, aead_id),
        hash_function=hash_function,
        aead=aead,
        signature_scheme=scheme,
    )


_PARAMETERS: dict[CipherSuite, tuple[KemId, KdfId, AeadId, HashFunction, Aead, SignatureScheme]] = {
    CipherSuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: (
        KemId.DHKEM_X25519_HKDF_SHA256,
        KdfId.HKDF_SHA256,
        AeadId.AES_128_GCM,
        SHA256,
        AES_128_GCM,
        Ed25519Scheme(),
    ),
    CipherSuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256: (
        KemId.DHKEM_P256_HKDF_SHA256,
        KdfId.HKDF_SHA256,
        AeadId.AES_128_GCM,
        SHA256,
        AES_128_GCM,
        EcdsaP256Sha256(),
    ),
    CipherSuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519: (
        KemId.DHKEM_X25519_HKDF_SHA256,
        KdfId.HKDF_SHA256,
        AeadId.CHACHA20_POLY1305,
        SHA256,
        CHACHA20_POLY1305,
        Ed25519Scheme(),
    ),
    CipherSuite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448: (
        KemId.DHKEM_X448_HKDF_SHA512,
        KdfId.HKDF_SHA512,
        AeadId.AES_256_GCM,
        SHA512,
        AES_256_GCM,
        Ed448Scheme(),
    ),
    CipherSuite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521: (
        KemId.DHKEM_P521_HKDF_SHA512,
        KdfId.HKDF_SHA512,
        AeadId.AES_256_GCM,
        SHA512,
        AES_256_GCM,
        EcdsaP521Sha512(),
    ),
    CipherSuite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448: (
        KemId.DHKEM_X448_HKDF_SHA512,
        KdfId.HKDF_SHA512,
        AeadId.CHACHA20_POLY1305,
        SHA512,
        CHACHA20_POLY1305,
        Ed448Scheme(),
    ),
    CipherSuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384: (
        KemId.DHKEM_P384_HKDF_SHA384,
        KdfId.HKDF_SHA384,
        AeadId.AES_256_GCM,
        SHA384,
        AES_256_GCM,
        EcdsaP384Sha384(),
    ),
}

_SUITES: dict[int, Suite] = {int(s): _build(s) for s in CipherSuite}


def get_suite(suite: int) -> Suite:
    """The cached :class:`Suite` for ``suite``; raises :class:`~mls.errors.UnsupportedError`
    for any value that is not one of the seven suites of RFC 9420 §17.1."""
    if type(suite) is not int and not isinstance(suite, CipherSuite):
        raise UnsupportedError(f"cipher suite must be an int, got {type(suite).__name__}")
    try:
        return _SUITES[suite]
    except KeyError:
        raise UnsupportedError(f"unsupported cipher suite 0x{suite:04x}") from None


SUPPORTED_SUITES: tuple[CipherSuite, ...] = tuple(CipherSuite)
"""Every cipher suite this package implements, in registry order."""
