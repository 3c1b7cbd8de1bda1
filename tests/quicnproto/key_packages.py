"""Real KeyPackages (RFC 9420 §10) for node tests, built with the ``mls`` library.

The KeyPackage's signature key is the identity's Ed25519 key, as the node requires.
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def make_key_package(
    identity: Ed25519PrivateKey,
    *,
    suite_id: int = 1,
    not_before: int | None = None,
    not_after: int | None = None,
    name: bytes = b"tester",
) -> bytes:
    """A signed KeyPackage for ``identity`` in ``MLSMessage`` form if ``mls.framing`` exists,
    else bare. ``suite_id`` must be an Ed25519 suite (1 or 3)."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from mls.credentials import Credential, CredentialType
    from mls.crypto.ciphersuite import get_suite
    from mls.group_context import ProtocolVersion
    from mls.key_package import KeyPackage
    from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime

    suite = get_suite(suite_id)
    now = int(time.time())
    signature_priv = identity.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    signature_pub = suite.signature_public_key(signature_priv)
    _, encryption_key = suite.hpke.kem.generate_key_pair()
    _, init_key = suite.hpke.kem.generate_key_pair()
    leaf = LeafNode(
        encryption_key=encryption_key,
        signature_key=signature_pub,
        credential=Credential.basic(name),
        capabilities=Capabilities(
            versions=(1,),
            cipher_suites=(suite_id,),
            extensions=(),
            proposals=(),
            credentials=(CredentialType.BASIC,),
        ),
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=Lifetime(
            not_before=now - 60 if not_before is None else not_before,
            not_after=now + 86400 if not_after is None else not_after,
        ),
        extensions=(),
        signature=b"",
    ).signed(suite, signature_priv)
    kp = KeyPackage(
        version=ProtocolVersion.MLS10,
        cipher_suite=suite_id,
        init_key=init_key,
        leaf_node=leaf,
        extensions=(),
        signature=b"",
    ).signed(suite, signature_priv)
    encoded = kp.encode()
    try:
        from mls.framing import MLSMessage  # noqa: F401
    except ImportError:
        return encoded
    # MLSMessage: version mls10 (1), wire_format mls_key_package (5), KeyPackage (RFC 9420 §6).
    return (1).to_bytes(2, "big") + (5).to_bytes(2, "big") + encoded
