"""Random Add/Remove/Update/Commit sequences over a tree-level group (RFC 9420 §7, §12.1):
the cached tree hash always equals a from-scratch recomputation, every committed tree passes
joiner validation (a TREE-04 positive check), and every member agrees on each commit secret
and holds private keys that match the tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mls.errors import ValidationError
from mls.group_context import GroupContext
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, NodeIndex, copath, direct_path, node_of
from mls.tree_validation import LifetimePolicy, validate_ratchet_tree
from mls.treekem import UpdatePath, UpdatePathNode, process_update_path

from .._tree_helpers import NOW, TreeGroup

OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove", "update", "commit"]), st.integers(0, 10**6)),
    min_size=1,
    max_size=14,
)


def check_hashes(group: TreeGroup) -> None:
    tree = group.tree
    # From scratch: a new tree over the same wire nodes has an empty cache and rebuilds its
    # fill counts and key index, so none of the state the mutations maintain is reused.
    fresh = RatchetTree.from_nodes(tree.suite, tree.to_nodes())
    assert fresh.node_count == tree.node_count
    assert tree.tree_hash() == fresh.tree_hash() == tree.tree_hash_uncached()
    assert tree._filled == fresh._filled  # noqa: SLF001 - the fill counts themselves
    assert tree._keys == fresh._keys  # noqa: SLF001 - the key index itself
    # The filtered direct path (which relies on cached subtree fill counts) matches the RFC
    # definition: drop a parent whose copath child has an empty resolution.
    for leaf, _ in tree.leaves():
        brute = [
            p
            for p, s in zip(
                direct_path(node_of(leaf), tree.n_leaves),
                copath(node_of(leaf), tree.n_leaves),
                strict=True,
            )
            if tree.resolution(s)
        ]
        assert [p for p, _ in tree.filtered_direct_path(leaf)] == brute


def check_rejected_path_restores(
    before: RatchetTree,
    committer: int,
    path: UpdatePath,
    context: GroupContext,
    group: TreeGroup,
    receivers: list[int],
    pick: int,
    added: list[int],
) -> None:
    receiver = receivers[pick % len(receivers)]
    nodes = list(path.nodes)
    last = nodes[-1]
    # Swap the top node's key for another valid one: the leaf's parent hash no longer
    # matches (or, with a one-node path, the receiver derives another key): rejected.
    other = group.suite.hpke.derive_key_pair(group.rand(group.suite.hash_length))[1]
    nodes[-1] = UpdatePathNode(other, last.encrypted_path_secret)
    tree = before.copy()
    tree.tree_hash()  # warm the cache so that a missed invalidation would show
    hashes = [tree.tree_hash(NodeIndex(x)) for x in range(tree.node_count)]
    with pytest.raises(ValidationError):
        process_update_path(
            tree,
            LeafIndex(committer),
            UpdatePath(path.leaf_node, tuple(nodes)),
            context,
            group.members[receiver].private,
            excluded=added,
        )
    assert tree == before
    assert [tree.tree_hash(NodeIndex(x)) for x in range(tree.node_count)] == hashes
    assert tree.tree_hash() == RatchetTree.from_nodes(tree.suite, tree.to_nodes()).tree_hash()


@settings(max_examples=30)
@given(OPS, st.sampled_from([1, 2, 3]))
def test_random_sequences_keep_hashes_and_views_consistent(
    ops: list[tuple[str, int]], suite_id: int
) -> None:
    group = TreeGroup(suite_id, seed=repr(ops).encode())
    policy = LifetimePolicy(clock=lambda: NOW)
    for op, pick in ops:
        settled = sorted(i for i in group.members if i not in group.pending_adds)
        if op == "add" and len(group.members) < 12:
            group.add()
        elif op == "remove" and len(group.members) > 1:
            candidates = sorted(group.members)
            victim = candidates[pick % len(candidates)]
            if [i for i in settled if i != victim]:
                group.remove(victim)
        elif op == "update" and settled:
            group.update(settled[pick % len(settled)])
        elif op == "commit" and settled:
            committer = settled[pick % len(settled)]
            before = group.tree.copy()
            context = group.context()
            added = list(group.pending_adds)
            created = group.commit(committer)
            validate_ratchet_tree(group.tree, group.context(), lifetime_policy=policy)
            group.check_private_views()
            receivers = [i for i in settled if i != committer and i in group.members]
            if receivers and created.update_path.nodes:
                # A tampered copy of the path is rejected and the receiver's tree (whose
                # cache the merge touched) is restored to the exact pre-commit state.
                check_rejected_path_restores(
                    before, committer, created.update_path, context, group, receivers, pick, added
                )
        check_hashes(group)
    # The cache also holds for every subtree, not only the root.
    for x in range(group.tree.node_count):
        assert group.tree.tree_hash(NodeIndex(x)) == group.tree.tree_hash_uncached(NodeIndex(x))
