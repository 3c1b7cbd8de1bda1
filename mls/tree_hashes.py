"""What tree hashes and parent hashes hash (RFC 9420 §7.8, §7.9).

The structs are the hash inputs of the RFC; the functions hash one node's input with the
suite's hash. Which nodes to hash, and the cache, are :class:`mls.ratchet_tree.RatchetTree`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from .codec import U32, Empty, Enum, Opaque, Optional, Select, Struct
from .leaf_node import LeafNode
from .tree_nodes import NodeType, ParentNode

if TYPE_CHECKING:
    from .crypto.ciphersuite import Suite


@dataclass(frozen=True)
class LeafNodeHashInput(Struct):
    """A leaf's part of ``TreeHashInput`` (RFC 9420 §7.8); ``leaf_node`` is absent for a blank
    leaf."""

    leaf_index: Annotated[int, U32]
    leaf_node: Annotated[LeafNode | None, Optional(LeafNode)]


@dataclass(frozen=True)
class ParentNodeHashInput(Struct):
    """A parent's part of ``TreeHashInput`` (RFC 9420 §7.8); ``parent_node`` is absent for a
    blank parent."""

    parent_node: Annotated[ParentNode | None, Optional(ParentNode)]
    left_hash: Annotated[bytes, Opaque]
    right_hash: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class TreeHashInput(Struct):
    """What a node's tree hash hashes (RFC 9420 §7.8)."""

    node_type: Annotated[NodeType, Enum(NodeType, 1)]
    leaf_node: Annotated[
        LeafNodeHashInput | None,
        Select("node_type", {NodeType.LEAF: LeafNodeHashInput, NodeType.PARENT: Empty}),
    ] = field(default=None, kw_only=True)
    parent_node: Annotated[
        ParentNodeHashInput | None,
        Select("node_type", {NodeType.LEAF: Empty, NodeType.PARENT: ParentNodeHashInput}),
    ] = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ParentHashInput(Struct):
    """What a parent hash hashes (RFC 9420 §7.9)."""

    encryption_key: Annotated[bytes, Opaque]
    parent_hash: Annotated[bytes, Opaque]
    original_sibling_tree_hash: Annotated[bytes, Opaque]


def leaf_tree_hash(suite: Suite, leaf_index: int, leaf_node: LeafNode | None) -> bytes:
    """The tree hash of leaf ``leaf_index`` holding ``leaf_node`` (``None``: blank), §7.8."""
    data = TreeHashInput(NodeType.LEAF, leaf_node=LeafNodeHashInput(leaf_index, leaf_node))
    return suite.hash(data.encode())


def parent_tree_hash(
    suite: Suite, parent: ParentNode | None, left_hash: bytes, right_hash: bytes
) -> bytes:
    """The tree hash of a parent slot holding ``parent`` (``None``: blank) over its children's
    tree hashes, §7.8."""
    data = TreeHashInput(
        NodeType.PARENT, parent_node=ParentNodeHashInput(parent, left_hash, right_hash)
    )
    return suite.hash(data.encode())


def parent_hash(
    suite: Suite, encryption_key: bytes, parent_hash: bytes, original_sibling_tree_hash: bytes
) -> bytes:
    """The parent hash of a parent with these fields over its copath child, §7.9."""
    data = ParentHashInput(encryption_key, parent_hash, original_sibling_tree_hash)
    return suite.hash(data.encode())
