"""``tree-operations.json``: applying one Add, Update or Remove to a tree (RFC 9420 §12.1.1-3,
§7.7)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..messages import Proposal, ProposalType
from ..ratchet_tree import RatchetTree
from ..tree_math import LeafIndex
from . import Mismatch, expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.decode(suite, bytes.fromhex(case["tree_before"]))
    # The tree hash of tree_before is tree_hash_before.
    expect("tree_hash_before", tree.tree_hash(), case["tree_hash_before"])
    proposal = Proposal.decode(bytes.fromhex(case["proposal"]))
    sender = LeafIndex(case["proposal_sender"])
    # Apply the proposal as sent by leaf proposal_sender.
    if proposal.proposal_type == ProposalType.ADD:
        assert proposal.add is not None
        tree.add_leaf(proposal.add.key_package.leaf_node)
    elif proposal.proposal_type == ProposalType.UPDATE:
        assert proposal.update is not None
        tree.update_leaf(sender, proposal.update.leaf_node)
    elif proposal.proposal_type == ProposalType.REMOVE:
        assert proposal.remove is not None
        tree.remove_leaf(LeafIndex(proposal.remove.removed))
    else:
        raise Mismatch("proposal", f"unexpected proposal type {proposal.proposal_type}")
    # The resulting tree serializes to tree_after, and its tree hash is tree_hash_after.
    expect("tree_after", tree.encode(), case["tree_after"])
    expect("tree_hash_after", tree.tree_hash(), case["tree_hash_after"])
    # The cached hash agrees with a from-scratch computation.
    expect("tree_hash_after (uncached)", tree.tree_hash_uncached(), case["tree_hash_after"])
