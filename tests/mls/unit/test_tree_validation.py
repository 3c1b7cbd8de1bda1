"""Negative tests for the tree rules (VALIDATION §1.5 TREE-01..11) and the leaf rules
(§1.3 LN-01..11) as a joiner applies them to a received tree.

Each test builds a valid tree with our own code (``tests/mls/_tree_helpers.py``), breaks
exactly one thing, re-signs what it changed and recomputes the GroupContext's tree hash, so
only the rule under test can fire; it then asserts the error's type and ``.rule``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mls.credentials import Credential, CredentialType
from mls.crypto.primitives import PUBLIC_KEY_RULE
from mls.errors import UsageError, ValidationError, VerificationError
from mls.extensions import (
    ApplicationId,
    Extension,
    ExtensionType,
    RequiredCapabilities,
    make_extension,
)
from mls.group_context import GroupContext
from mls.leaf_node import LeafNode, LeafNodeSource, Lifetime
from mls.ratchet_tree import (
    RULE_EMPTY,
    RULE_LEAF_INDEX,
    RULE_NODE_COUNT,
    RULE_NODE_TYPE,
    RULE_TRAILING_BLANK,
    RULE_UNMERGED_SORTED,
    RatchetTree,
)
from mls.tree_hashes import ParentHashInput
from mls.tree_math import LeafIndex, NodeIndex, direct_path, node_of
from mls.tree_nodes import Node, encode_ratchet_tree
from mls.tree_validation import (
    RULE_CREDENTIAL,
    RULE_CREDENTIAL_SUPPORT,
    RULE_LEAF_SIGNATURE,
    RULE_LEAF_SOURCE,
    RULE_MAX_LIFETIME,
    RULE_PARENT_HASH,
    RULE_REQUIRED_CAPABILITIES,
    RULE_TREE_HASH,
    RULE_UNIQUE_ENCRYPTION_KEY,
    RULE_UNIQUE_PARENT_KEY,
    RULE_UNIQUE_SIGNATURE_KEY,
    RULE_UNMERGED_INTERMEDIATE,
    RULE_UNMERGED_LEAF,
    RULE_UPDATE_KEY,
    LifetimePolicy,
    parent_hash_valid_children,
    validate_leaf_node,
    validate_ratchet_tree,
    validate_unmerged_leaves,
)

from .._tree_helpers import (
    GROUP_ID,
    NOW,
    TreeGroup,
    capabilities,
    fresh_public_key,
    get_tree,
    key_package_leaf,
    resign,
    with_parent,
)

POLICY = LifetimePolicy(clock=lambda: NOW)
VECTORS = Path(__file__).resolve().parents[4] / "shared" / "mls-test-vectors"


def validate(group: TreeGroup, tree: RatchetTree | None = None, **kwargs: object) -> None:
    """Validates ``tree`` (default: the group's) against a context carrying its tree hash."""
    tree = group.tree if tree is None else tree
    kwargs.setdefault("lifetime_policy", POLICY)
    validate_ratchet_tree(tree, group.context(tree), **kwargs)  # type: ignore[arg-type]


def expect_rule(
    rule: str,
    group: TreeGroup,
    *,
    kind: type[ValidationError] = ValidationError,
    context: GroupContext | None = None,
    **kwargs: object,
) -> None:
    kwargs.setdefault("lifetime_policy", POLICY)
    with pytest.raises(kind) as info:
        validate_ratchet_tree(
            group.tree,
            group.context() if context is None else context,
            **kwargs,  # type: ignore[arg-type]
        )
    assert info.value.rule == rule


def group_with_unmerged_newcomer(**kwargs: object) -> tuple[TreeGroup, int]:
    """get_tree(5) plus a member added without a commit: it is unmerged at every non-blank
    ancestor, so changing its leaf touches no parent hash (only the tree hash)."""
    group = get_tree(5, **kwargs)  # type: ignore[arg-type]
    newcomer = group.add()
    validate(group)
    return group, newcomer


def replace_leaf(group: TreeGroup, index: int, **changes: object) -> None:
    leaf = group.tree.leaf_node(LeafIndex(index))
    assert leaf is not None
    signer = group.members[index].ident.signature_priv
    group.tree.set_leaf(LeafIndex(index), resign(group.suite, leaf, signer, index, **changes))


# ============================================================================================
# Valid trees are accepted


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9])
def test_get_tree_is_accepted(n: int) -> None:
    group = get_tree(n)
    validate(group)
    group.check_private_views()


def test_trees_from_add_remove_commit_sequences_are_accepted() -> None:
    # Remove members so ancestors go blank, add members so parents get unmerged leaves,
    # commit from elsewhere, add again; every state is valid. (The exact mls-rs PR #352
    # shape is built and checked in the next test.)
    group = get_tree(8)
    group.remove(1)
    group.remove(2)
    group.remove(3)
    group.commit(0)
    validate(group)
    group.add()
    group.add()
    validate(group)
    group.commit(6)
    validate(group)
    group.add()
    group.remove(4)
    validate(group)
    group.commit(5)
    group.add()
    validate(group)
    group.check_private_views()


def test_tree04_mls_rs_352_blank_sibling_over_changed_unmerged_leaves_is_accepted() -> None:
    # VALIDATION TREE-04 (mls-rs PR #352), built with add/remove/update/commit only: the root
    # P = 15 lists leaf 7 as unmerged; its copath child S = 7 is blank, and below S the parent
    # N = 11 also lists leaf 7. The original sibling tree hash of S must blank leaf 7 *and*
    # drop it from N's list, although S itself is blank; the valid tree must be accepted.
    group = get_tree(16)
    group.remove(7)
    group.commit(4)  # sets 9, 11, 7 and 15 while leaf 7 is blank
    group.update(1)  # blanks 1, 3, 7 and 15
    group.commit(12)  # resets the root (15) from the right half; node 7 stays blank
    assert group.add() == 7  # unmerged at the non-blank 11 and 15; 7 is blank
    tree = group.tree
    p, s, d = NodeIndex(15), NodeIndex(7), NodeIndex(23)
    root, n, d_node = tree.parent_node(p), tree.parent_node(NodeIndex(11)), tree.parent_node(d)
    assert root is not None and n is not None and d_node is not None
    assert tree.is_blank(s) and root.unmerged_leaves == (7,) and n.unmerged_leaves == (7,)
    # The link D -> P holds only with the recomputed sibling hash: hashing S as it stands
    # (what the buggy short-cut did) gives another parent hash.
    assert parent_hash_valid_children(tree, p) == [d]
    assert tree.original_tree_hash(s, root.unmerged_leaves) != tree.tree_hash(s)
    shortcut = ParentHashInput(root.encryption_key, root.parent_hash, tree.tree_hash(s))
    assert group.suite.hash(shortcut.encode()) != d_node.parent_hash
    validate(group)
    group.check_private_views()


def test_tree04_unmerged_leaf_in_sibling_subtree_is_accepted() -> None:
    # A parent whose unmerged leaf lies under the copath child: the original sibling tree
    # hash is the tree hash with that leaf blanked (RFC 9420 §7.9).
    group = get_tree(7)
    group.add()  # leaf 7, unmerged at node 11 and the root
    group.commit(0)  # resets the root and node 3 only; node 11 keeps [7]
    parent11 = group.tree.parent_node(NodeIndex(11))
    assert parent11 is not None and parent11.unmerged_leaves == (7,)
    validate(group)


# ============================================================================================
# TREE-01: shape of the ratchet_tree vector (RFC 9420 §12.4.3.3)


def nodes_of(group: TreeGroup) -> list[Node | None]:
    return list(group.tree.to_nodes())


def test_tree01_trailing_blank_is_rejected() -> None:
    group = get_tree(3)
    nodes = nodes_of(group) + [None, None]
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, nodes)
    assert info.value.rule == RULE_TRAILING_BLANK
    with pytest.raises(ValidationError) as info:
        RatchetTree.decode(group.suite, encode_ratchet_tree(tuple(nodes)))
    assert info.value.rule == RULE_TRAILING_BLANK


def test_tree01_empty_tree_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(get_tree(1).suite, [])
    assert info.value.rule == RULE_EMPTY


def test_tree01_even_node_count_is_rejected() -> None:
    group = get_tree(2)
    nodes = nodes_of(group)
    assert len(nodes) == 3
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, [*nodes, nodes[1]])
    assert info.value.rule == RULE_NODE_COUNT


def test_tree01_leaf_at_odd_index_is_rejected() -> None:
    group = get_tree(2)
    nodes = nodes_of(group)
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, [nodes[0], nodes[2], nodes[2]])
    assert info.value.rule == RULE_NODE_TYPE


def test_tree01_parent_at_even_index_is_rejected() -> None:
    group = get_tree(2)
    nodes = nodes_of(group)
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, [nodes[1], nodes[1], nodes[2]])
    assert info.value.rule == RULE_NODE_TYPE


@pytest.mark.parametrize("leaf", [4, 2**31, 2**32 - 1])
def test_tree01_unmerged_leaf_index_out_of_range_is_rejected(leaf: int) -> None:
    group = get_tree(3)
    group.add()  # leaf 3, unmerged at the root
    with_parent(group.tree, 3, unmerged_leaves=(3, leaf))
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, nodes_of(group))
    assert info.value.rule == RULE_LEAF_INDEX
    expect_rule(RULE_LEAF_INDEX, group)


# ============================================================================================
# TREE-02: tree hash (RFC 9420 §12.4.3.1)


def test_tree02_tree_hash_mismatch_is_rejected() -> None:
    group = get_tree(4)
    context = dataclasses.replace(group.context(), tree_hash=b"\x00" * 32)
    expect_rule(RULE_TREE_HASH, group, kind=VerificationError, context=context)


def test_tree02_tree_hash_of_other_tree_is_rejected() -> None:
    group = get_tree(4)
    context = group.context()
    group.add()
    expect_rule(RULE_TREE_HASH, group, kind=VerificationError, context=context)


# ============================================================================================
# TREE-03: every non-blank parent is parent-hash valid (RFC 9420 §7.9.2)


def test_tree03_each_parent_has_exactly_one_valid_child_link() -> None:
    group = get_tree(9)
    for p, _ in group.tree.parents():
        assert len(parent_hash_valid_children(group.tree, p)) == 1


def test_tree03_parent_with_replaced_key_is_rejected() -> None:
    group = get_tree(8)
    with_parent(group.tree, 11, encryption_key=fresh_public_key(group.suite, b"x"))
    expect_rule(RULE_PARENT_HASH, group, kind=VerificationError)


def test_tree03_deep_uncovered_parent_is_rejected() -> None:
    # mls-rs PR #315: every parent but one low one is fine, and that one is checked last.
    # Leaf 6 (the last committer) re-signs a wrong parent hash: only its link to node 13
    # breaks; node 13's own link to 11, 11's to the root, and the left half stay valid.
    group = get_tree(8)
    replace_leaf(group, 6, parent_hash=b"\x01" * 32)
    for p, _ in group.tree.parents():
        expected = 0 if p == 13 else 1
        assert len(parent_hash_valid_children(group.tree, p)) == expected, p
    assert max(p for p, _ in group.tree.parents()) == 13
    expect_rule(RULE_PARENT_HASH, group, kind=VerificationError)


def test_tree03_leaf_with_wrong_parent_hash_is_rejected() -> None:
    # The leaf that last committed signs a different parent hash (re-signed, so the leaf
    # signature itself is valid): its parents lose their only chain.
    group = get_tree(4)
    replace_leaf(group, 2, parent_hash=b"\x02" * 32)
    expect_rule(RULE_PARENT_HASH, group, kind=VerificationError)


def test_tree03_unmerged_leaf_set_inconsistent_with_resolution_is_rejected() -> None:
    # Only the third condition of §7.9.2 breaks: the root forgets leaf 7, which node 11 (the
    # root's child C on the chain, D = 11) still lists, so resolution(C) minus D = [leaf 7]
    # differs from the root's unmerged leaves under C = []. Leaf 7 is not under the root's
    # copath child S = 3, so the parent hash itself (condition 2) still matches.
    group = get_tree(7)
    group.add()  # leaf 7, unmerged at node 11 and at the root 7
    with_parent(group.tree, 7, unmerged_leaves=())
    tree = group.tree
    validate_unmerged_leaves(tree)  # TREE-06..08 still hold
    d = tree.parent_node(NodeIndex(11))
    assert d is not None and d.parent_hash == tree.parent_hash_of(NodeIndex(7), NodeIndex(3))
    assert parent_hash_valid_children(tree, NodeIndex(7)) == []
    assert all(len(parent_hash_valid_children(tree, p)) == 1 for p, _ in tree.parents() if p != 7)
    expect_rule(RULE_PARENT_HASH, group, kind=VerificationError)


# ============================================================================================
# TREE-06..08: unmerged leaves (RFC 9420 §7.1, §12.4.3.1)


def test_tree06_unmerged_blank_leaf_is_rejected() -> None:
    group = get_tree(6)  # leaves 6 and 7 blank
    root = group.tree.parent_node(NodeIndex(7))
    assert root is not None
    with_parent(group.tree, 7, unmerged_leaves=(*root.unmerged_leaves, 6))
    assert group.tree.leaf_node(LeafIndex(6)) is None
    expect_rule(RULE_UNMERGED_LEAF, group)


def test_tree06_unmerged_leaf_outside_subtree_is_rejected() -> None:
    group = get_tree(8)
    with_parent(group.tree, 1, unmerged_leaves=(5,))
    expect_rule(RULE_UNMERGED_LEAF, group)


def test_tree07_unmerged_leaf_missing_at_intermediate_node_is_rejected() -> None:
    group = get_tree(7)
    newcomer = group.add()  # leaf 7: unmerged at node 11 and at the root
    assert newcomer == 7
    with_parent(group.tree, 11, unmerged_leaves=())
    # Node 11's parent hash (its original sibling tree hash now keeps leaf 7) breaks too; no
    # honest history yields this tree with valid parent hashes, so the unmerged-leaves check
    # is the one asserted directly as well as first in the joiner's order.
    with pytest.raises(ValidationError) as info:
        validate_unmerged_leaves(group.tree)
    assert info.value.rule == RULE_UNMERGED_INTERMEDIATE
    expect_rule(RULE_UNMERGED_INTERMEDIATE, group)


@pytest.mark.parametrize("order", [(7, 6), (6, 6)])
def test_tree08_unsorted_unmerged_leaves_are_rejected(order: tuple[int, int]) -> None:
    group = get_tree(6)
    group.add()
    group.add()  # leaves 6 and 7, unmerged at the root
    with_parent(group.tree, 7, unmerged_leaves=order)
    with pytest.raises(ValidationError) as info:
        RatchetTree.from_nodes(group.suite, nodes_of(group))
    assert info.value.rule == RULE_UNMERGED_SORTED
    expect_rule(RULE_UNMERGED_SORTED, group)


# ============================================================================================
# TREE-09, TREE-10: key uniqueness (RFC 9420 §7.3, §12.4.3.1, §16.7)


def test_tree09_duplicate_signature_key_is_rejected() -> None:
    group = get_tree(4)
    twin = group.new_identity()
    twin.signature_priv = group.members[1].ident.signature_priv
    twin.signature_pub = group.members[1].ident.signature_pub
    group.add(ident=twin)
    group.commit(0)
    expect_rule(RULE_UNIQUE_SIGNATURE_KEY, group)


def test_tree09_duplicate_encryption_key_is_rejected() -> None:
    group = get_tree(4)
    twin = group.new_identity()
    twin.encryption_priv = group.members[2].private.encryption_priv
    twin.encryption_pub = group.tree.leaf_node(LeafIndex(2)).encryption_key  # type: ignore[union-attr]
    group.add(ident=twin)
    expect_rule(RULE_UNIQUE_ENCRYPTION_KEY, group)


@pytest.mark.parametrize("source", ["leaf", "parent"])
def test_tree10_parent_key_reused_is_rejected(source: str) -> None:
    group = get_tree(8)
    if source == "leaf":
        reused = group.tree.leaf_node(LeafIndex(0)).encryption_key  # type: ignore[union-attr]
    else:
        reused = group.tree.parent_node(NodeIndex(3)).encryption_key  # type: ignore[union-attr]
    with_parent(group.tree, 11, encryption_key=reused)
    expect_rule(RULE_UNIQUE_PARENT_KEY, group)


# ============================================================================================
# TREE-11: the same validator for a tree from the extension or from out of band


def test_tree11_extension_and_out_of_band_trees_validate_the_same() -> None:
    group = get_tree(5)
    from_extension = RatchetTree.decode(group.suite, group.tree.extension().extension_data)
    out_of_band = RatchetTree.decode(group.suite, group.tree.encode())
    assert from_extension == out_of_band == group.tree
    validate(group, from_extension)
    validate(group, out_of_band)


# ============================================================================================
# TREE-05 / LN-01..LN-11: every leaf of a received tree is valid (RFC 9420 §7.3)


def test_ln01_credential_rejected_by_the_as_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    name = group.members[newcomer].ident.name

    def validator(credential: Credential, signature_key: bytes) -> bool:
        return credential.identity != name

    expect_rule(RULE_CREDENTIAL, group, credential_validator=validator)

    def raising(credential: Credential, signature_key: bytes) -> bool:
        raise ValidationError("as/revoked")

    expect_rule(RULE_CREDENTIAL, group, credential_validator=raising)


def test_ln02_bad_leaf_signature_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    leaf = group.tree.leaf_node(LeafIndex(newcomer))
    assert leaf is not None
    broken = bytes([leaf.signature[0] ^ 1]) + leaf.signature[1:]
    group.tree.set_leaf(LeafIndex(newcomer), dataclasses.replace(leaf, signature=broken))
    expect_rule(RULE_LEAF_SIGNATURE, group, kind=VerificationError)


@pytest.mark.parametrize("wrong", ["group_id", "leaf_index"])
def test_ln02_update_leaf_signed_for_other_context_is_rejected(wrong: str) -> None:
    group = get_tree(5)
    group.update(3)  # leaf 3 now has source update; its direct path is blank
    validate(group)
    leaf = group.tree.leaf_node(LeafIndex(3))
    assert leaf is not None
    signer = group.members[3].ident.signature_priv
    if wrong == "group_id":
        forged = leaf.signed(group.suite, signer, group_id=b"other group", leaf_index=3)
    else:
        forged = leaf.signed(group.suite, signer, group_id=GROUP_ID, leaf_index=4)
    group.tree.set_leaf(LeafIndex(3), forged)
    expect_rule(RULE_LEAF_SIGNATURE, group, kind=VerificationError)


def required_context(group: TreeGroup, required: RequiredCapabilities) -> GroupContext:
    ext = make_extension(ExtensionType.REQUIRED_CAPABILITIES, required)
    return dataclasses.replace(group.context(), extensions=(ext,))


def test_ln03_missing_required_capability_is_rejected() -> None:
    caps = capabilities(extensions=(0x0A0A,))
    group, newcomer = group_with_unmerged_newcomer(caps=caps)
    required = RequiredCapabilities(
        extension_types=(0x0A0A,), proposal_types=(), credential_types=()
    )
    validate_ratchet_tree(group.tree, required_context(group, required), lifetime_policy=POLICY)
    replace_leaf(group, newcomer, capabilities=capabilities())
    expect_rule(RULE_REQUIRED_CAPABILITIES, group, context=required_context(group, required))


def test_ln04_credential_type_unsupported_by_members_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(
        group,
        newcomer,
        credential=Credential.x509((b"not checked here",)),
        capabilities=capabilities(credentials=(CredentialType.BASIC, CredentialType.X509)),
    )
    expect_rule(RULE_CREDENTIAL_SUPPORT, group)


def test_ln04_leaf_not_supporting_credential_in_use_is_rejected() -> None:
    both = capabilities(credentials=(CredentialType.BASIC, CredentialType.X509))
    group, newcomer = group_with_unmerged_newcomer(caps=both)
    replace_leaf(
        group,
        newcomer,
        credential=Credential.x509((b"not checked here",)),
        capabilities=capabilities(credentials=(CredentialType.X509,)),
    )
    expect_rule(RULE_CREDENTIAL_SUPPORT, group)


def test_ln05_own_credential_type_missing_from_capabilities_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, capabilities=capabilities(credentials=(CredentialType.X509,)))
    expect_rule("§7.2/credential-in-capabilities", group)


def test_ln06_extension_not_in_capabilities_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, extensions=(Extension(0x0B0B, b"x"),))
    expect_rule("§7.2/extension-in-capabilities", group)
    replace_leaf(
        group,
        newcomer,
        extensions=(Extension(0x0B0B, b"x"),),
        capabilities=capabilities(extensions=(0x0B0B,)),
    )
    validate(group)


def test_ln07_expired_leaf_is_rejected_by_default_policy() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, lifetime=Lifetime(NOW - 7200, NOW - 3600))
    expect_rule("§7.3/lifetime", group)
    validate(group, lifetime_policy=LifetimePolicy(check_current_time=False))


def test_ln07_not_yet_valid_leaf_is_rejected_by_default_policy() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, lifetime=Lifetime(NOW + 60, NOW + 3600))
    expect_rule("§7.3/lifetime", group)


def test_ln07_lifetime_span_over_maximum_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, lifetime=Lifetime(0, 2**64 - 1))
    expect_rule(RULE_MAX_LIFETIME, group)
    expect_rule(
        RULE_MAX_LIFETIME,
        group,
        lifetime_policy=LifetimePolicy(max_lifetime=3600, clock=lambda: NOW),
    )
    validate(group, lifetime_policy=LifetimePolicy(max_lifetime=None, clock=lambda: NOW))


def test_ln07_clock_is_injected() -> None:
    group, _ = group_with_unmerged_newcomer()
    validate(group, lifetime_policy=LifetimePolicy(clock=lambda: NOW))
    expect_rule("§7.3/lifetime", group, lifetime_policy=LifetimePolicy(clock=lambda: NOW + 10**9))
    validate(group, lifetime_policy=LifetimePolicy.disabled())


def test_ln07_official_vector_leaves_have_expired() -> None:
    # The trap of shared/mls-test-vectors/README.md: with the receive-side lifetime check on
    # (real clock), some tree-validation.json trees fail; the vector runs switch it off.
    cases = json.loads((VECTORS / "tree-validation.json").read_text())
    from mls.crypto.ciphersuite import get_suite
    from mls.group_context import ProtocolVersion

    rejected = 0
    for case in cases:
        suite = get_suite(case["cipher_suite"])
        tree = RatchetTree.decode(suite, bytes.fromhex(case["tree"]))
        context = GroupContext(
            ProtocolVersion.MLS10,
            case["cipher_suite"],
            bytes.fromhex(case["group_id"]),
            0,
            tree.tree_hash(),
            b"",
            (),
        )
        validate_ratchet_tree(tree, context, lifetime_policy=LifetimePolicy.disabled())
        try:
            validate_ratchet_tree(tree, context, lifetime_policy=LifetimePolicy(max_lifetime=None))
        except ValidationError as exc:
            assert exc.rule == "§7.3/lifetime"
            rejected += 1
    assert rejected > 0


def test_ln11_forbidden_extension_type_in_leaf_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, extensions=(Extension(ExtensionType.EXTERNAL_SENDERS, b""),))
    expect_rule("§17.3/leaf-extension-type", group)  # raised by check_own_capabilities


def test_ln11_application_id_in_leaf_is_accepted() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    app_id = make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"app"))
    replace_leaf(group, newcomer, extensions=(app_id,))
    validate(group)


def test_ln11_duplicate_extension_type_in_leaf_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    app_id = make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"app"))
    replace_leaf(group, newcomer, extensions=(app_id, app_id))
    expect_rule("§13.4/duplicate-extension", group)


# ============================================================================================
# validate_leaf_node: the context-dependent leaf rules (LN-08, LN-09, LN-10)


def check_leaf(group: TreeGroup, leaf: LeafNode, index: int, **kwargs: object) -> None:
    """validate_leaf_node for ``leaf`` at ``index`` of the group's tree and context."""
    validate_leaf_node(
        group.suite,
        leaf,
        tree=group.tree,
        leaf_index=LeafIndex(index),
        group_context=group.context(),
        lifetime_policy=POLICY,
        **kwargs,  # type: ignore[arg-type]
    )


def test_ln08_leaf_source_wrong_for_context_is_rejected() -> None:
    group = get_tree(3)
    leaf = key_package_leaf(group.suite, group.new_identity())
    with pytest.raises(ValidationError) as info:
        check_leaf(group, leaf, 3, expected_source=LeafNodeSource.UPDATE)
    assert info.value.rule == RULE_LEAF_SOURCE
    check_leaf(group, leaf, 3, expected_source=LeafNodeSource.KEY_PACKAGE)


def test_ln09_update_reusing_encryption_key_is_rejected() -> None:
    group = get_tree(3)
    old = group.tree.leaf_node(LeafIndex(1))
    assert old is not None
    same_key = resign(
        group.suite,
        old,
        group.members[1].ident.signature_priv,
        1,
        leaf_node_source=LeafNodeSource.UPDATE,
        parent_hash=None,
        lifetime=None,
    )
    with pytest.raises(ValidationError) as info:
        check_leaf(group, same_key, 1, expected_source=LeafNodeSource.UPDATE, replacing=old)
    assert info.value.rule == RULE_UPDATE_KEY


@pytest.mark.parametrize("key", ["signature", "encryption"])
def test_ln10_key_of_other_member_is_rejected(key: str) -> None:
    group = get_tree(3)
    ident = group.new_identity()
    other = group.members[2]
    if key == "signature":
        ident.signature_priv, ident.signature_pub = (
            other.ident.signature_priv,
            other.ident.signature_pub,
        )
        rule = RULE_UNIQUE_SIGNATURE_KEY
    else:
        ident.encryption_pub = group.tree.leaf_node(LeafIndex(2)).encryption_key  # type: ignore[union-attr]
        rule = RULE_UNIQUE_ENCRYPTION_KEY
    leaf = key_package_leaf(group.suite, ident)
    with pytest.raises(ValidationError) as info:
        check_leaf(group, leaf, 3)
    assert info.value.rule == rule


def test_validate_leaf_node_accepts_a_fresh_member() -> None:
    group = get_tree(3)
    leaf = key_package_leaf(group.suite, group.new_identity())
    check_leaf(group, leaf, 3, expected_source=LeafNodeSource.KEY_PACKAGE)


def test_direct_path_helper_matches_unmerged_placement() -> None:
    group = get_tree(5)
    newcomer = group.add()
    for p in direct_path(node_of(LeafIndex(newcomer)), group.tree.n_leaves):
        parent = group.tree.parent_node(p)
        if parent is not None:
            assert newcomer in parent.unmerged_leaves


def test_leaf_key_with_invalid_encoding_is_rejected() -> None:
    group, newcomer = group_with_unmerged_newcomer()
    replace_leaf(group, newcomer, encryption_key=b"\x01" * 31)
    expect_rule(PUBLIC_KEY_RULE, group)


def test_parent_key_with_invalid_encoding_is_rejected() -> None:
    group = get_tree(4)
    with_parent(group.tree, 5, encryption_key=b"\x01" * 31)
    expect_rule(PUBLIC_KEY_RULE, group)


def test_tree_and_context_of_different_suites_is_misuse() -> None:
    group = get_tree(2)
    context = dataclasses.replace(group.context(), cipher_suite=2)
    with pytest.raises(UsageError):
        validate_ratchet_tree(group.tree, context, lifetime_policy=POLICY)
