"""LeafNodes and KeyPackages for unit tests (suite 1 by default), all made by
:meth:`KeyPackage.generate`.

HPKE keys are derived from a per-name seed (``random=``); signature keys are fresh per
:func:`keys` call. A test that needs a deliberately broken leaf or KeyPackage passes field
``changes``, applied to the generated value, which is then signed again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mls.credentials import Credential, CredentialType
from mls.crypto.ciphersuite import Suite, get_suite
from mls.extensions import Extension
from mls.group_context import ProtocolVersion
from mls.key_package import CLOCK_SKEW, KeyPackage
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime

from .._tree_helpers import deterministic_random

NOW = 1_700_000_000
LIFETIME = Lifetime(NOW - CLOCK_SKEW, NOW + 86400)


@dataclass(frozen=True)
class Keys:
    suite: Suite
    seed: bytes
    signature_priv: bytes = field(repr=False)
    signature_pub: bytes
    encryption_priv: bytes = field(repr=False)
    encryption_pub: bytes
    init_priv: bytes = field(repr=False)
    init_pub: bytes


def capabilities(**changes: Any) -> Capabilities:
    base = Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(1, 2, 3),
        extensions=(),
        proposals=(),
        credentials=(CredentialType.BASIC,),
    )
    return dataclasses.replace(base, **changes)


def _generate(
    suite: Suite,
    signature_priv: bytes,
    seed: bytes,
    *,
    credential: Credential | None = None,
    caps: Capabilities | None = None,
    extensions: tuple[Extension, ...] = (),
    leaf_extensions: tuple[Extension, ...] = (),
) -> KeyPackage:
    """The KeyPackage of ``seed``'s HPKE keys, valid over :data:`LIFETIME`."""
    package, _ = KeyPackage.generate(
        suite,
        signature_priv,
        Credential.basic(b"alice") if credential is None else credential,
        capabilities=capabilities() if caps is None else caps,
        now=NOW,
        lifetime=LIFETIME.not_after - LIFETIME.not_before,
        extensions=extensions,
        leaf_extensions=leaf_extensions,
        random=deterministic_random(seed),
    )
    return package


def keys(suite_id: int = 1, seed: bytes = b"alice") -> Keys:
    suite = get_suite(suite_id)
    sig_priv, sig_pub = suite.generate_signature_key_pair()
    _, private = KeyPackage.generate(
        suite, sig_priv, Credential.basic(seed), random=deterministic_random(seed)
    )
    return Keys(
        suite,
        seed,
        sig_priv,
        sig_pub,
        private.encryption_priv,
        suite.hpke.public_key(private.encryption_priv),
        private.init_priv,
        suite.hpke.public_key(private.init_priv),
    )


def leaf_node(
    k: Keys,
    source: LeafNodeSource = LeafNodeSource.KEY_PACKAGE,
    *,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
    **changes: Any,
) -> LeafNode:
    """A signed leaf; ``credential``, ``capabilities`` and ``extensions`` go to
    :meth:`KeyPackage.generate`, other ``changes`` replace fields before signing again."""
    leaf = _generate(
        k.suite,
        k.signature_priv,
        k.seed,
        credential=changes.pop("credential", None),
        caps=changes.pop("capabilities", None),
        leaf_extensions=changes.pop("extensions", ()),
    ).leaf_node
    if source != LeafNodeSource.KEY_PACKAGE:
        changes = {
            "leaf_node_source": source,
            "lifetime": None,
            "parent_hash": b"\x11" * 32 if source == LeafNodeSource.COMMIT else None,
            **changes,
        }
    if not changes:
        return leaf
    leaf = dataclasses.replace(leaf, **changes)
    return leaf.signed(k.suite, k.signature_priv, group_id=group_id, leaf_index=leaf_index)


def key_package(k: Keys, leaf: LeafNode | None = None, **changes: Any) -> KeyPackage:
    """A signed KeyPackage; ``extensions`` go to :meth:`KeyPackage.generate`, a ``leaf`` and
    other ``changes`` replace fields before signing again."""
    package = _generate(k.suite, k.signature_priv, k.seed, extensions=changes.pop("extensions", ()))
    if leaf is not None:
        changes["leaf_node"] = leaf
    if not changes:
        return package
    return dataclasses.replace(package, **changes).signed(k.suite, k.signature_priv)
