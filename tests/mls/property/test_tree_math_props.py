"""Tree math against an explicit, pointer-built perfect binary tree (RFC 9420 §4, Appendix C)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls import tree_math as tm
from mls.errors import UsageError
from mls.tree_math import LeafIndex, NodeIndex


@dataclass
class Model:
    """A perfect tree built by recursion; nodes numbered by in-order traversal."""

    n_leaves: int
    parent: dict[int, int] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)
    right: dict[int, int] = field(default_factory=dict)
    level: dict[int, int] = field(default_factory=dict)
    leaves: list[int] = field(default_factory=list)
    root: int = -1

    def __post_init__(self) -> None:
        counter = iter(range(10**9))

        def build(height: int) -> int:
            if height == 0:
                me = next(counter)
                self.leaves.append(me)
                self.level[me] = 0
                return me
            lc = build(height - 1)
            me = next(counter)
            rc = build(height - 1)
            self.left[me], self.right[me] = lc, rc
            self.parent[lc] = self.parent[rc] = me
            self.level[me] = height
            return me

        self.root = build(self.n_leaves.bit_length() - 1)

    def ancestors(self, x: int) -> list[int]:
        out = []
        while x in self.parent:
            x = self.parent[x]
            out.append(x)
        return out

    def sibling(self, x: int) -> int:
        p = self.parent[x]
        return self.right[p] if self.left[p] == x else self.left[p]

    def subtree(self, x: int) -> set[int]:
        out = {x}
        if x in self.left:
            out |= self.subtree(self.left[x]) | self.subtree(self.right[x])
        return out


MODELS = {n: Model(n) for n in (1 << d for d in range(8))}

sizes = st.sampled_from(sorted(MODELS))


@st.composite
def tree_and_node(draw: st.DrawFn) -> tuple[Model, int]:
    m = MODELS[draw(sizes)]
    return m, draw(st.integers(0, 2 * m.n_leaves - 2))


@given(tree_and_node())
def test_relations_match_the_model(tn: tuple[Model, int]) -> None:
    m, x = tn
    n = m.n_leaves
    node = NodeIndex(x)
    assert tm.node_width(n) == len(m.level)
    assert tm.root(n) == m.root
    assert tm.level(node) == m.level[x]
    assert tm.is_leaf(node) == (m.level[x] == 0)
    if x in m.left:
        assert tm.left(node) == m.left[x]
        assert tm.right(node) == m.right[x]
    else:
        with pytest.raises(tm.TreeMathError):
            tm.left(node)
        with pytest.raises(tm.TreeMathError):
            tm.right(node)
    if x == m.root:
        with pytest.raises(tm.TreeMathError):
            tm.parent(node, n)
        with pytest.raises(tm.TreeMathError):
            tm.sibling(node, n)
    else:
        assert tm.parent(node, n) == m.parent[x]
        assert tm.sibling(node, n) == m.sibling(x)
    path = m.ancestors(x)
    assert tm.direct_path(node, n) == path
    assert tm.copath(node, n) == ([m.sibling(y) for y in [x, *path[:-1]]] if path else [])
    sub = m.subtree(x)
    assert set(tm.subtree_nodes(node)) == sub
    assert {m.leaves[i] for i in tm.subtree_leaves(node)} == {y for y in sub if m.level[y] == 0}


@given(tree_and_node(), st.data())
def test_common_ancestor_is_lowest_shared(tn: tuple[Model, int], data: st.DataObject) -> None:
    m, x = tn
    y = data.draw(st.integers(0, 2 * m.n_leaves - 2))
    shared = ({x, *m.ancestors(x)}) & ({y, *m.ancestors(y)})
    expected = min(shared, key=lambda z: m.level[z])
    assert tm.common_ancestor(NodeIndex(x), NodeIndex(y)) == expected
    assert tm.is_descendant(NodeIndex(x), NodeIndex(expected))
    assert tm.is_descendant(NodeIndex(y), NodeIndex(expected))
    assert tm.is_descendant(NodeIndex(x), NodeIndex(y)) == (y in {x, *m.ancestors(x)})


@given(tree_and_node())
def test_direct_path_and_copath_are_consistent(tn: tuple[Model, int]) -> None:
    m, x = tn
    n = m.n_leaves
    dp = tm.direct_path(NodeIndex(x), n)
    cp = tm.copath(NodeIndex(x), n)
    assert len(dp) == len(cp) == m.level[m.root] - m.level[x]
    for i, (p, s) in enumerate(zip(dp, cp, strict=True)):
        child = x if i == 0 else dp[i - 1]
        assert tm.parent(NodeIndex(s), n) == p
        assert tm.sibling(NodeIndex(child), n) == s


@given(st.integers(0, 2**31 - 1))
def test_leaf_node_conversions_roundtrip(i: int) -> None:
    assert tm.leaf_of(tm.node_of(LeafIndex(i))) == i
    assert tm.node_of(LeafIndex(i)) == 2 * i
    assert tm.is_leaf(tm.node_of(LeafIndex(i)))


@pytest.mark.parametrize("n", [0, 3, 5, 6, 12, -1, 2**32])
def test_non_power_of_two_leaf_counts_are_rejected(n: int) -> None:
    with pytest.raises(tm.TreeMathError) as info:
        tm.root(n)
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)


def test_out_of_range_and_negative_indices_are_rejected() -> None:
    with pytest.raises(tm.TreeMathError):
        tm.parent(NodeIndex(7), 4)
    with pytest.raises(tm.TreeMathError):
        tm.direct_path(NodeIndex(2**40), 4)
    with pytest.raises(tm.TreeMathError):
        tm.level(NodeIndex(-1))
    with pytest.raises(tm.TreeMathError):
        tm.leaf_of(NodeIndex(3))
    with pytest.raises(tm.TreeMathError):
        tm.check_leaf(4, 4)
    with pytest.raises(tm.TreeMathError):
        tm.node_of(LeafIndex(-2))
    with pytest.raises(tm.TreeMathError):
        tm.leaf_width(4)
    assert tm.leaf_width(7) == 4 and tm.leaf_width(0) == 0


def test_largest_tree_is_handled_without_looping() -> None:
    n = tm.MAX_LEAVES
    last_leaf = tm.node_of(LeafIndex(n - 1))
    assert len(tm.direct_path(last_leaf, n)) == 31
    assert tm.direct_path(last_leaf, n)[-1] == tm.root(n)
