"""Credentials: who a signature key belongs to (RFC 9420 §5.3).

A :class:`Credential` binds an identity to a member's signature key. This module declares only
its wire form; whether a credential is acceptable is the Authentication Service's business
(RFC 9420 §5.3.1), which the group logic asks through a callback.

Credential types are an open registry (§17.1): capability lists carry unknown values as plain
integers. A :class:`Credential` of an unknown type cannot be decoded, though, because its body
has no length prefix; that is a :class:`~mls.errors.DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .codec import U16, Empty, Opaque, Select, Struct, Vector


class CredentialType(IntEnum):
    """The credential types RFC 9420 defines (§5.3, §17.1). Fields hold plain integers."""

    BASIC = 1
    X509 = 2


@dataclass(frozen=True)
class Certificate(Struct):
    """One DER-encoded X.509 certificate of a chain (RFC 9420 §5.3)."""

    cert_data: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class Credential(Struct):
    """A member's credential (RFC 9420 §5.3).

    Exactly the field of ``credential_type`` is set; the other one is ``None``. Build one with
    :meth:`basic` or :meth:`x509`.
    """

    credential_type: Annotated[int, U16]
    identity: Annotated[
        bytes | None,
        Select("credential_type", {CredentialType.BASIC: Opaque, CredentialType.X509: Empty}),
    ] = field(default=None, kw_only=True)
    """The application-defined identity of a ``basic`` credential."""
    certificates: Annotated[
        tuple[Certificate, ...] | None,
        Select(
            "credential_type",
            {CredentialType.BASIC: Empty, CredentialType.X509: Vector(Certificate)},
        ),
    ] = field(default=None, kw_only=True)
    """The chain of an ``x509`` credential, end-entity certificate first."""

    @classmethod
    def basic(cls, identity: bytes) -> Credential:
        return cls(CredentialType.BASIC, identity=identity)

    @classmethod
    def x509(cls, chain: tuple[bytes, ...]) -> Credential:
        return cls(CredentialType.X509, certificates=tuple(Certificate(c) for c in chain))


def x509_signature_key(cert_der: bytes) -> bytes | None:
    """The public key of a DER certificate in the form MLS carries a ``SignaturePublicKey``
    (RFC 9420 §5.1.1: raw Ed25519/Ed448 keys, uncompressed ECDSA points), or ``None`` if the
    certificate does not parse or holds a key of another kind.

    The certificate is only parsed, not validated: chain and identity checks belong to the
    Authentication Service (§5.3.1).
    """
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return None
