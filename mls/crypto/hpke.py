"""Hybrid Public Key Encryption (RFC 9180), composed here from ``cryptography`` primitives.

RFC 9420 §5.1.3 uses HPKE in base mode only; the PSK, Auth and AuthPSK modes are implemented
too so that every RFC 9180 Appendix A vector can be checked. The KEMs are the DHKEMs of
RFC 9180 §4.1 over P-256, P-384, P-521, X25519 and X448; the KDFs HKDF-SHA256/384/512; the
AEADs AES-128-GCM, AES-256-GCM, ChaCha20Poly1305 and the export-only AEAD (0xFFFF).

Errors: a receiver-side failure (bad ``enc``, failed authentication) raises
:class:`~mls.errors.DecryptionError`; an invalid recipient or sender public key given to a
sender raises :class:`~mls.errors.ValidationError`; misuse (sealing with the export-only
AEAD, exhausting the sequence number, inconsistent PSK inputs) raises
:class:`~mls.errors.UsageError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import DecryptionError, UnsupportedError, UsageError, ValidationError
from .primitives import (
    AES_128_GCM,
    AES_256_GCM,
    CHACHA20_POLY1305,
    SHA256,
    SHA384,
    SHA512,
    Aead,
    DhGroup,
    HashFunction,
    NistGroup,
    P256Group,
    P384Group,
    P521Group,
    X448Group,
    X25519Group,
)

HPKE_OPEN_RULE = "§5.1.3/hpke-open"
"""Rule named by errors when an HPKE ciphertext cannot be opened."""

_VERSION_LABEL = b"HPKE-v1"


class KemId(IntEnum):
    """KEM identifiers (RFC 9180 §7.1)."""

    DHKEM_P256_HKDF_SHA256 = 0x0010
    DHKEM_P384_HKDF_SHA384 = 0x0011
    DHKEM_P521_HKDF_SHA512 = 0x0012
    DHKEM_X25519_HKDF_SHA256 = 0x0020
    DHKEM_X448_HKDF_SHA512 = 0x0021


class KdfId(IntEnum):
    """KDF identifiers (RFC 9180 §7.2)."""

    HKDF_SHA256 = 0x0001
    HKDF_SHA384 = 0x0002
    HKDF_SHA512 = 0x0003


class AeadId(IntEnum):
    """AEAD identifiers (RFC 9180 §7.3)."""

    AES_128_GCM = 0x0001
    AES_256_GCM = 0x0002
    CHACHA20_POLY1305 = 0x0003
    EXPORT_ONLY = 0xFFFF


class Mode(IntEnum):
    """HPKE modes (RFC 9180 §5)."""

    BASE = 0x00
    PSK = 0x01
    AUTH = 0x02
    AUTH_PSK = 0x03


_KDFS: dict[KdfId, HashFunction] = {
    KdfId.HKDF_SHA256: SHA256,
    KdfId.HKDF_SHA384: SHA384,
    KdfId.HKDF_SHA512: SHA512,
}
_AEADS: dict[AeadId, Aead | None] = {
    AeadId.AES_128_GCM: AES_128_GCM,
    AeadId.AES_256_GCM: AES_256_GCM,
    AeadId.CHACHA20_POLY1305: CHACHA20_POLY1305,
    AeadId.EXPORT_ONLY: None,
}
# KEM -> (DH group, the KEM's own KDF, Nsecret)
_KEMS: dict[KemId, tuple[DhGroup, HashFunction, int]] = {
    KemId.DHKEM_P256_HKDF_SHA256: (P256Group(), SHA256, 32),
    KemId.DHKEM_P384_HKDF_SHA384: (P384Group(), SHA384, 48),
    KemId.DHKEM_P521_HKDF_SHA512: (P521Group(), SHA512, 64),
    KemId.DHKEM_X25519_HKDF_SHA256: (X25519Group(), SHA256, 32),
    KemId.DHKEM_X448_HKDF_SHA512: (X448Group(), SHA512, 64),
}


class _LabeledKdf:
    """LabeledExtract / LabeledExpand (RFC 9180 §4) for one ``suite_id``."""

    __slots__ = ("hash", "suite_id")

    def __init__(self, hash_function: HashFunction, suite_id: bytes) -> None:
        self.hash = hash_function
        self.suite_id = suite_id

    def extract(self, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return self.hash.extract(salt, _VERSION_LABEL + self.suite_id + label + ikm)

    def expand(self, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        if not 0 <= length <= 0xFFFF:
            raise UsageError("LabeledExpand length must be in [0, 2^16 - 1]")
        labeled_info = length.to_bytes(2, "big") + _VERSION_LABEL + self.suite_id + label + info
        return self.hash.expand(prk, labeled_info, length)


class DHKEM:
    """DHKEM(Group, KDF) (RFC 9180 §4.1).

    Attributes:
        kem_id: the KEM identifier.
        group: the Diffie-Hellman group.
        n_secret, n_enc, n_pk, n_sk: the RFC 9180 §7.1 sizes.
    """

    def __init__(self, kem_id: KemId) -> None:
        group, hash_function, n_secret = _KEMS[kem_id]
        self.kem_id = kem_id
        self.group = group
        self.n_secret = n_secret
        self.n_enc = group.npk
        self.n_pk = group.npk
        self.n_sk = group.nsk
        self._kdf = _LabeledKdf(hash_function, b"KEM" + kem_id.to_bytes(2, "big"))

    def __repr__(self) -> str:
        return f"DHKEM({self.kem_id.name})"

    def generate_key_pair(self) -> tuple[bytes, bytes]:
        return self.group.generate()

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """DeriveKeyPair (RFC 9180 §7.1.3), with the rejection loop for the NIST curves."""
        dkp_prk = self._kdf.extract(b"", b"dkp_prk", ikm)
        group = self.group
        if isinstance(group, NistGroup):
            for counter in range(256):
                candidate = bytearray(
                    self._kdf.expand(dkp_prk, b"candidate", bytes([counter]), self.n_sk)
                )
                candidate[0] &= group.bitmask
                sk = group.private_key_from_scalar(int.from_bytes(candidate, "big"))
                if sk is not None:
                    return sk, group.public_key(sk)
            raise UsageError("DeriveKeyPair found no valid scalar")  # probability ~2^-256 or less
        sk = self._kdf.expand(dkp_prk, b"sk", b"", self.n_sk)
        return sk, group.public_key(sk)

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> bytes:
        eae_prk = self._kdf.extract(b"", b"eae_prk", dh)
        return self._kdf.expand(eae_prk, b"shared_secret", kem_context, self.n_secret)

    def _ephemeral(self, ikm_e: bytes | None) -> tuple[bytes, bytes]:
        return self.generate_key_pair() if ikm_e is None else self.derive_key_pair(ikm_e)

    def encap(self, pk_r: bytes, *, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
        """Encap (RFC 9180 §4.1): ``(shared_secret, enc)``. ``ikm_e`` fixes the ephemeral
        key (test vectors only)."""
        sk_e, enc = self._ephemeral(ikm_e)
        dh = self.group.dh(sk_e, pk_r)  # validates pk_r (RFC 9180 §7.1.4)
        return self._extract_and_expand(dh, enc + pk_r), enc

    def decap(self, enc: bytes, sk_r: bytes) -> bytes:
        """Decap (RFC 9180 §4.1); a bad ``enc`` raises :class:`DecryptionError`."""
        try:
            dh = self.group.dh(sk_r, enc)
        except ValidationError as exc:
            raise DecryptionError(HPKE_OPEN_RULE, f"invalid enc: {exc}") from None
        pk_rm = self.group.public_key(sk_r)
        return self._extract_and_expand(dh, enc + pk_rm)

    def auth_encap(
        self, pk_r: bytes, sk_s: bytes, *, ikm_e: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """AuthEncap (RFC 9180 §4.1): ``(shared_secret, enc)``."""
        sk_e, enc = self._ephemeral(ikm_e)
        dh = self.group.dh(sk_e, pk_r) + self.group.dh(sk_s, pk_r)  # validates pk_r
        pk_sm = self.group.public_key(sk_s)
        return self._extract_and_expand(dh, enc + pk_r + pk_sm), enc

    def auth_decap(self, enc: bytes, sk_r: bytes, pk_s: bytes) -> bytes:
        """AuthDecap (RFC 9180 §4.1)."""
        self.group.check_public_key(pk_s)
        try:
            dh = self.group.dh(sk_r, enc) + self.group.dh(sk_r, pk_s)
        except ValidationError as exc:
            raise DecryptionError(HPKE_OPEN_RULE, f"invalid enc: {exc}") from None
        pk_rm = self.group.public_key(sk_r)
        return self._extract_and_expand(dh, enc + pk_rm + pk_s)


@dataclass(eq=False)
class Context:
    """An HPKE encryption context (RFC 9180 §5.2, §5.3).

    ``seal`` is for a sender's context and ``open`` for a recipient's; both advance the
    sequence number. ``export`` works for either. The key material is hidden from ``repr``.
    """

    hpke: Hpke
    mode: Mode
    key_schedule_context: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    key: bytes = field(repr=False)
    base_nonce: bytes = field(repr=False)
    exporter_secret: bytes = field(repr=False)
    seq: int = 0

    def _aead(self) -> Aead:
        aead = self.hpke.aead
        if aead is None:
            raise UsageError("the export-only AEAD cannot seal or open")
        return aead

    def compute_nonce(self, seq: int) -> bytes:
        n = len(self.base_nonce)
        if not 0 <= seq < 1 << (8 * n):
            raise UsageError("HPKE sequence number out of range")
        seq_bytes = seq.to_bytes(n, "big")
        return bytes(a ^ b for a, b in zip(self.base_nonce, seq_bytes, strict=True))

    def _check_limit(self) -> None:
        if self.seq >= (1 << (8 * len(self.base_nonce))) - 1:
            raise UsageError("HPKE message limit reached")

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        aead = self._aead()
        self._check_limit()
        ct = aead.seal(self.key, self.compute_nonce(self.seq), aad, plaintext)
        self.seq += 1
        return ct

    def open(self, aad: bytes, ciphertext: bytes) -> bytes:
        aead = self._aead()
        self._check_limit()
        try:
            pt = aead.open(self.key, self.compute_nonce(self.seq), aad, ciphertext)
        except DecryptionError:
            raise DecryptionError(HPKE_OPEN_RULE, "HPKE ciphertext does not authenticate") from None
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        """Secret export (RFC 9180 §5.3)."""
        return self.hpke._kdf.expand(self.exporter_secret, b"sec", exporter_context, length)


class Hpke:
    """HPKE (RFC 9180) for one ``(kem, kdf, aead)`` combination.

    Key encodings are those of RFC 9180 §7.1.1: raw X25519/X448 keys, uncompressed SEC1
    points and fixed-length big-endian scalars for the NIST curves.
    """

    def __init__(self, kem_id: int, kdf_id: int, aead_id: int) -> None:
        try:
            self.kem_id = KemId(kem_id)
            self.kdf_id = KdfId(kdf_id)
            self.aead_id = AeadId(aead_id)
        except ValueError:
            raise UnsupportedError(
                f"unsupported HPKE suite (0x{kem_id:04x}, 0x{kdf_id:04x}, 0x{aead_id:04x})"
            ) from None
        self.kem = DHKEM(self.kem_id)
        self.aead: Aead | None = _AEADS[self.aead_id]
        suite_id = b"HPKE" + b"".join(i.to_bytes(2, "big") for i in (kem_id, kdf_id, aead_id))
        self._kdf = _LabeledKdf(_KDFS[self.kdf_id], suite_id)
        self.nh = _KDFS[self.kdf_id].digest_size
        self.nk = 0 if self.aead is None else self.aead.nk
        self.nn = 0 if self.aead is None else self.aead.nn

    def __repr__(self) -> str:
        return f"Hpke({self.kem_id.name}, {self.kdf_id.name}, {self.aead_id.name})"

    # -- keys ---------------------------------------------------------------------------------

    def generate_key_pair(self) -> tuple[bytes, bytes]:
        """A fresh ``(sk, pk)`` pair, serialized."""
        return self.kem.generate_key_pair()

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """DeriveKeyPair (RFC 9180 §7.1.3): ``(sk, pk)``, serialized."""
        return self.kem.derive_key_pair(ikm)

    def public_key(self, sk: bytes) -> bytes:
        return self.kem.group.public_key(sk)

    def check_public_key(self, pk: bytes) -> None:
        """Raises :class:`ValidationError` (``§5.1.1/public-key-encoding``) unless ``pk`` is a
        valid public key for this KEM (RFC 9420 §5.1.1, VALIDATION.md CRD-04)."""
        self.kem.group.check_public_key(pk)

    # -- key schedule (RFC 9180 §5.1) ----------------------------------------------------------

    def key_schedule(
        self, mode: Mode, shared_secret: bytes, info: bytes, psk: bytes = b"", psk_id: bytes = b""
    ) -> Context:
        has_psk = bool(psk)
        if has_psk != bool(psk_id):
            raise UsageError("psk and psk_id must both be given or both be empty")
        if has_psk != (mode in (Mode.PSK, Mode.AUTH_PSK)):
            raise UsageError(f"mode {mode.name} {'requires' if not has_psk else 'forbids'} a PSK")
        psk_id_hash = self._kdf.extract(b"", b"psk_id_hash", psk_id)
        info_hash = self._kdf.extract(b"", b"info_hash", info)
        ks_context = bytes([mode]) + psk_id_hash + info_hash
        secret = self._kdf.extract(shared_secret, b"secret", psk)
        if self.aead is None:
            key = base_nonce = b""
        else:
            key = self._kdf.expand(secret, b"key", ks_context, self.nk)
            base_nonce = self._kdf.expand(secret, b"base_nonce", ks_context, self.nn)
        exporter_secret = self._kdf.expand(secret, b"exp", ks_context, self.nh)
        return Context(self, mode, ks_context, secret, key, base_nonce, exporter_secret)

    # -- setup (RFC 9180 §5.1.1 - §5.1.4) -----------------------------------------------------

    def setup_base_s(
        self, pk_r: bytes, info: bytes, *, ikm_e: bytes | None = None
    ) -> tuple[bytes, Context]:
        shared_secret, enc = self.kem.encap(pk_r, ikm_e=ikm_e)
        return enc, self.key_schedule(Mode.BASE, shared_secret, info)

    def setup_base_r(self, enc: bytes, sk_r: bytes, info: bytes) -> Context:
        return self.key_schedule(Mode.BASE, self.kem.decap(enc, sk_r), info)

    def setup_psk_s(
        self, pk_r: bytes, info: bytes, psk: bytes, psk_id: bytes, *, ikm_e: bytes | None = None
    ) -> tuple[bytes, Context]:
        shared_secret, enc = self.kem.encap(pk_r, ikm_e=ikm_e)
        return enc, self.key_schedule(Mode.PSK, shared_secret, info, psk, psk_id)

    def setup_psk_r(
        self, enc: bytes, sk_r: bytes, info: bytes, psk: bytes, psk_id: bytes
    ) -> Context:
        return self.key_schedule(Mode.PSK, self.kem.decap(enc, sk_r), info, psk, psk_id)

    def setup_auth_s(
        self, pk_r: bytes, info: bytes, sk_s: bytes, *, ikm_e: bytes | None = None
    ) -> tuple[bytes, Context]:
        shared_secret, enc = self.kem.auth_encap(pk_r, sk_s, ikm_e=ikm_e)
        return enc, self.key_schedule(Mode.AUTH, shared_secret, info)

    def setup_auth_r(self, enc: bytes, sk_r: bytes, info: bytes, pk_s: bytes) -> Context:
        return self.key_schedule(Mode.AUTH, self.kem.auth_decap(enc, sk_r, pk_s), info)

    def setup_auth_psk_s(
        self,
        pk_r: bytes,
        info: bytes,
        psk: bytes,
        psk_id: bytes,
        sk_s: bytes,
        *,
        ikm_e: bytes | None = None,
    ) -> tuple[bytes, Context]:
        shared_secret, enc = self.kem.auth_encap(pk_r, sk_s, ikm_e=ikm_e)
        return enc, self.key_schedule(Mode.AUTH_PSK, shared_secret, info, psk, psk_id)

    def setup_auth_psk_r(
        self, enc: bytes, sk_r: bytes, info: bytes, psk: bytes, psk_id: bytes, pk_s: bytes
    ) -> Context:
        return self.key_schedule(
            Mode.AUTH_PSK, self.kem.auth_decap(enc, sk_r, pk_s), info, psk, psk_id
        )

    # -- single-shot base mode (RFC 9180 §6.1) -------------------------------------------------

    def seal(self, pk: bytes, info: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        """SealBase: ``(enc, ciphertext)``."""
        enc, ctx = self.setup_base_s(pk, info)
        return enc, ctx.seal(aad, plaintext)

    def open(self, sk: bytes, enc: bytes, info: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """OpenBase; raises :class:`DecryptionError` if ``enc`` or ``ciphertext`` is bad."""
        return self.setup_base_r(enc, sk, info).open(aad, ciphertext)
