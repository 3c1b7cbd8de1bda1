"""The ratchet tree's logic (RFC 9420 §4, §7.1, §7.5-7.9, §12.4.3.3).

:class:`RatchetTree` holds the node array (nodes and the wire form are :mod:`mls.tree_nodes`,
hash inputs :mod:`mls.tree_hashes`)::

    from the wire        RatchetTree.decode / from_nodes   shape rules of §12.4.3.3 (TREE-01)
    membership changes   add_leaf / update_leaf / remove_leaf      §12.1.1-3, §7.7
    paths                filtered_direct_path / resolution / set_path   §4.1, §7.5
    hashes               tree_hash (cached) / parent_hash_of / original_tree_hash   §7.8, §7.9
    to the wire          to_nodes / encode / extension

Semantic validation of a received tree lives in :mod:`mls.tree_validation`; UpdatePaths in
:mod:`mls.treekem`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING

from .codec import DEFAULT_MAX_SIZE
from .errors import UsageError, ValidationError
from .extensions import Extension
from .leaf_node import LeafNode
from .tree_hashes import leaf_tree_hash, parent_hash, parent_tree_hash
from .tree_math import (
    MAX_LEAVES,
    LeafIndex,
    NodeIndex,
    copath,
    direct_path,
    is_power_of_two,
    leaf_width,
    level,
    node_of,
    subtree_leaves,
)
from .tree_nodes import (
    Node,
    NodeType,
    ParentNode,
    decode_ratchet_tree,
    encode_ratchet_tree,
    node_content,
    ratchet_tree_extension,
)

if TYPE_CHECKING:
    from .crypto.ciphersuite import Suite


# ============================================================================================
# The tree
#
# Rule identifiers of the structural checks made when a tree arrives from the wire
# (VALIDATION.md TREE-01). The semantic checks live in ``mls.tree_validation``.

RULE_EMPTY = "§12.4.3.3/empty-tree"
RULE_TRAILING_BLANK = "§12.4.3.3/trailing-blank"
RULE_NODE_COUNT = "§12.4.3.3/node-count"
RULE_NODE_TYPE = "§12.4.3.3/node-type"
RULE_LEAF_INDEX = "§7.1/leaf-index-range"
RULE_UNMERGED_SORTED = "§7.1/unmerged-leaves-sorted"


def check_unmerged_leaves(x: int, unmerged: Sequence[int], n_leaves: int) -> None:
    """Checks the ``unmerged_leaves`` list of parent ``x`` in a tree of ``n_leaves`` leaves:
    every entry a leaf index of the tree (VALIDATION TREE-01, before any tree math uses it),
    strictly increasing (RFC 9420 §7.1, TREE-08).

    Raises:
        ValidationError: :data:`RULE_LEAF_INDEX` or :data:`RULE_UNMERGED_SORTED`.
    """
    for leaf in unmerged:
        if not 0 <= leaf < n_leaves:
            raise ValidationError(
                RULE_LEAF_INDEX, f"node {x} lists unmerged leaf {leaf} of {n_leaves}"
            )
    if any(a >= b for a, b in zip(unmerged, unmerged[1:], strict=False)):
        raise ValidationError(
            RULE_UNMERGED_SORTED, f"node {x}: unmerged_leaves not strictly increasing"
        )


class RatchetTree:
    """A ratchet tree in array form (RFC 9420 §4, §7, Appendix C), with cached tree hashes.

    The array always has ``2 * n_leaves - 1`` slots for a power-of-two ``n_leaves``; a blank
    node is ``None``. Leaf ``i`` is at slot ``2i``. Trailing blanks exist only in memory: the
    wire form drops them (:meth:`to_nodes`).

    Tree hashes are cached per node. Changing a node drops the cached hashes of that node and
    its ancestors only, so after one path changes the root hash costs ``O(log n)`` hashes.

    Two more per-node indexes keep path work logarithmic: the count of non-blank nodes under
    each node (so the filtered direct path never scans a blank subtree) and a count of the
    nodes holding each encryption key (so "is this key already in the tree" is ``O(1)``).

    Contract: the tree is mutable, and only the methods below change it. A caller that must
    not see a partial change (commit staging) works on :meth:`copy`, which copies the index
    lists and dict, never nodes. Nodes themselves are immutable values.

    Attributes:
        suite: the cipher suite whose hash the tree hashes use.
    """

    __slots__ = ("suite", "_nodes", "_hashes", "_keys", "_filled", "_blank_from")

    def __init__(self, suite: Suite, nodes: Sequence[Node | None]) -> None:
        """A tree over ``nodes``; ``len(nodes)`` must be ``2 * n - 1`` for a power of two ``n``.

        Use :meth:`from_nodes` for a node array from the wire (it pads and checks it).

        Raises:
            UsageError: the length is wrong or a node sits in a slot of the other kind.
        """
        n = leaf_width(len(nodes)) if len(nodes) % 2 else 0
        if not is_power_of_two(n):
            raise UsageError(
                f"a tree array needs 2n-1 slots for a power of two n, got {len(nodes)}"
            )
        for i, node in enumerate(nodes):
            if node is not None and (node.node_type == NodeType.LEAF) != (i % 2 == 0):
                raise UsageError(f"node {i} has the wrong node type for its slot")
        self.suite = suite
        self._nodes: list[Node | None] = list(nodes)
        self._hashes: list[bytes | None] = [None] * len(nodes)
        self._keys: dict[bytes, int] = {}
        for node in self._nodes:
            self._count_key(node, 1)
        # _filled[x]: how many non-blank nodes the subtree of x holds (bottom-up, by level)
        self._filled: list[int] = [0 if node is None else 1 for node in self._nodes]
        # every leaf slot below _blank_from is non-blank (a hint for leftmost_blank_leaf)
        self._blank_from = 0
        k = 1
        while (1 << k) <= len(nodes):
            for x in range((1 << k) - 1, len(nodes), 1 << (k + 1)):
                self._filled[x] += (
                    self._filled[x ^ (1 << (k - 1))] + self._filled[x ^ (3 << (k - 1))]
                )
            k += 1

    # -- construction and wire form ---------------------------------------------------------

    @classmethod
    def create(cls, suite: Suite, leaf_node: LeafNode) -> RatchetTree:
        """The one-leaf tree of a new group (RFC 9420 §11)."""
        return cls(suite, [Node.leaf(leaf_node)])

    @classmethod
    def from_nodes(cls, suite: Suite, nodes: Sequence[Node | None]) -> RatchetTree:
        """A tree from a ``ratchet_tree`` node list (RFC 9420 §12.4.3.3).

        Checks the shape rules of §12.4.3.3 and that every ``unmerged_leaves`` entry is a leaf
        index of the tree, sorted (so later tree math cannot be driven out of range), then
        pads the list with blanks to ``2**(d+1) - 1`` entries.

        Raises:
            ValidationError: rules :data:`RULE_EMPTY`, :data:`RULE_TRAILING_BLANK`,
                :data:`RULE_NODE_COUNT`, :data:`RULE_NODE_TYPE`, :data:`RULE_LEAF_INDEX`,
                :data:`RULE_UNMERGED_SORTED`.
        """
        if not nodes:
            raise ValidationError(RULE_EMPTY, "the ratchet_tree has no nodes")
        # RFC 9420 §12.4.3.3: the last entry is non-blank (the sender drops trailing blanks)
        if nodes[-1] is None:
            raise ValidationError(RULE_TRAILING_BLANK, "the ratchet_tree ends with a blank node")
        # Leaves sit at even indices, so a well-formed list has an odd length
        if len(nodes) % 2 == 0:
            raise ValidationError(RULE_NODE_COUNT, f"{len(nodes)} nodes: not an odd number")
        n_leaves = 1
        while 2 * n_leaves - 1 < len(nodes):
            n_leaves *= 2
        if n_leaves > MAX_LEAVES:
            raise ValidationError(RULE_NODE_COUNT, f"{len(nodes)} nodes exceed the tree limit")
        for i, node in enumerate(nodes):
            if node is None:
                continue
            # RFC 9420 §12.4.3.3: leaves at even positions, parents at odd ones
            if (node.node_type == NodeType.LEAF) != (i % 2 == 0):
                raise ValidationError(RULE_NODE_TYPE, f"node {i} is a {node.node_type.name} node")
            if node.parent_node is not None:
                check_unmerged_leaves(i, node.parent_node.unmerged_leaves, n_leaves)
        padded = list(nodes) + [None] * (2 * n_leaves - 1 - len(nodes))
        return cls(suite, padded)

    @classmethod
    def decode(cls, suite: Suite, data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> RatchetTree:
        """A tree from an encoded ``optional<Node> ratchet_tree<V>``.

        Raises:
            DecodeError: the bytes are not one valid encoding.
            ValidationError: the node list breaks a shape rule (see :meth:`from_nodes`).
        """
        return cls.from_nodes(suite, decode_ratchet_tree(data, max_size=max_size))

    def to_nodes(self) -> tuple[Node | None, ...]:
        """The wire node list: the array without its trailing blanks (RFC 9420 §12.4.3.3)."""
        end = len(self._nodes)
        while end > 0 and self._nodes[end - 1] is None:
            end -= 1
        return tuple(self._nodes[:end])

    def encode(self) -> bytes:
        """The encoded ``optional<Node> ratchet_tree<V>``."""
        return encode_ratchet_tree(self.to_nodes())

    def extension(self) -> Extension:
        """This tree as a ``ratchet_tree`` extension."""
        return ratchet_tree_extension(self.to_nodes())

    def copy(self) -> RatchetTree:
        """An independent tree with the same nodes and cached hashes."""
        other = RatchetTree.__new__(RatchetTree)
        other.suite = self.suite
        other._nodes = list(self._nodes)
        other._hashes = list(self._hashes)
        other._keys = dict(self._keys)
        other._filled = list(self._filled)
        other._blank_from = self._blank_from
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RatchetTree):
            return NotImplemented
        return self.suite.id == other.suite.id and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        members = sum(1 for i in range(0, len(self._nodes), 2) if self._nodes[i] is not None)
        return f"RatchetTree(n_leaves={self.n_leaves}, members={members})"

    # -- reading ---------------------------------------------------------------------------

    @property
    def n_leaves(self) -> int:
        """The number of leaf slots (a power of two), blank or not."""
        return (len(self._nodes) + 1) // 2

    @property
    def node_count(self) -> int:
        return len(self._nodes)

    @property
    def root(self) -> NodeIndex:
        return NodeIndex(len(self._nodes) // 2)

    def node(self, x: NodeIndex) -> Node | None:
        """The node at slot ``x`` (``None`` when blank).

        Raises:
            UsageError: ``x`` is not a slot of this tree.
        """
        if not 0 <= x < len(self._nodes):
            raise UsageError(f"node {x} is outside a tree of {len(self._nodes)} nodes")
        return self._nodes[x]

    def is_blank(self, x: NodeIndex) -> bool:
        return self.node(x) is None

    def leaf_node(self, leaf: LeafIndex) -> LeafNode | None:
        """The leaf node of leaf ``leaf`` (``None`` when blank).

        Raises:
            UsageError: ``leaf`` is not a leaf of this tree.
        """
        if not 0 <= leaf < self.n_leaves:
            raise UsageError(f"leaf {leaf} is outside a tree of {self.n_leaves} leaves")
        node = self._nodes[2 * leaf]
        return None if node is None else node.leaf_node

    def parent_node(self, x: NodeIndex) -> ParentNode | None:
        """The parent node at slot ``x`` (``None`` when blank or a leaf slot)."""
        node = self.node(x)
        return None if node is None else node.parent_node

    def public_key(self, x: NodeIndex) -> bytes | None:
        """The HPKE public key held at slot ``x``, or ``None`` when blank."""
        node = self.node(x)
        return None if node is None else node_content(node).encryption_key

    def leaves(self) -> Iterator[tuple[LeafIndex, LeafNode]]:
        """Each non-blank leaf with its index, left to right."""
        for i in range(0, len(self._nodes), 2):
            node = self._nodes[i]
            if node is not None:
                assert node.leaf_node is not None
                yield LeafIndex(i // 2), node.leaf_node

    def parents(self) -> Iterator[tuple[NodeIndex, ParentNode]]:
        """Each non-blank parent with its node index, left to right."""
        for i in range(1, len(self._nodes), 2):
            node = self._nodes[i]
            if node is not None:
                assert node.parent_node is not None
                yield NodeIndex(i), node.parent_node

    def member_count(self) -> int:
        return sum(1 for _ in self.leaves())

    def find_leaf(self, leaf_node: LeafNode) -> LeafIndex | None:
        """The index of the leaf equal to ``leaf_node``, if any (RFC 9420 §12.4.3.1)."""
        for i, leaf in self.leaves():
            if leaf == leaf_node:
                return i
        return None

    def leftmost_blank_leaf(self) -> LeafIndex | None:
        """The leftmost blank leaf, or ``None`` when every leaf is taken (amortised ``O(1)``
        over a run of additions: the scan resumes where the last one stopped)."""
        nodes = self._nodes
        for i in range(self._blank_from, len(nodes), 2):
            if nodes[i] is None:
                self._blank_from = i
                return LeafIndex(i // 2)
        self._blank_from = len(nodes) + 1
        return None

    def resolution(self, x: NodeIndex, exclude: Collection[int] = ()) -> list[NodeIndex]:
        """The resolution of node ``x`` (RFC 9420 §4.1.1), leaving out the leaves ``exclude``.

        A non-blank node resolves to itself followed by its unmerged leaves; a blank leaf to
        nothing; a blank parent to its children's resolutions, left first. ``exclude`` holds
        leaf indices (the leaves added by the Commit being made, RFC 9420 §7.6).
        """
        if not 0 <= x < len(self._nodes):
            raise UsageError(f"node {x} is outside a tree of {len(self._nodes)} nodes")
        out: list[NodeIndex] = []
        nodes = self._nodes
        stack = [int(x)]
        while stack:
            y = stack.pop()
            node = nodes[y]
            if node is not None:
                if y % 2 == 0:
                    if y // 2 not in exclude:
                        out.append(NodeIndex(y))
                else:
                    out.append(NodeIndex(y))
                    assert node.parent_node is not None
                    out.extend(
                        NodeIndex(2 * leaf)
                        for leaf in node.parent_node.unmerged_leaves
                        if leaf not in exclude
                    )
            elif y % 2 == 1:
                k = level(NodeIndex(y))
                stack.append(y ^ (3 << (k - 1)))  # right child, popped second
                stack.append(y ^ (1 << (k - 1)))  # left child, popped first
        return out

    def _subtree_is_blank(self, x: NodeIndex) -> bool:
        """True if no node under ``x`` (itself included) is set, so its resolution is empty."""
        return self._filled[x] == 0

    def filtered_direct_path(self, leaf: LeafIndex) -> list[tuple[NodeIndex, NodeIndex]]:
        """``(parent, copath child)`` pairs along the filtered direct path of ``leaf``
        (RFC 9420 §4.1.2), leaf side first.

        A parent is left out when the subtree of its child on the copath holds no non-blank
        node (its resolution is empty). Added leaves count: they are in the tree.
        """
        if not 0 <= leaf < self.n_leaves:
            raise UsageError(f"leaf {leaf} is outside a tree of {self.n_leaves} leaves")
        x = node_of(leaf)
        out = []
        for p, s in zip(direct_path(x, self.n_leaves), copath(x, self.n_leaves), strict=True):
            if not self._subtree_is_blank(s):
                out.append((p, s))
        return out

    def contains_encryption_key(self, key: bytes) -> bool:
        """True if some node of the tree holds HPKE public key ``key``. ``O(1)``."""
        return key in self._keys

    # -- changing ----------------------------------------------------------------------------

    def _count_key(self, node: Node | None, delta: int) -> None:
        """Keeps the index of encryption keys (count of nodes holding each) up to date."""
        if node is None:
            return
        key = node_content(node).encryption_key
        count = self._keys.get(key, 0) + delta
        if count:
            self._keys[key] = count
        else:
            del self._keys[key]

    def _changed(self, x: int, filled_delta: int) -> None:
        """Drops the cached hashes of ``x`` and its ancestors and moves their fill counts."""
        hashes = self._hashes
        filled = self._filled
        r = len(self._nodes) // 2
        while True:
            hashes[x] = None
            filled[x] += filled_delta
            if x == r:
                return
            k = (x ^ (x + 1)).bit_length() - 1
            x = (x | (1 << k)) ^ (((x >> (k + 1)) & 1) << (k + 1))

    def set_node(self, x: NodeIndex, node: Node | None) -> None:
        """Sets slot ``x`` (``None`` blanks it).

        Raises:
            UsageError: ``x`` is outside the tree or ``node`` is of the wrong kind for it.
        """
        if not 0 <= x < len(self._nodes):
            raise UsageError(f"node {x} is outside a tree of {len(self._nodes)} nodes")
        if node is not None and (node.node_type == NodeType.LEAF) != (x % 2 == 0):
            raise UsageError(f"node {x} cannot hold a {node.node_type.name} node")
        old = self._nodes[x]
        if old is node:
            return
        if node is None and x % 2 == 0 and x < self._blank_from:
            self._blank_from = x
        self._count_key(old, -1)
        self._count_key(node, 1)
        self._nodes[x] = node
        self._changed(x, (node is not None) - (old is not None))

    def set_leaf(self, leaf: LeafIndex, leaf_node: LeafNode | None) -> None:
        """Sets or blanks leaf ``leaf``."""
        if not 0 <= leaf < self.n_leaves:
            raise UsageError(f"leaf {leaf} is outside a tree of {self.n_leaves} leaves")
        self.set_node(node_of(leaf), None if leaf_node is None else Node.leaf(leaf_node))

    def blank_direct_path(self, leaf: LeafIndex) -> None:
        """Blanks every parent on the direct path of ``leaf`` (RFC 9420 §7.4)."""
        for p in direct_path(node_of(leaf), self.n_leaves):
            self.set_node(p, None)

    def extend(self) -> None:
        """Doubles the leaf count: a new blank root over the old tree and a blank subtree
        (RFC 9420 §7.7)."""
        if self.n_leaves >= MAX_LEAVES:
            raise UsageError(f"the tree cannot grow past {MAX_LEAVES} leaves")
        grow = len(self._nodes) + 1
        self._blank_from = min(self._blank_from, grow)
        filled = self._filled[len(self._nodes) // 2]
        self._nodes.extend([None] * grow)
        self._hashes.extend([None] * grow)
        self._filled.extend([0] * grow)
        self._filled[len(self._nodes) // 2] = filled  # the new blank root over the old tree

    def truncate(self) -> None:
        """Drops the right half while it holds no non-blank leaf (RFC 9420 §7.7, §12.1.3)."""
        nodes = self._nodes
        while len(nodes) > 1:
            half = (len(nodes) + 1) // 2
            if any(nodes[i] is not None for i in range(half, len(nodes), 2)):
                return
            for node in nodes[half - 1 :]:
                self._count_key(node, -1)
            del nodes[half - 1 :]
            del self._hashes[half - 1 :]
            del self._filled[half - 1 :]
            self._blank_from = min(self._blank_from, len(nodes) + 1)

    def add_leaf(self, leaf_node: LeafNode) -> LeafIndex:
        """Puts ``leaf_node`` in the leftmost blank leaf, extending the tree if there is none,
        and lists it as unmerged at every non-blank parent above it (RFC 9420 §12.1.1).

        Returns:
            the new member's leaf index.
        """
        leaf = self.leftmost_blank_leaf()
        if leaf is None:
            leaf = LeafIndex(self.n_leaves)
            self.extend()
        for p in direct_path(node_of(leaf), self.n_leaves):
            node = self._nodes[p]
            if node is not None:
                assert node.parent_node is not None
                merged = tuple(sorted({*node.parent_node.unmerged_leaves, leaf}))
                self.set_node(
                    p, Node.parent(dataclasses.replace(node.parent_node, unmerged_leaves=merged))
                )
        self.set_leaf(leaf, leaf_node)
        return leaf

    def update_leaf(self, leaf: LeafIndex, leaf_node: LeafNode) -> None:
        """Replaces the leaf of ``leaf`` and blanks its direct path (RFC 9420 §12.1.2).

        Raises:
            UsageError: the leaf is blank or outside the tree.
        """
        if self.leaf_node(leaf) is None:
            raise UsageError(f"leaf {leaf} is blank")
        self.set_leaf(leaf, leaf_node)
        self.blank_direct_path(leaf)

    def remove_leaf(self, leaf: LeafIndex) -> None:
        """Blanks leaf ``leaf`` and its direct path, then truncates (RFC 9420 §12.1.3).

        Raises:
            UsageError: the leaf is blank or outside the tree.
        """
        if self.leaf_node(leaf) is None:
            raise UsageError(f"leaf {leaf} is blank")
        self.set_leaf(leaf, None)
        self.blank_direct_path(leaf)
        self.truncate()

    def path_parent_hashes(
        self, path: Sequence[tuple[NodeIndex, NodeIndex]], public_keys: Sequence[bytes]
    ) -> tuple[list[bytes], bytes]:
        """The parent hashes a new path would get, without changing the tree (RFC 9420 §7.9).

        ``path`` is a filtered direct path (see :meth:`filtered_direct_path`) and
        ``public_keys[i]`` the new key of its i-th node. The new parents have no unmerged
        leaves, and each copath child is off the direct path, so its current tree hash is its
        original sibling tree hash.

        Returns:
            the ``parent_hash`` field of each new path node (the last one, nearest the root,
            has an empty one) and the parent hash the leaf must carry.
        """
        if len(public_keys) != len(path):
            raise UsageError(f"{len(public_keys)} keys for a filtered direct path of {len(path)}")
        fields = [b""] * len(path)
        above = b""
        for i in range(len(path) - 1, -1, -1):
            fields[i] = above
            sibling_hash = self.tree_hash(path[i][1])
            above = parent_hash(self.suite, public_keys[i], fields[i], sibling_hash)
        return fields, above

    def set_path(
        self, leaf: LeafIndex, public_keys: Sequence[bytes]
    ) -> tuple[list[tuple[NodeIndex, NodeIndex]], bytes]:
        """Merges new path keys into the tree (RFC 9420 §7.5, §7.9): blanks the direct path
        of ``leaf``, sets the i-th node of its filtered direct path to ``public_keys[i]``
        with no unmerged leaves and its parent hash.

        The leaf itself is not changed; its new ``parent_hash`` is returned.

        Returns:
            the filtered direct path (``(parent, copath child)`` pairs) and the parent hash
            the leaf must carry.

        Raises:
            UsageError: the number of keys differs from the filtered direct path's length.
        """
        path = self.filtered_direct_path(leaf)
        fields, leaf_parent_hash = self.path_parent_hashes(path, public_keys)
        self.blank_direct_path(leaf)
        for (p, _), key, ph in zip(path, public_keys, fields, strict=True):
            self.set_node(p, Node.parent(ParentNode(key, ph, ())))
        return path, leaf_parent_hash

    def snapshot_path(self, leaf: LeafIndex) -> list[tuple[NodeIndex, Node | None]]:
        """The current nodes of ``leaf`` and its direct path, for :meth:`restore`."""
        x = node_of(leaf)
        return [(y, self._nodes[y]) for y in [x, *direct_path(x, self.n_leaves)]]

    def restore(self, snapshot: Sequence[tuple[NodeIndex, Node | None]]) -> None:
        """Puts back the nodes a :meth:`snapshot_path` saved (same leaf count only)."""
        for x, node in snapshot:
            self.set_node(x, node)

    # -- hashes ------------------------------------------------------------------------------

    def tree_hash(self, x: NodeIndex | None = None) -> bytes:
        """The tree hash of node ``x``, the root by default (RFC 9420 §7.8). Cached."""
        if x is None:
            x = self.root
        elif not 0 <= x < len(self._nodes):
            raise UsageError(f"node {x} is outside a tree of {len(self._nodes)} nodes")
        cached = self._hashes[x]
        if cached is not None:
            return cached
        node = self._nodes[x]
        if x % 2 == 0:
            value = leaf_tree_hash(self.suite, x // 2, None if node is None else node.leaf_node)
        else:
            k = level(x)
            value = parent_tree_hash(
                self.suite,
                None if node is None else node.parent_node,
                self.tree_hash(NodeIndex(x ^ (1 << (k - 1)))),
                self.tree_hash(NodeIndex(x ^ (3 << (k - 1)))),
            )
        self._hashes[x] = value
        return value

    def tree_hash_uncached(self, x: NodeIndex | None = None) -> bytes:
        """The tree hash recomputed from scratch, ignoring the cache (for checks and tests)."""
        if x is None:
            x = self.root
        node = self._nodes[x]
        if x % 2 == 0:
            return leaf_tree_hash(self.suite, x // 2, None if node is None else node.leaf_node)
        k = level(x)
        return parent_tree_hash(
            self.suite,
            None if node is None else node.parent_node,
            self.tree_hash_uncached(NodeIndex(x ^ (1 << (k - 1)))),
            self.tree_hash_uncached(NodeIndex(x ^ (3 << (k - 1)))),
        )

    def original_tree_hash(self, x: NodeIndex, excluded: Collection[int]) -> bytes:
        """The tree hash of ``x`` in the tree where each leaf in ``excluded`` is blank and
        missing from every ``unmerged_leaves`` list (RFC 9420 §7.9: the original sibling tree
        hash, with ``excluded`` the parent's unmerged leaves). Subtrees holding none of them
        use the cached hash."""
        leaves = subtree_leaves(x)
        hit = [leaf for leaf in excluded if leaf in leaves]
        if not hit:
            return self.tree_hash(x)
        if x % 2 == 0:
            return leaf_tree_hash(self.suite, x // 2, None)
        k = level(x)
        node = self._nodes[x]
        parent = None if node is None else node.parent_node
        if parent is not None and any(leaf in parent.unmerged_leaves for leaf in hit):
            kept = tuple(leaf for leaf in parent.unmerged_leaves if leaf not in hit)
            parent = dataclasses.replace(parent, unmerged_leaves=kept)
        return parent_tree_hash(
            self.suite,
            parent,
            self.original_tree_hash(NodeIndex(x ^ (1 << (k - 1))), hit),
            self.original_tree_hash(NodeIndex(x ^ (3 << (k - 1))), hit),
        )

    def parent_hash_of(self, p: NodeIndex, s: NodeIndex) -> bytes:
        """The parent hash of non-blank parent ``p`` with copath child ``s`` (RFC 9420 §7.9).

        Raises:
            UsageError: ``p`` is blank or a leaf, or ``s`` is not a child of ``p``.
        """
        parent = self.parent_node(p)
        if parent is None:
            raise UsageError(f"node {p} is not a non-blank parent")
        k = level(p)
        if s not in (p ^ (1 << (k - 1)), p ^ (3 << (k - 1))):
            raise UsageError(f"node {s} is not a child of node {p}")
        sibling_hash = self.original_tree_hash(s, parent.unmerged_leaves)
        return parent_hash(self.suite, parent.encryption_key, parent.parent_hash, sibling_hash)
