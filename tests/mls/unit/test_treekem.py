"""TreeKEM: creating and processing UpdatePaths (RFC 9420 §7.4-7.6, §12.4.2), with one negative
test per path rule (VALIDATION COM-05, COM-06, COM-08, LN-02, LN-08, LN-09, TREE-10, WEL-12).

Forged paths are re-signed with the committer's key and carry the parent hash their (forged)
keys imply, so only the rule under test can fire.
"""

from __future__ import annotations

import dataclasses

import pytest

from mls.crypto.hpke import HPKE_OPEN_RULE
from mls.crypto.primitives import PUBLIC_KEY_RULE
from mls.errors import DecryptionError, UsageError, ValidationError, VerificationError
from mls.leaf_node import LeafNodeSource
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, NodeIndex
from mls.tree_validation import RULE_LEAF_SIGNATURE, RULE_LEAF_SOURCE, validate_parent_hashes
from mls.treekem import (
    RULE_CIPHERTEXT_COUNT,
    RULE_DERIVED_PUBLIC_KEY,
    RULE_LEAF_PARENT_HASH,
    RULE_NEW_ENCRYPTION_KEY,
    RULE_PATH_KEY_UNIQUE,
    RULE_PATH_LENGTH,
    RULE_PATH_SECRET_LENGTH,
    RULE_PRIVATE_KEY_MISMATCH,
    RULE_SENDER,
    HPKECiphertext,
    TreeKEMPrivateKey,
    UpdatePath,
    UpdatePathNode,
    create_update_path,
    encrypt_path_secrets,
    merge_update_path,
    next_path_secret,
    node_key_pair,
    process_update_path,
)

from .._tree_helpers import GROUP_ID, TreeGroup, fresh_public_key, get_tree

COMMITTER = 2
RECEIVER = 5


def staged(group: TreeGroup) -> tuple[RatchetTree, UpdatePath]:
    """The tree before the commit and a valid path from leaf COMMITTER (not yet merged)."""
    before = group.tree.copy()
    work = group.tree.copy()
    created = create_update_path(
        work,
        LeafIndex(COMMITTER),
        group.context(before),
        group.members[COMMITTER].ident.signature_priv,
        random=group.rand,
    )
    return before, created.update_path


def forge(
    group: TreeGroup,
    before: RatchetTree,
    path: UpdatePath,
    nodes: list[UpdatePathNode],
    **leaf_changes: object,
) -> UpdatePath:
    """``path`` with ``nodes`` and a re-signed leaf carrying the matching parent hash."""
    sender = LeafIndex(COMMITTER)
    fdp = before.filtered_direct_path(sender)
    if len(nodes) == len(fdp):
        _, parent_hash = before.path_parent_hashes(fdp, [n.encryption_key for n in nodes])
    else:
        parent_hash = path.leaf_node.parent_hash or b""
    changes: dict[str, object] = {"parent_hash": parent_hash}
    changes.update(leaf_changes)
    leaf = dataclasses.replace(path.leaf_node, **changes).signed(  # type: ignore[arg-type]
        group.suite,
        group.members[COMMITTER].ident.signature_priv,
        group_id=GROUP_ID,
        leaf_index=COMMITTER,
    )
    return UpdatePath(leaf, tuple(nodes))


def reencrypted(
    group: TreeGroup,
    before: RatchetTree,
    secrets: list[bytes],
    keys: list[bytes],
    excluded: tuple[int, ...] = (),
    committer: int = COMMITTER,
) -> UpdatePath:
    """A path from ``committer`` carrying ``secrets`` under (possibly unrelated) node ``keys``,
    consistently merged, signed and encrypted under the context of the tree it produces
    (to the copath resolutions minus ``excluded``)."""
    sender = LeafIndex(committer)
    tree = before.copy()
    fdp, parent_hash = tree.set_path(sender, keys)
    template = before.leaf_node(sender)
    assert template is not None
    leaf = dataclasses.replace(
        template,
        encryption_key=fresh_public_key(group.suite, b"leaf"),
        leaf_node_source=LeafNodeSource.COMMIT,
        lifetime=None,
        parent_hash=parent_hash,
    ).signed(
        group.suite,
        group.members[committer].ident.signature_priv,
        group_id=GROUP_ID,
        leaf_index=committer,
    )
    tree.set_leaf(sender, leaf)
    nodes = encrypt_path_secrets(tree, fdp, keys, secrets, group.context(tree), excluded)
    return UpdatePath(leaf, nodes)


def process(
    group: TreeGroup, tree: RatchetTree, path: UpdatePath, receiver: int = RECEIVER
) -> bytes:
    done = process_update_path(
        tree, LeafIndex(COMMITTER), path, group.context(tree), group.members[receiver].private
    )
    return done.commit_secret


def expect_rejected(
    group: TreeGroup,
    before: RatchetTree,
    path: UpdatePath,
    rule: str,
    kind: type[Exception] = ValidationError,
) -> None:
    tree = before.copy()
    with pytest.raises(kind) as info:
        process(group, tree, path)
    if isinstance(info.value, ValidationError):
        assert info.value.rule == rule
    # A rejected path leaves the tree exactly as it was (ST-01 at the tree level).
    assert tree == before
    assert tree.encode() == before.encode()
    assert tree.tree_hash() == before.tree_hash() == before.tree_hash_uncached()


@pytest.fixture(scope="module")
def group() -> TreeGroup:
    return get_tree(8)


# ============================================================================================
# Round trips


@pytest.mark.parametrize("suite_id", [1, 2, 3, 4, 5, 6, 7])
def test_every_member_derives_the_commit_secret(suite_id: int) -> None:
    group = get_tree(4, suite_id=suite_id)
    group.add()
    group.remove(1)
    created = group.commit(3)  # every other member processes it inside commit()
    assert len(created.commit_secret) == group.suite.hash_length
    group.check_private_views()
    validate_parent_hashes(group.tree)


def test_path_secrets_follow_the_filtered_direct_path(group: TreeGroup) -> None:
    before, path = staged(group)
    fdp = before.filtered_direct_path(LeafIndex(COMMITTER))
    assert len(path.nodes) == len(fdp)
    for node, (_, s) in zip(path.nodes, fdp, strict=True):
        assert len(node.encrypted_path_secret) == len(before.resolution(s))
    assert path.leaf_node.leaf_node_source == LeafNodeSource.COMMIT


def test_processing_decrypts_at_the_common_ancestor(group: TreeGroup) -> None:
    before, path = staged(group)
    tree = before.copy()
    done = process_update_path(
        tree, LeafIndex(COMMITTER), path, group.context(before), group.members[RECEIVER].private
    )
    assert done.decrypted_node == NodeIndex(7)  # the root: leaves 2 and 5 meet there
    assert done.group_context.tree_hash == tree.tree_hash()
    done.private_key.check_against(tree)


def test_single_member_commit_has_empty_path() -> None:
    group = TreeGroup()
    created = group.commit(0)
    assert created.update_path.nodes == ()
    assert len(created.commit_secret) == group.suite.hash_length


def test_added_members_get_no_ciphertext_and_join_with_the_path_secret() -> None:
    group = get_tree(3)
    new = group.add()
    before = group.tree.copy()
    created = group.commit(0)  # processes at 1 and 2, joins 3 via for_joiner
    group.check_private_views()
    for node, (_, s) in zip(
        created.update_path.nodes, before.filtered_direct_path(LeafIndex(0)), strict=True
    ):
        assert len(node.encrypted_path_secret) == len(before.resolution(s, (new,)))
    # The added member cannot process the path: it joins from the Welcome.
    with pytest.raises(UsageError):
        process_update_path(
            before.copy(),
            LeafIndex(0),
            created.update_path,
            group.context(before),
            group.members[new].private,
            excluded=(new,),
        )


def join(group: TreeGroup, new: int, committer: int, path_secret: bytes) -> TreeKEMPrivateKey:
    """The private view of member ``new`` joining with ``path_secret`` from ``committer``."""
    return TreeKEMPrivateKey.for_joiner(
        group.tree,
        LeafIndex(new),
        group.members[new].private.encryption_priv,
        LeafIndex(committer),
        path_secret,
    )


def test_wel12_joiner_path_secret_not_matching_tree_is_rejected() -> None:
    group = get_tree(3)
    new = group.add()
    created = group.commit(0, process=False)
    secret = created.path_secret_for(LeafIndex(new))
    assert secret is not None
    with pytest.raises(VerificationError) as info:
        join(group, new, 0, bytes(len(secret)))
    assert info.value.rule == RULE_DERIVED_PUBLIC_KEY


def test_secrets_are_not_in_reprs(group: TreeGroup) -> None:
    before, _ = staged(group)
    created = create_update_path(
        before.copy(),
        LeafIndex(COMMITTER),
        group.context(before),
        group.members[COMMITTER].ident.signature_priv,
        random=group.rand,
    )
    done = process_update_path(
        before.copy(),
        LeafIndex(COMMITTER),
        created.update_path,
        group.context(before),
        group.members[RECEIVER].private,
    )
    text = repr(created) + repr(created.private_key) + repr(done)
    secrets = [
        created.commit_secret,
        created.private_key.encryption_priv,
        done.path_secret,
        *created.path_secrets.values(),
        *done.private_key.path_secrets.values(),
    ]
    for secret in secrets:
        assert secret.hex() not in text and repr(secret) not in text
    assert "commit_secret" not in text


# ============================================================================================
# Rejections


def test_com05_path_node_count_mismatch_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    forged = forge(group, before, path, list(path.nodes[:-1]))
    expect_rejected(group, before, forged, RULE_PATH_LENGTH)


def test_com06_ciphertext_count_mismatch_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    nodes = list(path.nodes)
    nodes[0] = UpdatePathNode(nodes[0].encryption_key, nodes[0].encrypted_path_secret * 2)
    expect_rejected(group, before, forge(group, before, path, nodes), RULE_CIPHERTEXT_COUNT)


def test_com08_public_key_not_derived_from_path_secret_is_rejected(group: TreeGroup) -> None:
    before = group.tree.copy()
    sender = LeafIndex(COMMITTER)
    secrets = [
        bytes([i + 1]) * group.suite.hash_length
        for i in range(len(before.filtered_direct_path(sender)))
    ]
    keys = [node_key_pair(group.suite, secret)[1] for secret in secrets]
    # Control: honest keys for these secrets are accepted.
    process(group, before.copy(), reencrypted(group, before, secrets, keys))
    # The root (where leaf 5 decrypts) gets a key unrelated to its path secret; the leaf
    # signs the parent hash of the forged keys and the secrets are encrypted under the
    # forged tree's context, so the path merges and decrypts cleanly.
    keys[-1] = fresh_public_key(group.suite, b"forged")
    forged = reencrypted(group, before, secrets, keys)
    merge_update_path(before.copy(), sender, forged, GROUP_ID)
    expect_rejected(group, before, forged, RULE_DERIVED_PUBLIC_KEY, VerificationError)


def test_leaf_parent_hash_mismatch_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    forged = forge(group, before, path, list(path.nodes), parent_hash=b"\x00" * 32)
    expect_rejected(group, before, forged, RULE_LEAF_PARENT_HASH, VerificationError)


def test_ln08_path_leaf_with_update_source_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    leaf = dataclasses.replace(
        path.leaf_node, leaf_node_source=LeafNodeSource.UPDATE, parent_hash=None
    ).signed(
        group.suite,
        group.members[COMMITTER].ident.signature_priv,
        group_id=GROUP_ID,
        leaf_index=COMMITTER,
    )
    forged = dataclasses.replace(path, leaf_node=leaf)
    expect_rejected(group, before, forged, RULE_LEAF_SOURCE)


def test_ln09_path_leaf_reusing_encryption_key_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    old = before.leaf_node(LeafIndex(COMMITTER))
    assert old is not None
    forged = forge(group, before, path, list(path.nodes), encryption_key=old.encryption_key)
    expect_rejected(group, before, forged, RULE_NEW_ENCRYPTION_KEY)


def test_ln02_path_leaf_signed_for_other_group_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    leaf = path.leaf_node.signed(
        group.suite,
        group.members[COMMITTER].ident.signature_priv,
        group_id=b"another group",
        leaf_index=COMMITTER,
    )
    expect_rejected(
        group,
        before,
        dataclasses.replace(path, leaf_node=leaf),
        RULE_LEAF_SIGNATURE,
        VerificationError,
    )


def test_tree10_path_key_already_in_tree_is_rejected(group: TreeGroup) -> None:
    before, path = staged(group)
    nodes = list(path.nodes)
    reused = before.leaf_node(LeafIndex(7))
    assert reused is not None
    nodes[0] = UpdatePathNode(reused.encryption_key, nodes[0].encrypted_path_secret)
    expect_rejected(group, before, forge(group, before, path, nodes), RULE_PATH_KEY_UNIQUE)


def test_corrupt_ciphertext_is_a_decryption_error(group: TreeGroup) -> None:
    before, path = staged(group)
    nodes = list(path.nodes)
    ct = nodes[-1].encrypted_path_secret[0]
    bad = HPKECiphertext(ct.kem_output, bytes([ct.ciphertext[0] ^ 1]) + ct.ciphertext[1:])
    nodes[-1] = UpdatePathNode(
        nodes[-1].encryption_key, (bad, *nodes[-1].encrypted_path_secret[1:])
    )
    expect_rejected(
        group, before, forge(group, before, path, nodes), HPKE_OPEN_RULE, DecryptionError
    )


@pytest.mark.parametrize("sender", [3, 8, 2**32 - 1])
def test_path_from_blank_or_out_of_range_sender_is_rejected(sender: int) -> None:
    group = get_tree(4)
    group.remove(3)
    group.add()
    group.remove(3)  # leaf 3 blank again, tree of 4 leaves
    before, path = staged(group)
    with pytest.raises(ValidationError) as info:
        merge_update_path(before.copy(), LeafIndex(sender), path, GROUP_ID)
    assert info.value.rule == RULE_SENDER


def test_committer_does_not_process_its_own_path(group: TreeGroup) -> None:
    before, path = staged(group)
    with pytest.raises(UsageError):
        process(group, before.copy(), path, receiver=COMMITTER)


def test_failed_creation_leaves_the_tree_unchanged(group: TreeGroup) -> None:
    tree = group.tree.copy()
    encoded = tree.encode()
    with pytest.raises(UsageError):
        create_update_path(tree, LeafIndex(COMMITTER), group.context(tree), b"not a key")
    assert tree.encode() == encoded
    assert tree.tree_hash() == tree.tree_hash_uncached() == group.tree.tree_hash()


# ============================================================================================
# Hostile input never reaches tree math or HKDF unchecked; keys are checked on receipt


@pytest.mark.parametrize("sender", [8, 2**31, 2**32 - 1])
def test_processing_path_from_out_of_range_sender_is_rejected(
    group: TreeGroup, sender: int
) -> None:
    # VALIDATION TREE-01: the index is checked before the tree is touched (no TreeMathError).
    before, path = staged(group)
    tree = before.copy()
    with pytest.raises(ValidationError) as info:
        process_update_path(
            tree, LeafIndex(sender), path, group.context(before), group.members[RECEIVER].private
        )
    assert info.value.rule == RULE_SENDER
    assert tree == before


def honest_secrets(group: TreeGroup, before: RatchetTree, committer: int) -> list[bytes]:
    """A chain of path secrets for the filtered direct path of ``committer`` (RFC 9420 §7.4)."""
    secrets = [b"\x01" * group.suite.hash_length]
    for _ in before.filtered_direct_path(LeafIndex(committer))[1:]:
        secrets.append(next_path_secret(group.suite, secrets[-1]))
    return secrets


@pytest.mark.parametrize("delta", [-31, -1, 1])
def test_path_secret_of_wrong_length_is_rejected(group: TreeGroup, delta: int) -> None:
    # RFC 9420 §7.4: path secrets are KDF.Nh bytes. The root's secret (the one leaf 5
    # decrypts) is sealed with another length; its key is an unrelated valid key, so without
    # the length check a short secret would end in HKDF (UsageError) and a long one in COM-08.
    before = group.tree.copy()
    secrets = honest_secrets(group, before, COMMITTER)
    keys = [node_key_pair(group.suite, secret)[1] for secret in secrets]
    secrets[-1] = b"\x07" * (group.suite.hash_length + delta)
    keys[-1] = fresh_public_key(group.suite, b"odd length")
    forged = reencrypted(group, before, secrets, keys)
    expect_rejected(group, before, forged, RULE_PATH_SECRET_LENGTH)


@pytest.mark.parametrize("where", ["leaf", "first node"])
def test_path_key_with_invalid_encoding_is_rejected(group: TreeGroup, where: str) -> None:
    # CRD-04: the first node (below the root, where leaf 5 decrypts) is never decrypted to by
    # leaf 5, so only the encoding check stops the key from entering its tree.
    before, path = staged(group)
    bad = b"\x01" * 31
    if where == "leaf":
        forged = forge(group, before, path, list(path.nodes), encryption_key=bad)
    else:
        nodes = list(path.nodes)
        nodes[0] = UpdatePathNode(bad, nodes[0].encrypted_path_secret)
        forged = forge(group, before, path, nodes)
    expect_rejected(group, before, forged, PUBLIC_KEY_RULE)


# ============================================================================================
# Leaves added by the same Commit (RFC 9420 §7.6, VALIDATION COM-06, ACC-04)


def test_com06_path_that_encrypts_to_an_added_leaf_is_rejected() -> None:
    group = get_tree(3)
    new = group.add()  # leaf 3, below the root's copath child of leaf 0
    before = group.tree.copy()
    secrets = honest_secrets(group, before, 0)
    keys = [node_key_pair(group.suite, secret)[1] for secret in secrets]

    def run(path: UpdatePath) -> bytes:
        tree = before.copy()
        done = process_update_path(
            tree, LeafIndex(0), path, group.context(tree), group.members[1].private, excluded=(new,)
        )
        return done.commit_secret

    # Control: the same secrets with the added leaf left out are accepted.
    run(reencrypted(group, before, secrets, keys, excluded=(new,), committer=0))
    with pytest.raises(ValidationError) as info:
        run(reencrypted(group, before, secrets, keys, committer=0))
    assert info.value.rule == RULE_CIPHERTEXT_COUNT


def test_acc04_node_whose_copath_holds_only_added_leaves_has_no_ciphertext() -> None:
    group = get_tree(2)
    new = group.add()  # leaf 2: the root's copath child (node 5) resolves to it alone
    assert new == 2
    created = group.commit(0)  # leaf 1 processes it, leaf 2 joins with the path secret
    assert [len(n.encrypted_path_secret) for n in created.update_path.nodes] == [1, 0]
    group.check_private_views()


# ============================================================================================
# Decrypting with the right key of the receiver's resolution (RFC 9420 §7.5)


def test_unmerged_receiver_decrypts_with_its_leaf_key() -> None:
    group = get_tree(7)
    group.add()  # leaf 7: unmerged at node 11 and the root
    group.commit(0)  # resets the root only on the right side; node 11 keeps [7]
    before = group.tree.copy()
    assert before.resolution(NodeIndex(11)) == [11, 14]
    created = create_update_path(
        group.tree.copy(),
        LeafIndex(1),
        group.context(before),
        group.members[1].ident.signature_priv,
        random=group.rand,
    )
    root_node = created.update_path.nodes[-1]
    assert len(root_node.encrypted_path_secret) == 2

    def corrupt(j: int) -> UpdatePath:
        cts = list(root_node.encrypted_path_secret)
        ct = cts[j]
        cts[j] = HPKECiphertext(ct.kem_output, bytes([ct.ciphertext[0] ^ 1]) + ct.ciphertext[1:])
        nodes = (
            *created.update_path.nodes[:-1],
            UpdatePathNode(root_node.encryption_key, tuple(cts)),
        )
        return UpdatePath(created.update_path.leaf_node, nodes)

    def run(receiver: int, path: UpdatePath) -> bytes:
        tree = before.copy()
        done = process_update_path(
            tree, LeafIndex(1), path, group.context(before), group.members[receiver].private
        )
        assert done.decrypted_node == NodeIndex(7)
        return done.commit_secret

    # Leaf 4 holds node 11's key (ciphertext 0); leaf 7 is unmerged there and uses its own
    # leaf key (ciphertext 1). Breaking one ciphertext stops exactly the member it is for.
    assert run(4, created.update_path) == run(7, created.update_path) == created.commit_secret
    assert run(7, corrupt(0)) == created.commit_secret
    with pytest.raises(DecryptionError):
        run(4, corrupt(0))
    assert run(4, corrupt(1)) == created.commit_secret
    with pytest.raises(DecryptionError):
        run(7, corrupt(1))


# ============================================================================================
# Joining with a path secret (RFC 9420 §12.4.3.1, WEL-12)


@pytest.mark.parametrize("committer", [0, 3, 4, 2**32 - 1])
def test_joiner_committer_not_another_member_is_rejected(committer: int) -> None:
    group = get_tree(3)
    new = group.add()  # leaf 3
    created = group.commit(0, process=False)
    secret = created.path_secret_for(LeafIndex(new))
    assert secret is not None
    if committer == 0:  # control
        join(group, new, 0, secret).check_against(group.tree)
        return
    with pytest.raises(ValidationError) as info:
        join(group, new, committer, secret)
    assert info.value.rule == RULE_SENDER


def test_joiner_path_secret_of_wrong_length_is_rejected() -> None:
    group = get_tree(3)
    new = group.add()
    created = group.commit(0, process=False)
    secret = created.path_secret_for(LeafIndex(new))
    assert secret is not None
    with pytest.raises(ValidationError) as info:
        join(group, new, 0, secret[:-1])
    assert info.value.rule == RULE_PATH_SECRET_LENGTH


def test_private_view_with_a_wrong_leaf_key_is_rejected(group: TreeGroup) -> None:
    view = group.members[RECEIVER].private
    view.check_against(group.tree)  # the honest view matches
    other_priv, _ = group.suite.hpke.generate_key_pair()
    wrong = dataclasses.replace(view, encryption_priv=other_priv)
    with pytest.raises(VerificationError) as info:
        wrong.check_against(group.tree)
    assert info.value.rule == RULE_PRIVATE_KEY_MISMATCH


def test_private_view_with_a_wrong_path_secret_is_rejected(group: TreeGroup) -> None:
    group.commit(RECEIVER)  # the receiver now knows the secrets of its direct path
    view = group.members[RECEIVER].private
    assert view.path_secrets
    view.check_against(group.tree)
    node = next(iter(view.path_secrets))
    secrets = dict(view.path_secrets)
    secrets[node] = bytes(group.suite.hash_length)
    wrong = dataclasses.replace(view, path_secrets=secrets)
    with pytest.raises(VerificationError) as info:
        wrong.check_against(group.tree)
    assert info.value.rule == RULE_PRIVATE_KEY_MISMATCH
