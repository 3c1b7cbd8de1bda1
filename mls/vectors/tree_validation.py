"""``tree-validation.json``: resolutions, tree hashes, parent hashes and leaf signatures of
received trees (RFC 9420 §4.1.1, §7.8, §7.9.2, §7.3)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..group_context import GroupContext, ProtocolVersion
from ..ratchet_tree import RatchetTree
from ..tree_math import NodeIndex
from ..tree_validation import LifetimePolicy, validate_parent_hashes, validate_ratchet_tree
from . import Mismatch, expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.decode(suite, bytes.fromhex(case["tree"]))
    # The vector lists one resolution and one tree hash per node of the (padded) tree.
    if len(case["resolutions"]) != tree.node_count or len(case["tree_hashes"]) != tree.node_count:
        raise Mismatch("resolutions/tree_hashes (length)", f"tree has {tree.node_count} nodes")
    for i, expected in enumerate(case["resolutions"]):
        # The resolution of node i, as node indices, in resolution order.
        actual = [int(x) for x in tree.resolution(NodeIndex(i))]
        if actual != expected:
            raise Mismatch(f"resolutions[{i}]", f"got {actual}")
    for i, expected in enumerate(case["tree_hashes"]):
        # The tree hash of the subtree headed by node i.
        expect(f"tree_hashes[{i}]", tree.tree_hash(NodeIndex(i)), expected)
    # Every non-blank parent is parent-hash valid, as a joiner checks it.
    try:
        validate_parent_hashes(tree)
    except Exception as exc:
        raise Mismatch("tree (parent hashes)", str(exc)) from exc
    # Every leaf's signature verifies with group_id as context; the whole joiner validation
    # (unmerged leaves, unique keys, leaf checks) passes too. The vector's leaves carry
    # lifetimes that have since expired, so the receive-side lifetime policy is off here.
    context = GroupContext(
        version=ProtocolVersion.MLS10,
        cipher_suite=case["cipher_suite"],
        group_id=bytes.fromhex(case["group_id"]),
        epoch=0,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=b"",
        extensions=(),
    )
    try:
        validate_ratchet_tree(tree, context, lifetime_policy=LifetimePolicy.disabled())
    except Exception as exc:
        raise Mismatch("tree (joiner validation)", str(exc)) from exc
    # The tree re-encodes to the vector's bytes (trailing blanks dropped the same way).
    expect("tree (re-encoded)", tree.encode(), case["tree"])
