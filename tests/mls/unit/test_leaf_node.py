from __future__ import annotations

import dataclasses

import pytest

from mls.credentials import Credential, CredentialType
from mls.crypto.labels import verify_with_label
from mls.errors import DecodeError, UsageError, ValidationError, VerificationError
from mls.extensions import Extension, ExtensionType
from mls.leaf_node import (
    Capabilities,
    LeafNode,
    LeafNodeSource,
    LeafNodeTBS,
    Lifetime,
    check_credential_key,
    check_lifetime,
    check_lifetime_span,
    check_own_capabilities,
)

from ._build import NOW, capabilities, keys, leaf_node

K = keys()


def test_capabilities_encoding_is_five_u16_vectors() -> None:
    caps = Capabilities((1,), (1, 2), (), (0x0A0A,), (1,))
    assert caps.encode() == bytes.fromhex("020001040001000200020a0a020001")
    assert Capabilities.decode(caps.encode()) == caps


def test_key_package_leaf_carries_lifetime_only() -> None:
    leaf = leaf_node(K)
    decoded = LeafNode.decode(leaf.encode())
    assert decoded == leaf
    assert decoded.lifetime == Lifetime(NOW - 3600, NOW + 86400)
    assert decoded.parent_hash is None


def test_commit_leaf_carries_parent_hash_only() -> None:
    leaf = leaf_node(K, LeafNodeSource.COMMIT, group_id=b"g", leaf_index=3)
    decoded = LeafNode.decode(leaf.encode())
    assert decoded.parent_hash == b"\x11" * 32
    assert decoded.lifetime is None


def test_key_package_leaf_signature_verifies_without_group() -> None:
    leaf_node(K).verify_signature(K.suite)


@pytest.mark.parametrize("source", [LeafNodeSource.UPDATE, LeafNodeSource.COMMIT])
def test_ln02_leaf_signed_for_its_group_and_index_verifies(source: LeafNodeSource) -> None:
    leaf = leaf_node(K, source, group_id=b"group", leaf_index=5)
    leaf.verify_signature(K.suite, group_id=b"group", leaf_index=5)


@pytest.mark.parametrize("source", [LeafNodeSource.UPDATE, LeafNodeSource.COMMIT])
@pytest.mark.parametrize(("group_id", "leaf_index"), [(b"other", 5), (b"group", 4)])
def test_ln02_leaf_signed_for_another_group_or_index_is_rejected(
    source: LeafNodeSource, group_id: bytes, leaf_index: int
) -> None:
    leaf = leaf_node(K, source, group_id=b"group", leaf_index=5)
    with pytest.raises(VerificationError):
        leaf.verify_signature(K.suite, group_id=group_id, leaf_index=leaf_index)


def test_ln02_tampered_leaf_is_rejected() -> None:
    leaf = dataclasses.replace(leaf_node(K), credential=Credential.basic(b"mallory"))
    with pytest.raises(VerificationError):
        leaf.verify_signature(K.suite)


def test_update_leaf_needs_group_and_index_to_sign() -> None:
    leaf = leaf_node(K)
    leaf = dataclasses.replace(leaf, leaf_node_source=LeafNodeSource.UPDATE, lifetime=None)
    with pytest.raises(UsageError):
        leaf.tbs(group_id=b"g")


def test_tbs_appends_group_id_and_leaf_index_for_update_leaves() -> None:
    leaf = leaf_node(K, LeafNodeSource.UPDATE, group_id=b"g", leaf_index=7)
    tbs = leaf.tbs(group_id=b"g", leaf_index=7).encode()
    assert len(leaf.signature) == 64  # Ed25519: a two-byte length header (0x4040)
    unsigned = leaf.encode()[: -len(leaf.signature) - 2]
    assert leaf.encode()[len(unsigned) : len(unsigned) + 2] == b"\x40\x40"
    assert tbs == unsigned + b"\x01g" + b"\x00\x00\x00\x07"
    assert LeafNodeTBS.decode(tbs) == leaf.tbs(group_id=b"g", leaf_index=7)


def test_tbs_of_key_package_leaf_ignores_group() -> None:
    leaf = leaf_node(K)
    assert leaf.tbs(group_id=b"g", leaf_index=1) == leaf.tbs()
    assert leaf.tbs().group_id is None


def test_check_own_capabilities_rules() -> None:
    check_own_capabilities(leaf_node(K))
    missing_cred = leaf_node(K, capabilities=capabilities(credentials=(CredentialType.X509,)))
    with pytest.raises(ValidationError) as exc:
        check_own_capabilities(missing_cred)
    assert exc.value.rule == "§7.2/credential-in-capabilities"
    unlisted = leaf_node(K, extensions=(Extension(0x1234, b""),))
    with pytest.raises(ValidationError) as exc:
        check_own_capabilities(unlisted)
    assert exc.value.rule == "§7.2/extension-in-capabilities"


def test_check_lifetime_ignores_leaves_without_one() -> None:
    check_lifetime(leaf_node(K, LeafNodeSource.UPDATE, group_id=b"g", leaf_index=0), 0)
    with pytest.raises(ValidationError) as exc:
        check_lifetime(leaf_node(K), 0)
    assert exc.value.rule == "§7.3/lifetime"


@pytest.mark.parametrize("source", [0, 4, 255])
def test_dec06_unknown_leaf_node_source_does_not_decode(source: int) -> None:
    leaf = leaf_node(K, LeafNodeSource.UPDATE, group_id=b"g", leaf_index=0)
    encoded = leaf.encode()
    # The source octet follows encryption_key, signature_key, credential and capabilities.
    caps = leaf.capabilities.encode()
    at = encoded.index(caps) + len(caps)
    assert encoded[at] == LeafNodeSource.UPDATE
    with pytest.raises(DecodeError):
        LeafNode.decode(encoded[:at] + bytes([source]) + encoded[at + 1 :])


def test_signature_is_over_leaf_node_tbs_with_its_label() -> None:
    # RFC 9420 §7.2: for a key_package leaf, LeafNodeTBS is the leaf minus its signature.
    leaf = leaf_node(K)
    encoded = leaf.encode()
    assert len(leaf.signature) == 64 and encoded[-66:-64] == b"\x40\x40"
    verify_with_label(K.suite, K.signature_pub, b"LeafNodeTBS", encoded[:-66], leaf.signature)
    with pytest.raises(VerificationError):
        verify_with_label(K.suite, K.signature_pub, b"KeyPackageTBS", encoded[:-66], leaf.signature)


@pytest.mark.parametrize(
    ("extension_type", "allowed"),
    [
        (ExtensionType.APPLICATION_ID, True),
        (ExtensionType.RATCHET_TREE, False),
        (ExtensionType.REQUIRED_CAPABILITIES, False),
        (ExtensionType.EXTERNAL_PUB, False),
        (ExtensionType.EXTERNAL_SENDERS, False),
        (0x0A0A, True),  # GREASE, listed in the capabilities
    ],
)
def test_ln11_only_leaf_node_extensions_are_allowed(extension_type: int, allowed: bool) -> None:
    leaf = leaf_node(
        K,
        capabilities=capabilities(extensions=(0x0A0A,)),
        extensions=(Extension(extension_type, b""),),
    )
    if allowed:
        check_own_capabilities(leaf)
        return
    with pytest.raises(ValidationError) as exc:
        check_own_capabilities(leaf)
    assert exc.value.rule == "§17.3/leaf-extension-type"


def test_check_credential_key_ignores_basic_credentials() -> None:
    check_credential_key(leaf_node(K))


def test_check_lifetime_span() -> None:
    check_lifetime_span(leaf_node(K), 3600 + 86400)
    with pytest.raises(ValidationError) as exc:
        check_lifetime_span(leaf_node(K), 3600 + 86399)
    assert exc.value.rule == "§7.2/max-lifetime"
    check_lifetime_span(leaf_node(K, LeafNodeSource.UPDATE, group_id=b"g", leaf_index=0), 0)
