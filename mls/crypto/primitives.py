"""Thin adapters over the ``cryptography`` package (RFC 9420 §5.1).

Everything below HPKE and the MLS labeled operations lives here: hashes, HMAC, HKDF
extract/expand (RFC 5869), the AEADs, the Diffie-Hellman groups the DHKEMs use, and the
signature schemes. Nothing here implements a primitive itself; each class only fixes key and
value *encodings* and translates library exceptions into :mod:`mls.errors` types:

* ``InvalidTag`` -> :class:`~mls.errors.DecryptionError`
* ``InvalidSignature`` (and undecodable signatures) -> :class:`~mls.errors.VerificationError`
* a public key that is not a valid encoding for its group ->
  :class:`~mls.errors.ValidationError` with rule ``§5.1.1/public-key-encoding``
* a private key of the wrong shape -> :class:`~mls.errors.UsageError` (private keys never come
  from the wire)

Key encodings follow RFC 9180 §7.1.1 and the MLS test vectors: X25519/X448/Ed25519/Ed448 keys
are raw; NIST-curve public keys are uncompressed SEC1 points and private keys big-endian
scalars of the curve's byte length; ECDSA signatures are DER (RFC 9420 §5.1.2).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar, cast

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import DecryptionError, UsageError, ValidationError, VerificationError

_K = TypeVar("_K")

PUBLIC_KEY_RULE = "§5.1.1/public-key-encoding"
"""Rule named by errors for a public key that is not a valid encoding (VALIDATION.md CRD-04)."""
SIGNATURE_RULE = "§5.1.2/signature"
"""Rule named by errors for a signature that does not verify (VALIDATION.md CRD-05 included)."""
AEAD_RULE = "§5.1/aead-open"
"""Rule named by errors for an AEAD ciphertext that does not authenticate."""


def _raw_public_key(load: Callable[[bytes], object], data: bytes, size: int, name: str) -> object:
    """Loads a raw (RFC 7748 / RFC 8032) public key of exactly ``size`` bytes.

    Raises:
        ValidationError: rule :data:`PUBLIC_KEY_RULE` for a wrong length or an invalid key.
    """
    if len(data) != size:
        raise ValidationError(PUBLIC_KEY_RULE, f"{name} public key must be {size} bytes")
    try:
        return load(data)
    except ValueError:
        raise ValidationError(PUBLIC_KEY_RULE, f"invalid {name} public key") from None


# --------------------------------------------------------------------------------------------
# Hashes, HMAC and HKDF


@dataclass(frozen=True)
class HashFunction:
    """A hash function with HMAC and HKDF (RFC 5869) over it."""

    name: str
    digest_size: int
    _algorithm: hashes.HashAlgorithm

    def hash(self, data: bytes) -> bytes:
        h = hashes.Hash(self._algorithm)
        h.update(data)
        return h.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        h = crypto_hmac.HMAC(key, self._algorithm)
        h.update(data)
        return h.finalize()

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        """HKDF-Extract (RFC 5869 §2.2); an empty salt means Nh zero bytes."""
        return HKDF.extract(self._algorithm, salt, ikm)

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        """HKDF-Expand (RFC 5869 §2.3); ``length`` is at most 255 * Nh."""
        if not 0 < length <= 255 * self.digest_size:
            raise UsageError(f"HKDF-Expand length {length} out of range for {self.name}")
        if len(prk) < self.digest_size:
            raise UsageError(f"HKDF-Expand PRK shorter than {self.digest_size} bytes")
        return HKDFExpand(self._algorithm, length, info).derive(prk)


SHA256 = HashFunction("SHA-256", 32, hashes.SHA256())
SHA384 = HashFunction("SHA-384", 48, hashes.SHA384())
SHA512 = HashFunction("SHA-512", 64, hashes.SHA512())


# --------------------------------------------------------------------------------------------
# AEADs


@dataclass(frozen=True)
class Aead:
    """An AEAD algorithm (RFC 5116) with fixed key length ``nk`` and nonce length ``nn``."""

    name: str
    nk: int
    nn: int
    nt: int
    _factory: type[AESGCM] | type[ChaCha20Poly1305]

    def _cipher(self, key: bytes, nonce: bytes) -> AESGCM | ChaCha20Poly1305:
        if len(key) != self.nk:
            raise UsageError(f"{self.name} key must be {self.nk} bytes, got {len(key)}")
        if len(nonce) != self.nn:
            raise UsageError(f"{self.name} nonce must be {self.nn} bytes, got {len(nonce)}")
        return self._factory(key)

    def seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._cipher(key, nonce).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        cipher = self._cipher(key, nonce)
        if len(ciphertext) < self.nt:
            raise DecryptionError(AEAD_RULE, f"{self.name} ciphertext shorter than its tag")
        try:
            return cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(AEAD_RULE, f"{self.name} authentication failed") from None


AES_128_GCM = Aead("AES-128-GCM", 16, 12, 16, AESGCM)
AES_256_GCM = Aead("AES-256-GCM", 32, 12, 16, AESGCM)
CHACHA20_POLY1305 = Aead("ChaCha20Poly1305", 32, 12, 16, ChaCha20Poly1305)


# --------------------------------------------------------------------------------------------
# Diffie-Hellman groups (RFC 9180 §4.1, §7.1)


class DhGroup:
    """A Diffie-Hellman group with serialized keys, as a DHKEM uses it.

    Attributes:
        npk: length of a serialized public key (also the KEM's ``Nenc``).
        nsk: length of a serialized private key.
    """

    name: ClassVar[str]
    npk: ClassVar[int]
    nsk: ClassVar[int]

    def generate(self) -> tuple[bytes, bytes]:
        """A fresh ``(private, public)`` pair, serialized."""
        raise NotImplementedError

    def public_key(self, sk: bytes) -> bytes:
        raise NotImplementedError

    def dh(self, sk: bytes, pk: bytes) -> bytes:
        """The shared secret of ``sk`` and ``pk``; rejects an invalid ``pk`` or an all-zero
        result (RFC 9180 §7.1.4) with :class:`ValidationError`."""
        raise NotImplementedError

    def check_public_key(self, pk: bytes) -> None:
        """Raises :class:`ValidationError` unless ``pk`` is a valid public key encoding."""
        raise NotImplementedError


class _MontgomeryGroup(DhGroup):
    """X25519 or X448 (RFC 7748): raw keys."""

    _private_cls: ClassVar[type[x25519.X25519PrivateKey] | type[x448.X448PrivateKey]]
    _public_cls: ClassVar[type[x25519.X25519PublicKey] | type[x448.X448PublicKey]]

    def _private(self, sk: bytes) -> x25519.X25519PrivateKey | x448.X448PrivateKey:
        if len(sk) != self.nsk:
            raise UsageError(f"{self.name} private key must be {self.nsk} bytes")
        return self._private_cls.from_private_bytes(sk)

    def _public(self, pk: bytes) -> x25519.X25519PublicKey | x448.X448PublicKey:
        key = _raw_public_key(self._public_cls.from_public_bytes, pk, self.npk, self.name)
        return cast("x25519.X25519PublicKey | x448.X448PublicKey", key)

    def generate(self) -> tuple[bytes, bytes]:
        key = self._private_cls.generate()
        sk = key.private_bytes_raw()
        return sk, key.public_key().public_bytes_raw()

    def public_key(self, sk: bytes) -> bytes:
        return self._private(sk).public_key().public_bytes_raw()

    def dh(self, sk: bytes, pk: bytes) -> bytes:
        private = self._private(sk)
        public = self._public(pk)
        try:
            # cryptography refuses an all-zero output (a small-order public key).
            shared = private.exchange(public)  # type: ignore[arg-type]
        except ValueError:
            raise ValidationError(
                PUBLIC_KEY_RULE, f"{self.name} public key of small order"
            ) from None
        if not any(shared):
            raise ValidationError(PUBLIC_KEY_RULE, f"{self.name} shared secret is zero")
        return shared

    def check_public_key(self, pk: bytes) -> None:
        """Every 32/56-byte string decodes (RFC 7748 §5), so besides the length this rejects
        the points of small order: with a clamped scalar (a multiple of the cofactor) they give
        the all-zero output, which :meth:`dh` would refuse anyway (RFC 9180 §7.1.4)."""
        public = self._public(pk)
        try:
            shared = self._probe().exchange(public)  # type: ignore[arg-type]
        except ValueError:
            raise ValidationError(
                PUBLIC_KEY_RULE, f"{self.name} public key of small order"
            ) from None
        if not any(shared):
            raise ValidationError(PUBLIC_KEY_RULE, f"{self.name} shared secret is zero")

    def _probe(self) -> x25519.X25519PrivateKey | x448.X448PrivateKey:
        # A fixed, public scalar: the check needs no secret, only a clamped multiplier. Loaded
        # once: loading a key costs as much as the exchange.
        probe = self.__dict__.get("_probe_key")
        if probe is None:
            probe = self.__dict__["_probe_key"] = self._private(b"\x01" * self.nsk)
        return probe


class X25519Group(_MontgomeryGroup):
    name = "X25519"
    npk = 32
    nsk = 32
    _private_cls = x25519.X25519PrivateKey
    _public_cls = x25519.X25519PublicKey


class X448Group(_MontgomeryGroup):
    name = "X448"
    npk = 56
    nsk = 56
    _private_cls = x448.X448PrivateKey
    _public_cls = x448.X448PublicKey


class NistGroup(DhGroup):
    """P-256, P-384 or P-521: uncompressed SEC1 public keys, fixed-length scalar private keys.

    Attributes:
        order: the order of the curve's base point (private keys are in ``[1, order)``).
        bitmask: the mask RFC 9180 §7.1.3 applies to the first byte of a DeriveKeyPair candidate.
    """

    curve: ClassVar[ec.EllipticCurve]
    order: ClassVar[int]
    bitmask: ClassVar[int]
    coordinate_length: ClassVar[int]

    def _private(self, sk: bytes) -> ec.EllipticCurvePrivateKey:
        if len(sk) != self.nsk:
            raise UsageError(f"{self.name} private key must be {self.nsk} bytes")
        value = int.from_bytes(sk, "big")
        if not 0 < value < self.order:
            raise UsageError(f"{self.name} private key out of range")
        return ec.derive_private_key(value, self.curve)

    def _public(self, pk: bytes) -> ec.EllipticCurvePublicKey:
        if len(pk) != self.npk or pk[0] != 0x04:
            raise ValidationError(
                PUBLIC_KEY_RULE,
                f"{self.name} public key must be an uncompressed {self.npk}-byte point",
            )
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, pk)
        except ValueError:
            raise ValidationError(PUBLIC_KEY_RULE, f"{self.name} point not on the curve") from None

    def _serialize_private(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_numbers().private_value.to_bytes(self.nsk, "big")

    @staticmethod
    def _serialize_public(key: ec.EllipticCurvePublicKey) -> bytes:
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def generate(self) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(self.curve)
        return self._serialize_private(key), self._serialize_public(key.public_key())

    def public_key(self, sk: bytes) -> bytes:
        return self._serialize_public(self._private(sk).public_key())

    def private_key_from_scalar(self, value: int) -> bytes | None:
        """The serialized private key for ``value``, or ``None`` if it is not in ``[1, order)``."""
        if not 0 < value < self.order:
            return None
        return value.to_bytes(self.nsk, "big")

    def dh(self, sk: bytes, pk: bytes) -> bytes:
        private = self._private(sk)
        public = self._public(pk)
        # The x-coordinate, left-padded to the coordinate length (RFC 9180 §7.1.1).
        return private.exchange(ec.ECDH(), public)

    def check_public_key(self, pk: bytes) -> None:
        self._public(pk)


class P256Group(NistGroup):
    name = "P-256"
    npk = 65
    nsk = 32
    coordinate_length = 32
    curve = ec.SECP256R1()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    bitmask = 0xFF


class P384Group(NistGroup):
    name = "P-384"
    npk = 97
    nsk = 48
    coordinate_length = 48
    curve = ec.SECP384R1()
    order = int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    )
    bitmask = 0xFF


class P521Group(NistGroup):
    name = "P-521"
    npk = 133
    nsk = 66
    coordinate_length = 66
    curve = ec.SECP521R1()
    order = int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    )
    bitmask = 0x01


# --------------------------------------------------------------------------------------------
# Signature schemes (RFC 9420 §5.1.2, §17.1)


class SignatureScheme:
    """A signature scheme with serialized keys.

    Attributes:
        name: the TLS SignatureScheme name (``ed25519``, ``ecdsa_secp256r1_sha256``, ...).
        public_key_length: the exact length of a serialized public key.
    """

    name: ClassVar[str]
    public_key_length: ClassVar[int]

    def generate(self) -> tuple[bytes, bytes]:
        """A fresh ``(private, public)`` pair, serialized."""
        raise NotImplementedError

    def public_key(self, private_key: bytes) -> bytes:
        raise NotImplementedError

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        raise NotImplementedError

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        """Returns if ``signature`` is valid, else raises :class:`VerificationError`; an
        invalid public key raises :class:`ValidationError` (``§5.1.1/public-key-encoding``)."""
        raise NotImplementedError

    def check_public_key(self, public_key: bytes) -> None:
        raise NotImplementedError

    # Loading a key object costs about as much as one signature, and a member signs with one
    # key and verifies the same few keys over and over: the last private key and a bounded
    # set of public keys stay loaded.
    _PUBLIC_CACHE_SIZE: ClassVar[int] = 4096

    def _loaded_private(self, private_key: bytes, load: Callable[[bytes], _K]) -> _K:
        last = self.__dict__.get("_last_private")
        if (
            last is not None
            and len(last[0]) == len(private_key)
            and hmac.compare_digest(last[0], private_key)
        ):
            return cast("_K", last[1])
        key = load(private_key)
        self.__dict__["_last_private"] = (bytes(private_key), key)
        return key

    def _loaded_public(self, public_key: bytes, load: Callable[[bytes], _K]) -> _K:
        cache: dict[bytes, object] = self.__dict__.setdefault("_public_cache", {})
        key = cache.get(public_key)
        if key is None:
            key = load(public_key)  # raises for an invalid key: nothing cached
            if len(cache) >= self._PUBLIC_CACHE_SIZE:
                cache.clear()
            cache[bytes(public_key)] = key
        return cast("_K", key)


class _EdwardsScheme(SignatureScheme):
    """Ed25519 or Ed448 (RFC 8032): raw keys; the private key is the seed."""

    seed_length: ClassVar[int]
    signature_length: ClassVar[int]
    _private_cls: ClassVar[type[ed25519.Ed25519PrivateKey] | type[ed448.Ed448PrivateKey]]
    _public_cls: ClassVar[type[ed25519.Ed25519PublicKey] | type[ed448.Ed448PublicKey]]

    def _private(self, private_key: bytes) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey:
        n = self.seed_length
        seed, public_half = private_key, None
        if len(private_key) == 2 * n:
            # Some implementations store seed || public key; the seed is what signs.
            seed, public_half = private_key[:n], private_key[n:]
        if len(seed) != n:
            raise UsageError(f"{self.name} private key must be {n} bytes")
        key = self._private_cls.from_private_bytes(seed)
        if public_half is not None and public_half != key.public_key().public_bytes_raw():
            # Signing with the seed would silently produce signatures under another key.
            raise UsageError(f"{self.name} private key: its public half does not match the seed")
        return key

    def _public(self, public_key: bytes) -> ed25519.Ed25519PublicKey | ed448.Ed448PublicKey:
        key = _raw_public_key(
            self._public_cls.from_public_bytes, public_key, self.public_key_length, self.name
        )
        return cast("ed25519.Ed25519PublicKey | ed448.Ed448PublicKey", key)

    def generate(self) -> tuple[bytes, bytes]:
        key = self._private_cls.generate()
        return key.private_bytes_raw(), key.public_key().public_bytes_raw()

    def public_key(self, private_key: bytes) -> bytes:
        return self._private(private_key).public_key().public_bytes_raw()

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        return self._loaded_private(private_key, self._private).sign(message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        key = self._loaded_public(public_key, self._public)
        if len(signature) != self.signature_length:
            raise VerificationError(
                SIGNATURE_RULE, f"{self.name} signature must be {self.signature_length} bytes"
            )
        try:
            key.verify(signature, message)
        except InvalidSignature:
            raise VerificationError(
                SIGNATURE_RULE, f"{self.name} signature does not verify"
            ) from None

    def check_public_key(self, public_key: bytes) -> None:
        self._public(public_key)


class Ed25519Scheme(_EdwardsScheme):
    name = "ed25519"
    public_key_length = 32
    seed_length = 32
    signature_length = 64
    _private_cls = ed25519.Ed25519PrivateKey
    _public_cls = ed25519.Ed25519PublicKey


class Ed448Scheme(_EdwardsScheme):
    name = "ed448"
    public_key_length = 57
    seed_length = 57
    signature_length = 114
    _private_cls = ed448.Ed448PrivateKey
    _public_cls = ed448.Ed448PublicKey


class EcdsaScheme(SignatureScheme):
    """ECDSA over a NIST curve: uncompressed-point public keys, scalar private keys, DER
    signatures (RFC 9420 §5.1.2; raw ``r || s`` is rejected)."""

    group: ClassVar[NistGroup]
    _hash: ClassVar[hashes.HashAlgorithm]

    def generate(self) -> tuple[bytes, bytes]:
        return self.group.generate()

    def _scalar(self, private_key: bytes) -> bytes:
        # Signature private keys are big-endian scalars; some encoders (the official
        # message-protection vector for P-521 among them) drop leading zero bytes.
        if 0 < len(private_key) < self.group.nsk:
            return private_key.rjust(self.group.nsk, b"\0")
        return private_key

    def public_key(self, private_key: bytes) -> bytes:
        return self.group.public_key(self._scalar(private_key))

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        key = self._loaded_private(self._scalar(private_key), self.group._private)
        return key.sign(message, ec.ECDSA(self._hash))

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        key = self._loaded_public(public_key, self.group._public)
        try:
            r, s = decode_dss_signature(signature)
            canonical = encode_dss_signature(r, s)
        except ValueError:
            raise VerificationError(SIGNATURE_RULE, f"{self.name} signature is not DER") from None
        if canonical != signature:
            raise VerificationError(SIGNATURE_RULE, f"{self.name} signature is not canonical DER")
        try:
            key.verify(signature, message, ec.ECDSA(self._hash))
        except InvalidSignature:
            raise VerificationError(
                SIGNATURE_RULE, f"{self.name} signature does not verify"
            ) from None

    def check_public_key(self, public_key: bytes) -> None:
        self.group.check_public_key(public_key)


class EcdsaP256Sha256(EcdsaScheme):
    name = "ecdsa_secp256r1_sha256"
    public_key_length = 65
    group = P256Group()
    _hash = hashes.SHA256()


class EcdsaP384Sha384(EcdsaScheme):
    name = "ecdsa_secp384r1_sha384"
    public_key_length = 97
    group = P384Group()
    _hash = hashes.SHA384()


class EcdsaP521Sha512(EcdsaScheme):
    name = "ecdsa_secp521r1_sha512"
    public_key_length = 133
    group = P521Group()
    _hash = hashes.SHA512()
