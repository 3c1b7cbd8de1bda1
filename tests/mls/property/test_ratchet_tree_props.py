"""Random Add/Remove/Update/Commit sequences over a tree-level group (RFC 9420 §7, §12.1):
the cached tree hash always equals a from-scratch recomputation, every committed tree passes
joiner validation (a TREE-04 positive check), and every member agrees on each commit secret
and holds private keys that match the tree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mls.tree_math import NodeIndex, copath, direct_path, node_of
from mls.tree_validation import LifetimePolicy, validate_ratchet_tree

from .._tree_helpers import NOW, TreeGroup

OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove", "update", "commit"]), st.integers(0, 10**6)),
    min_size=1,
    max_size=14,
)


def check_hashes(group: TreeGroup) -> None:
    tree = group.tree
    assert tree.tree_hash() == tree.tree_hash_uncached()
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
            group.commit(settled[pick % len(settled)])
            validate_ratchet_tree(group.tree, group.context(), lifetime_policy=policy)
            group.check_private_views()
        check_hashes(group)
    # The cache also holds for every subtree, not only the root.
    for x in range(group.tree.node_count):
        assert group.tree.tree_hash(NodeIndex(x)) == group.tree.tree_hash_uncached(NodeIndex(x))
