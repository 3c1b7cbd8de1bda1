r"""Array-based tree math for ratchet trees (RFC 9420 §4, Appendix C).

Every ratchet tree is a perfect binary tree with ``2**d`` leaves. Its ``2**(d+1) - 1`` nodes
are stored in one array in left-to-right (in-order) order: leaves sit at even node indices,
parents at odd ones, and a node's level is the number of trailing one bits of its index::

    level 3                          7
                          ___________|___________
    level 2              3                       11
                    _____|_____             _____|_____
    level 1        1           5           9           13
                  / \         / \         / \         /  \
    level 0      0   2       4   6       8   10      12   14   <- node index
    leaf         0   1       2   3       4   5       6    7    <- leaf index

A parent ``01x`` (binary, read from its level's bit upward) has children ``00x`` and ``10x``.

Two index types keep the two numberings apart: :data:`LeafIndex` counts leaves (what travels
in ``Sender``, ``Remove``, ``unmerged_leaves``) and :data:`NodeIndex` counts array slots.
Conversions are explicit, :func:`node_of` and :func:`leaf_of`, never a bare ``* 2``.

Contract: every function is pure and total on valid input. A negative index, an index
outside a tree of the given size, a leaf count that is not a power of two, or asking for
the children of a leaf or the parent of the root raises :class:`TreeMathError` (a
:class:`~mls.errors.UsageError` and a :class:`ValueError`). Nothing loops more than
``log2(n_leaves) + 1`` times. Indices that come from the wire must be range-checked by the
caller first (VALIDATION TREE-01); the error here is the backstop, not the validator.
"""

from __future__ import annotations

from typing import NewType

from .errors import UsageError

LeafIndex = NewType("LeafIndex", int)
"""Index of a leaf among the leaves, 0 at the left (RFC 9420 §4.1)."""

NodeIndex = NewType("NodeIndex", int)
"""Index of a node in the array representation (RFC 9420 Appendix C)."""

MAX_LEAVES = 2**31
"""The largest leaf count we model: node indices of such a tree still fit in a uint32."""


class TreeMathError(UsageError, ValueError):
    """An index or size that no tree of the stated shape has."""


# --------------------------------------------------------------------------------------------
# Argument checks


def _check_int(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TreeMathError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise TreeMathError(f"{what} must not be negative, got {value}")


def _check_n_leaves(n_leaves: int) -> None:
    _check_int(n_leaves, "leaf count")
    if n_leaves == 0 or n_leaves & (n_leaves - 1):
        raise TreeMathError(f"leaf count must be a positive power of two, got {n_leaves}")
    if n_leaves > MAX_LEAVES:
        raise TreeMathError(f"leaf count {n_leaves} exceeds {MAX_LEAVES}")


def _check_node(x: int, n_leaves: int) -> None:
    _check_n_leaves(n_leaves)
    _check_int(x, "node index")
    if x >= 2 * n_leaves - 1:
        raise TreeMathError(f"node {x} is outside a tree of {n_leaves} leaves")


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, ...: the leaf counts a ratchet tree can have (RFC 9420 §4.1)."""
    return n > 0 and n & (n - 1) == 0


# --------------------------------------------------------------------------------------------
# Sizes and conversions


def log2(x: int) -> int:
    """The exponent of the largest power of two not above ``x``; 0 for 0 (Appendix C)."""
    _check_int(x, "value")
    return max(x.bit_length() - 1, 0)


def node_width(n_leaves: int) -> int:
    """The number of array slots a tree of ``n_leaves`` leaves needs (Appendix C)."""
    _check_int(n_leaves, "leaf count")
    return 0 if n_leaves == 0 else 2 * n_leaves - 1


def leaf_width(n_nodes: int) -> int:
    """The number of leaves of a tree with ``n_nodes`` array slots (inverse of node_width).

    Raises:
        TreeMathError: ``n_nodes`` is even and not 0 (no tree has that many slots).
    """
    _check_int(n_nodes, "node count")
    if n_nodes == 0:
        return 0
    if n_nodes % 2 == 0:
        raise TreeMathError(f"no tree has an even number of nodes ({n_nodes})")
    return (n_nodes + 1) // 2


def node_of(leaf: LeafIndex) -> NodeIndex:
    """The node index of a leaf (RFC 9420 Appendix C: leaf ``n`` sits at node ``2n``)."""
    _check_int(leaf, "leaf index")
    return NodeIndex(2 * leaf)


def leaf_of(node: NodeIndex) -> LeafIndex:
    """The leaf index of a leaf node.

    Raises:
        TreeMathError: ``node`` is a parent (odd) index.
    """
    _check_int(node, "node index")
    if node & 1:
        raise TreeMathError(f"node {node} is a parent, not a leaf")
    return LeafIndex(node >> 1)


def is_leaf(x: NodeIndex) -> bool:
    """True if node ``x`` is a leaf (even index)."""
    _check_int(x, "node index")
    return x & 1 == 0


def level(x: NodeIndex) -> int:
    """The height of node ``x``: 0 for leaves, 1 for their parents, ... (Appendix C)."""
    _check_int(x, "node index")
    # The number of trailing one bits: x ^ (x + 1) is a run of exactly that many ones plus one.
    return (x ^ (x + 1)).bit_length() - 1


def root(n_leaves: int) -> NodeIndex:
    """The root node index of a tree of ``n_leaves`` leaves (a power of two)."""
    _check_n_leaves(n_leaves)
    return NodeIndex(n_leaves - 1)


# --------------------------------------------------------------------------------------------
# Relations


def left(x: NodeIndex) -> NodeIndex:
    """The left child of parent node ``x``.

    Raises:
        TreeMathError: ``x`` is a leaf.
    """
    k = level(x)
    if k == 0:
        raise TreeMathError(f"node {x} is a leaf and has no children")
    return NodeIndex(x ^ (1 << (k - 1)))


def right(x: NodeIndex) -> NodeIndex:
    """The right child of parent node ``x``.

    Raises:
        TreeMathError: ``x`` is a leaf.
    """
    k = level(x)
    if k == 0:
        raise TreeMathError(f"node {x} is a leaf and has no children")
    return NodeIndex(x ^ (3 << (k - 1)))


def _parent_unchecked(x: int) -> int:
    k = (x ^ (x + 1)).bit_length() - 1
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def parent(x: NodeIndex, n_leaves: int) -> NodeIndex:
    """The parent of node ``x`` in a tree of ``n_leaves`` leaves.

    Raises:
        TreeMathError: ``x`` is the root or outside the tree.
    """
    _check_node(x, n_leaves)
    if x == n_leaves - 1:
        raise TreeMathError(f"node {x} is the root and has no parent")
    return NodeIndex(_parent_unchecked(x))


def sibling(x: NodeIndex, n_leaves: int) -> NodeIndex:
    """The other child of ``x``'s parent.

    Raises:
        TreeMathError: ``x`` is the root or outside the tree.
    """
    p = parent(x, n_leaves)
    return right(p) if x < p else left(p)


def direct_path(x: NodeIndex, n_leaves: int) -> list[NodeIndex]:
    """The ancestors of ``x`` from its parent up to the root; empty for the root (§4.1.2)."""
    _check_node(x, n_leaves)
    r = n_leaves - 1
    out: list[NodeIndex] = []
    while x != r:
        x = NodeIndex(_parent_unchecked(x))
        out.append(x)
    return out


def copath(x: NodeIndex, n_leaves: int) -> list[NodeIndex]:
    """The siblings of ``x`` and of each of its ancestors below the root, leaf first (§4.1.2)."""
    _check_node(x, n_leaves)
    r = n_leaves - 1
    out: list[NodeIndex] = []
    while x != r:
        p = _parent_unchecked(x)
        out.append(_other_child(x, p))
        x = NodeIndex(p)
    return out


def _other_child(x: int, p: int) -> NodeIndex:
    k = (p ^ (p + 1)).bit_length() - 1
    return NodeIndex(p ^ (3 << (k - 1)) if x < p else p ^ (1 << (k - 1)))


def common_ancestor(x: NodeIndex, y: NodeIndex) -> NodeIndex:
    """The lowest node whose subtree holds both ``x`` and ``y`` (a node is its own ancestor).

    It does not depend on the tree size: both nodes must simply be in the same tree.
    """
    _check_int(x, "node index")
    _check_int(y, "node index")
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and x >> ly == y >> ly:
        return y
    if ly <= lx and x >> lx == y >> lx:
        return x
    xn: int = x
    yn: int = y
    k = 0
    while xn != yn:
        xn, yn, k = xn >> 1, yn >> 1, k + 1
    return NodeIndex((xn << k) + (1 << (k - 1)) - 1)


# --------------------------------------------------------------------------------------------
# Subtrees


def subtree_nodes(x: NodeIndex) -> range:
    """The node indices of the subtree headed by ``x``: a contiguous range around ``x``."""
    k = level(x)
    half = (1 << k) - 1
    return range(x - half, x + half + 1)


def subtree_leaves(x: NodeIndex) -> range:
    """The leaf indices under node ``x`` (``range`` of :data:`LeafIndex` values)."""
    k = level(x)
    first = (x - ((1 << k) - 1)) >> 1
    return range(first, first + (1 << k))


def is_descendant(x: NodeIndex, ancestor: NodeIndex) -> bool:
    """True if ``x`` is in the subtree headed by ``ancestor`` (including ``ancestor`` itself)."""
    _check_int(x, "node index")
    k = level(ancestor)
    return abs(x - ancestor) < (1 << k)


def is_leaf_in_subtree(leaf: LeafIndex, x: NodeIndex) -> bool:
    """True if leaf ``leaf`` is under node ``x``."""
    return is_descendant(node_of(leaf), x)


def check_leaf(leaf: int, n_leaves: int) -> LeafIndex:
    """``leaf`` as a :data:`LeafIndex` if a tree of ``n_leaves`` leaves has it.

    Raises:
        TreeMathError: it is negative or not below ``n_leaves``.
    """
    _check_int(leaf, "leaf index")
    if leaf >= n_leaves:
        raise TreeMathError(f"leaf {leaf} is outside a tree of {n_leaves} leaves")
    return LeafIndex(leaf)
