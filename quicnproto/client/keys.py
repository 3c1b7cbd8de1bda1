"""A client's identity and the KeyPackages it publishes (RFC 9420 §10).

The node binds KeyPackages to the uploader: the KeyPackage's leaf ``signature_key`` is the
client's Ed25519 identity key (cipher suites 1 and 3 sign with Ed25519). The private halves of
a KeyPackage (its ``init_key`` and leaf ``encryption_key``) stay with the client. KeyPackages
are made by :meth:`mls.key_package.KeyPackage.generate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from mls.credentials import Credential
from mls.framing import MLSMessage
from mls.key_package import DEFAULT_KEY_PACKAGE_LIFETIME, KeyPackage

ED25519_SUITES = (1, 3)
"""The cipher suites whose signature scheme is Ed25519 (RFC 9420 §17.1)."""

DEFAULT_LIFETIME = DEFAULT_KEY_PACKAGE_LIFETIME
"""Seconds a new KeyPackage stays valid (the node accepts at most 90 days from upload)."""


@dataclass(frozen=True)
class KeyPackageSecrets:
    """The private keys behind one published KeyPackage (its signature key is the client's
    identity key, kept once in the client's state)."""

    ref: bytes
    init_private: bytes = field(repr=False)
    encryption_private: bytes = field(repr=False)


def identity_private_bytes(identity: Ed25519PrivateKey) -> bytes:
    return identity.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def new_key_package(
    identity: Ed25519PrivateKey,
    name: bytes,
    *,
    suite_id: int = 1,
    lifetime: int = DEFAULT_LIFETIME,
    now: int | None = None,
) -> tuple[bytes, KeyPackageSecrets]:
    """A fresh signed KeyPackage, as an encoded ``MLSMessage``, and its private keys.

    Args:
        identity: the client's Ed25519 identity key, which signs the KeyPackage.
        name: the basic credential's identity.
        suite_id: an Ed25519 cipher suite (1 or 3).
        lifetime: seconds of validity, starting ``mls.key_package.CLOCK_SKEW`` before ``now``.
        now: the current time in seconds since the Unix epoch (default: the clock).
    """
    if suite_id not in ED25519_SUITES:
        raise ValueError(f"cipher suite {suite_id} does not sign with Ed25519")
    package, keys = KeyPackage.generate(
        suite_id,
        identity_private_bytes(identity),
        Credential.basic(name),
        lifetime=lifetime,
        now=now,
    )
    secrets = KeyPackageSecrets(keys.ref, keys.init_priv, keys.encryption_priv)
    return MLSMessage.of(package).encode(), secrets
