"""Ratchet tree nodes and the wire form of a tree (RFC 9420 §7.1, §7.8, §12.4.3.3).

A tree travels as ``optional<Node> ratchet_tree<V>``: the array of nodes in tree order, blank
nodes absent, trailing blanks truncated. :func:`encode_ratchet_tree` and
:func:`decode_ratchet_tree` convert it (syntax only); :func:`ratchet_tree_extension` wraps it as
an :class:`~mls.extensions.Extension`. The tree logic over that array is
:class:`mls.ratchet_tree.RatchetTree`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated

from .codec import (
    DEFAULT_MAX_SIZE,
    U32,
    Codec,
    Empty,
    Enum,
    Opaque,
    Optional,
    Select,
    Struct,
    Vector,
    decode_exact,
    encode_value,
)
from .extensions import Extension, ExtensionType
from .leaf_node import LeafNode


class NodeType(IntEnum):
    """The two kinds of tree node (RFC 9420 §7.8). A closed enum."""

    LEAF = 1
    PARENT = 2


@dataclass(frozen=True)
class ParentNode(Struct):
    """An interior node of the tree (RFC 9420 §7.1). ``unmerged_leaves`` are leaf indices,
    in increasing order."""

    encryption_key: Annotated[bytes, Opaque]
    parent_hash: Annotated[bytes, Opaque]
    unmerged_leaves: Annotated[tuple[int, ...], Vector(U32)]


@dataclass(frozen=True)
class Node(Struct):
    """One non-blank node of the tree (RFC 9420 §7.8): exactly one of ``leaf_node`` and
    ``parent_node`` is set, the one ``node_type`` names."""

    node_type: Annotated[NodeType, Enum(NodeType, 1)]
    leaf_node: Annotated[
        LeafNode | None, Select("node_type", {NodeType.LEAF: LeafNode, NodeType.PARENT: Empty})
    ] = field(default=None, kw_only=True)
    parent_node: Annotated[
        ParentNode | None,
        Select("node_type", {NodeType.LEAF: Empty, NodeType.PARENT: ParentNode}),
    ] = field(default=None, kw_only=True)

    @classmethod
    def leaf(cls, leaf_node: LeafNode) -> Node:
        return cls(NodeType.LEAF, leaf_node=leaf_node)

    @classmethod
    def parent(cls, parent_node: ParentNode) -> Node:
        return cls(NodeType.PARENT, parent_node=parent_node)


RATCHET_TREE: Codec[tuple[Node | None, ...]] = Vector(Optional(Node))
"""Codec of ``optional<Node> ratchet_tree<V>`` (RFC 9420 §12.4.3.3)."""


def encode_ratchet_tree(nodes: tuple[Node | None, ...]) -> bytes:
    """Encodes a node array (``None`` for a blank node) as ``optional<Node> ratchet_tree<V>``."""
    return encode_value(RATCHET_TREE, nodes)


def decode_ratchet_tree(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[Node | None, ...]:
    """Decodes exactly one ``optional<Node> ratchet_tree<V>``. Only the syntax is checked here.

    Raises:
        DecodeError: the bytes are not exactly one valid encoding.
    """
    return decode_exact(RATCHET_TREE, data, max_size=max_size)


def ratchet_tree_extension(nodes: tuple[Node | None, ...]) -> Extension:
    """The ``ratchet_tree`` extension carrying ``nodes`` (RFC 9420 §12.4.3.3)."""
    return Extension(ExtensionType.RATCHET_TREE, encode_ratchet_tree(nodes))


def node_content(node: Node) -> LeafNode | ParentNode:
    """The leaf or parent a non-blank node holds; both carry ``encryption_key`` and
    ``parent_hash`` (``None`` for a leaf not from a commit)."""
    content = node.leaf_node if node.leaf_node is not None else node.parent_node
    assert content is not None  # the codec sets exactly the member node_type names
    return content
