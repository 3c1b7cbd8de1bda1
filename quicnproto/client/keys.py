"""A client's identity and the KeyPackages it publishes (RFC 9420 §10).

The node binds KeyPackages to the uploader: the KeyPackage's leaf ``signature_key`` is the
client's Ed25519 identity key (cipher suites 1 and 3 sign with Ed25519). The private halves of
a KeyPackage (its ``init_key`` and leaf ``encryption_key``) stay with the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from mls.credentials import Credential, CredentialType
from mls.crypto.ciphersuite import get_suite
from mls.framing import MLSMessage
from mls.group_context import ProtocolVersion
from mls.key_package import KeyPackage
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime

ED25519_SUITES = (1, 3)
"""The cipher suites whose signature scheme is Ed25519 (RFC 9420 §17.1)."""

DEFAULT_LIFETIME = 30 * 24 * 3600
"""Seconds a new KeyPackage stays valid (the node accepts at most 90 days)."""


@dataclass(frozen=True)
class KeyPackageSecrets:
    """The private keys behind one published KeyPackage."""

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
        lifetime: seconds of validity from now (one minute of clock skew is allowed before).
    """
    if suite_id not in ED25519_SUITES:
        raise ValueError(f"cipher suite {suite_id} does not sign with Ed25519")
    suite = get_suite(suite_id)
    start = int(time.time()) if now is None else now
    signature_priv = identity_private_bytes(identity)
    encryption_private, encryption_key = suite.hpke.generate_key_pair()
    init_private, init_key = suite.hpke.generate_key_pair()
    leaf = LeafNode(
        encryption_key=encryption_key,
        signature_key=suite.signature_public_key(signature_priv),
        credential=Credential.basic(name),
        capabilities=Capabilities(
            versions=(int(ProtocolVersion.MLS10),),
            cipher_suites=(suite_id,),
            extensions=(),
            proposals=(),
            credentials=(int(CredentialType.BASIC),),
        ),
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=Lifetime(not_before=start - 60, not_after=start + lifetime),
        extensions=(),
        signature=b"",
    ).signed(suite, signature_priv)
    package = KeyPackage(
        version=ProtocolVersion.MLS10,
        cipher_suite=suite_id,
        init_key=init_key,
        leaf_node=leaf,
        extensions=(),
        signature=b"",
    ).signed(suite, signature_priv)
    secrets = KeyPackageSecrets(package.ref(suite), init_private, encryption_private)
    return MLSMessage.of(package).encode(), secrets
