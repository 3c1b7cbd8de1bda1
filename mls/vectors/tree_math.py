"""``tree-math.json``: array tree relations (RFC 9420 §4, Appendix C)."""

from __future__ import annotations

from typing import Any

from ..tree_math import NodeIndex, TreeMathError, left, node_width, parent, right, root, sibling
from . import Mismatch, expect


def _or_none(fn: Any, *args: Any) -> int | None:
    """``fn(*args)``, or ``None`` where the relation does not exist (leaf children, root parent)."""
    try:
        value: int = fn(*args)
    except TreeMathError:
        return None
    return value


def check(case: dict[str, Any]) -> None:
    n = case["n_leaves"]
    # The array has node_width(n) slots and the root sits at root(n).
    expect("n_nodes", node_width(n), case["n_nodes"])
    expect("root", root(n), case["root"])
    for name in ("left", "right", "parent", "sibling"):
        if len(case[name]) != case["n_nodes"]:
            raise Mismatch(f"{name} (length)", "the vector lists one entry per node")
    # For every node: its children, parent and sibling, or null where none exists.
    for i in range(case["n_nodes"]):
        x = NodeIndex(i)
        expect(f"left[{i}]", _or_none(left, x), case["left"][i])
        expect(f"right[{i}]", _or_none(right, x), case["right"][i])
        expect(f"parent[{i}]", _or_none(parent, x, n), case["parent"][i])
        expect(f"sibling[{i}]", _or_none(sibling, x, n), case["sibling"][i])
