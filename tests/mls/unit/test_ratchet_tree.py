"""The array ratchet tree: shape changes, resolution, filtered direct path, hashes and the
wire form (RFC 9420 §4, §7.7, §7.8, §12.1, §12.4.3.3)."""

from __future__ import annotations

import pytest

from mls.crypto.ciphersuite import get_suite
from mls.errors import DecodeError, UsageError
from mls.leaf_node import LeafNode
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, NodeIndex, subtree_nodes
from mls.tree_nodes import Node, ParentNode

from .._tree_helpers import (
    TreeGroup,
    deterministic_random,
    get_tree,
    key_package_leaf,
    make_identity,
)

SUITE = get_suite(1)
RAND = deterministic_random(b"ratchet-tree")


def leaf(name: bytes) -> LeafNode:
    return key_package_leaf(SUITE, make_identity(SUITE, name, RAND))


def parent(key: bytes, unmerged: tuple[int, ...] = ()) -> Node:
    return Node.parent(ParentNode(key, b"", unmerged))


def test_add_fills_the_leftmost_blank_leaf_then_extends() -> None:
    tree = RatchetTree.create(SUITE, leaf(b"a"))
    assert tree.n_leaves == 1
    assert tree.add_leaf(leaf(b"b")) == 1 and tree.n_leaves == 2
    assert tree.add_leaf(leaf(b"c")) == 2 and tree.n_leaves == 4 and tree.node_count == 7
    assert tree.add_leaf(leaf(b"d")) == 3
    tree.remove_leaf(LeafIndex(1))
    assert tree.n_leaves == 4
    assert tree.add_leaf(leaf(b"e")) == 1
    assert tree.add_leaf(leaf(b"f")) == 4 and tree.n_leaves == 8


def test_add_lists_the_new_leaf_as_unmerged_at_non_blank_ancestors_sorted() -> None:
    group = get_tree(5)
    group.remove(1)
    group.commit(0)  # the removal blanked the root; the commit refills it
    first = group.add()  # leaf 1
    assert first == 1
    root = group.tree.parent_node(group.tree.root)
    assert root is not None and 1 in root.unmerged_leaves
    group.add()  # leaf 5
    root = group.tree.parent_node(group.tree.root)
    assert root is not None and list(root.unmerged_leaves) == sorted(root.unmerged_leaves)


def test_remove_truncates_while_the_right_half_is_blank() -> None:
    group = get_tree(5)  # 8 leaf slots, leaves 0..4
    assert group.tree.n_leaves == 8
    group.remove(2)
    assert group.tree.n_leaves == 8  # leaf 4 keeps the right half
    group.remove(4)
    assert group.tree.n_leaves == 4
    group.remove(3)
    assert group.tree.n_leaves == 2
    assert group.tree.node_count == 3
    group.remove(1)
    assert group.tree.n_leaves == 1 and group.tree.node_count == 1


def test_update_blanks_the_direct_path() -> None:
    group = get_tree(4)
    group.update(1)
    assert group.tree.node(NodeIndex(1)) is None and group.tree.node(NodeIndex(3)) is None
    assert group.tree.node(NodeIndex(5)) is not None


def test_resolution_follows_rfc_figure() -> None:
    # RFC 9420 §4.1.1: X[B] over A,B; Y over E,F; H; blanks elsewhere. resolution(top) =
    # [X, B, Y, H] and blank leaves resolve to nothing.
    nodes: list[Node | None] = [None] * 15
    for i, name in ((0, b"A"), (1, b"B"), (3, b"D"), (4, b"E"), (5, b"F"), (7, b"H")):
        nodes[2 * i] = Node.leaf(leaf(name))
    nodes[1] = parent(b"X", (1,))
    nodes[9] = parent(b"Y")
    tree = RatchetTree(SUITE, nodes)
    assert tree.resolution(NodeIndex(3)) == [1, 2, 6]
    assert tree.resolution(NodeIndex(7)) == [1, 2, 6, 9, 14]
    assert tree.resolution(NodeIndex(4)) == []
    assert tree.resolution(NodeIndex(12)) == []
    assert tree.resolution(NodeIndex(7), exclude={1, 7}) == [1, 6, 9]


def test_filtered_direct_path_follows_rfc_table() -> None:
    # RFC 9420 §4.1.2: members A, B, E, F, G at leaves 0, 1, 4, 5, 6.
    nodes: list[Node | None] = [None] * 15
    for i, name in ((0, b"A"), (1, b"B"), (4, b"E"), (5, b"F"), (6, b"G")):
        nodes[2 * i] = Node.leaf(leaf(name))
    nodes[1], nodes[7], nodes[9], nodes[11] = parent(b"T"), parent(b"W"), parent(b"X"), parent(b"Y")
    tree = RatchetTree(SUITE, nodes)

    def fdp(i: int) -> list[int]:
        return [p for p, _ in tree.filtered_direct_path(LeafIndex(i))]

    assert fdp(0) == fdp(1) == [1, 7]
    assert fdp(4) == fdp(5) == [9, 11, 7]
    assert fdp(6) == [11, 7]


def test_wire_form_drops_trailing_blanks_and_round_trips() -> None:
    group = get_tree(5)
    nodes = group.tree.to_nodes()
    assert len(nodes) == 9 and nodes[-1] is not None
    again = RatchetTree.decode(SUITE, group.tree.encode())
    assert again == group.tree and again.n_leaves == 8
    assert again.tree_hash() == group.tree.tree_hash()


def test_decode_rejects_malformed_bytes() -> None:
    with pytest.raises(DecodeError):
        RatchetTree.decode(SUITE, b"\x05\x01\x02")
    with pytest.raises(DecodeError):
        RatchetTree.decode(SUITE, get_tree(2).tree.encode() + b"\x00")


def test_cached_tree_hash_tracks_changes_and_copies_are_independent() -> None:
    group = get_tree(6)
    tree = group.tree
    before = tree.tree_hash()
    copy = tree.copy()
    group.add()
    assert tree.tree_hash() != before
    assert tree.tree_hash() == tree.tree_hash_uncached()
    assert copy.tree_hash() == before == copy.tree_hash_uncached()
    group.remove(2)
    group.commit(0)
    assert tree.tree_hash() == tree.tree_hash_uncached()
    for x in range(tree.node_count):
        assert tree.tree_hash(NodeIndex(x)) == tree.tree_hash_uncached(NodeIndex(x))


def test_key_index_and_fill_counts_follow_every_change() -> None:
    group = get_tree(5)
    tree = group.tree

    def all_keys() -> set[bytes]:
        return {k for x in range(tree.node_count) if (k := tree.public_key(NodeIndex(x)))}

    for step in (
        lambda: group.add(),
        lambda: group.remove(4),
        lambda: group.commit(1),
        lambda: group.update(2),
        lambda: group.remove(5),
    ):
        step()
        keys = all_keys()
        assert all(tree.contains_encryption_key(k) for k in keys)
        assert sorted(tree._keys) == sorted(keys)  # noqa: SLF001 - the index itself
        for x in range(tree.node_count):
            filled = sum(tree.node(NodeIndex(y)) is not None for y in subtree_nodes(NodeIndex(x)))
            assert tree._filled[x] == filled  # noqa: SLF001 - the fill counts themselves


def test_snapshot_and_restore_undo_a_path_merge() -> None:
    group = get_tree(4)
    tree = group.tree
    encoded, th = tree.encode(), tree.tree_hash()
    snap = tree.snapshot_path(LeafIndex(2))
    tree.set_path(LeafIndex(2), [b"k1", b"k2"])
    assert tree.encode() != encoded
    tree.restore(snap)
    assert tree.encode() == encoded and tree.tree_hash() == th == tree.tree_hash_uncached()


def test_misuse_raises_usage_error() -> None:
    group = get_tree(3)  # leaf 3 blank
    tree = group.tree
    with pytest.raises(UsageError):
        tree.update_leaf(LeafIndex(3), leaf(b"x"))
    with pytest.raises(UsageError):
        tree.remove_leaf(LeafIndex(3))
    with pytest.raises(UsageError):
        tree.leaf_node(LeafIndex(4))
    with pytest.raises(UsageError):
        tree.set_node(NodeIndex(1), Node.leaf(leaf(b"y")))
    with pytest.raises(UsageError):
        tree.set_node(NodeIndex(99), None)
    with pytest.raises(UsageError):
        tree.set_path(LeafIndex(0), [b"only one key"])
    with pytest.raises(UsageError):
        RatchetTree(SUITE, [None, None])
    with pytest.raises(UsageError):
        tree.parent_hash_of(NodeIndex(3), NodeIndex(0))


def test_find_leaf_and_member_count() -> None:
    group = TreeGroup()
    group.add()
    target = group.tree.leaf_node(LeafIndex(1))
    assert target is not None
    assert group.tree.find_leaf(target) == 1
    assert group.tree.member_count() == 2
    assert "members=2" in repr(group.tree)
