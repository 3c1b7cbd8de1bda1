"""Hand-built, correctly signed LeafNodes and KeyPackages for unit tests (suite 1 by default).

HPKE keys are derived from fixed seeds; signature keys are fresh per call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mls.credentials import Credential, CredentialType
from mls.crypto.ciphersuite import Suite, get_suite
from mls.group_context import ProtocolVersion
from mls.key_package import KeyPackage
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime

NOW = 1_700_000_000
LIFETIME = Lifetime(NOW - 3600, NOW + 86400)


@dataclass(frozen=True)
class Keys:
    suite: Suite
    signature_priv: bytes
    signature_pub: bytes
    encryption_priv: bytes
    encryption_pub: bytes
    init_priv: bytes
    init_pub: bytes


def keys(suite_id: int = 1, seed: bytes = b"alice") -> Keys:
    suite = get_suite(suite_id)
    sig_priv, sig_pub = suite.generate_signature_key_pair()
    enc_priv, enc_pub = suite.hpke.derive_key_pair(b"enc" + seed.ljust(32, b"."))
    init_priv, init_pub = suite.hpke.derive_key_pair(b"init" + seed.ljust(32, b"."))
    return Keys(suite, sig_priv, sig_pub, enc_priv, enc_pub, init_priv, init_pub)


def capabilities(**changes: Any) -> Capabilities:
    base = Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(1, 2, 3),
        extensions=(),
        proposals=(),
        credentials=(CredentialType.BASIC,),
    )
    return dataclasses.replace(base, **changes)


def leaf_node(
    k: Keys,
    source: LeafNodeSource = LeafNodeSource.KEY_PACKAGE,
    *,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
    **changes: Any,
) -> LeafNode:
    """A signed leaf; ``changes`` replace fields before signing."""
    leaf = LeafNode(
        encryption_key=k.encryption_pub,
        signature_key=k.signature_pub,
        credential=Credential.basic(b"alice"),
        capabilities=capabilities(),
        leaf_node_source=source,
        lifetime=LIFETIME if source == LeafNodeSource.KEY_PACKAGE else None,
        parent_hash=b"\x11" * 32 if source == LeafNodeSource.COMMIT else None,
        extensions=(),
        signature=b"",
    )
    leaf = dataclasses.replace(leaf, **changes)
    return leaf.signed(k.suite, k.signature_priv, group_id=group_id, leaf_index=leaf_index)


def key_package(k: Keys, leaf: LeafNode | None = None, **changes: Any) -> KeyPackage:
    """A signed KeyPackage; ``changes`` replace fields before signing."""
    kp = KeyPackage(
        version=ProtocolVersion.MLS10,
        cipher_suite=k.suite.id,
        init_key=k.init_pub,
        leaf_node=leaf if leaf is not None else leaf_node(k),
        extensions=(),
        signature=b"",
    )
    kp = dataclasses.replace(kp, **changes)
    return kp.signed(k.suite, k.signature_priv)
