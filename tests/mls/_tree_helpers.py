"""A tree-level group simulator for tests: members, KeyPackage leaves, proposals and commits
built with our own ratchet tree and TreeKEM code (no framing, no key schedule).

Every member keeps its own private TreeKEM view, so a commit is created by one member and
processed by all others, as RFC 9420 §7.5 and §12.4.2 describe.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from mls.credentials import Credential, CredentialType
from mls.crypto.ciphersuite import Suite, get_suite
from mls.extensions import Extension
from mls.group_context import GroupContext, ProtocolVersion
from mls.key_package import CLOCK_SKEW, KeyPackage, KeyPackagePrivateKeys
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, NodeIndex
from mls.tree_nodes import Node, ParentNode
from mls.treekem import (
    CreatedUpdatePath,
    TreeKEMPrivateKey,
    create_update_path,
    node_key_pair,
    process_update_path,
)

GROUP_ID = b"tree-test-group"
NOW = 1_800_000_000
LIFETIME = Lifetime(NOW - CLOCK_SKEW, NOW + 30 * 24 * 3600)


def deterministic_random(seed: bytes) -> Callable[[int], bytes]:
    """A reproducible byte source (SHA-256 in counter mode) for tests."""
    counter = [0]

    def draw(n: int) -> bytes:
        out = b""
        while len(out) < n:
            counter[0] += 1
            out += hashlib.sha256(seed + counter[0].to_bytes(8, "big")).digest()
        return out[:n]

    return draw


def capabilities(
    *, credentials: tuple[int, ...] = (CredentialType.BASIC,), extensions: tuple[int, ...] = ()
) -> Capabilities:
    return Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(1, 2, 3, 4, 5, 6, 7),
        extensions=extensions,
        proposals=(),
        credentials=credentials,
    )


@dataclass
class Identity:
    """A client's long-term signature key and the HPKE key of its next leaf, which
    :meth:`KeyPackage.generate` derives from ``seed``."""

    name: bytes
    signature_priv: bytes = field(repr=False)
    signature_pub: bytes
    seed: bytes = field(repr=False)
    encryption_priv: bytes = field(repr=False)
    encryption_pub: bytes


def _generate(
    suite: Suite,
    ident_name: bytes,
    signature_priv: bytes,
    seed: bytes,
    *,
    caps: Capabilities | None = None,
    lifetime: Lifetime = LIFETIME,
    extensions: tuple[Extension, ...] = (),
    credential: Credential | None = None,
) -> tuple[KeyPackage, KeyPackagePrivateKeys]:
    return KeyPackage.generate(
        suite,
        signature_priv,
        Credential.basic(ident_name) if credential is None else credential,
        capabilities=capabilities() if caps is None else caps,
        now=lifetime.not_before + CLOCK_SKEW,
        lifetime=lifetime.not_after - lifetime.not_before,
        leaf_extensions=extensions,
        random=deterministic_random(seed),
    )


def make_identity(suite: Suite, name: bytes, rand: Callable[[int], bytes]) -> Identity:
    sig_priv, sig_pub = suite.generate_signature_key_pair()
    seed = rand(suite.hash_length)
    package, private = _generate(suite, name, sig_priv, seed)
    return Identity(
        name, sig_priv, sig_pub, seed, private.encryption_priv, package.leaf_node.encryption_key
    )


def key_package_leaf(
    suite: Suite,
    ident: Identity,
    *,
    caps: Capabilities | None = None,
    lifetime: Lifetime = LIFETIME,
    extensions: tuple[Extension, ...] = (),
    credential: Credential | None = None,
) -> LeafNode:
    """The signed ``key_package`` leaf :meth:`KeyPackage.generate` makes for ``ident``. A test
    that replaced ``ident.encryption_pub`` (to reuse another member's key) gets a leaf carrying
    that key, signed again: a deliberately broken leaf."""
    package, _ = _generate(
        suite,
        ident.name,
        ident.signature_priv,
        ident.seed,
        caps=caps,
        lifetime=lifetime,
        extensions=extensions,
        credential=credential,
    )
    leaf = package.leaf_node
    if leaf.encryption_key != ident.encryption_pub:
        leaf = dataclasses.replace(leaf, encryption_key=ident.encryption_pub)
        leaf = leaf.signed(suite, ident.signature_priv)
    return leaf


def resign(
    suite: Suite, leaf: LeafNode, signature_priv: bytes, index: int, **changes: object
) -> LeafNode:
    """``leaf`` with ``changes`` applied and a fresh signature (for its source's context)."""
    changed = dataclasses.replace(leaf, **changes)  # type: ignore[arg-type]
    if changed.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
        return changed.signed(suite, signature_priv)
    return changed.signed(suite, signature_priv, group_id=GROUP_ID, leaf_index=index)


@dataclass
class Member:
    ident: Identity
    private: TreeKEMPrivateKey


class TreeGroup:
    """A group reduced to its ratchet tree plus every member's private view of it."""

    def __init__(
        self, suite_id: int = 1, seed: bytes = b"seed", caps: Capabilities | None = None
    ) -> None:
        self.suite = get_suite(suite_id)
        self.caps = caps
        self.rand = deterministic_random(seed)
        self.epoch = 0
        self.names = 0
        founder = self.new_identity()
        self.tree = RatchetTree.create(self.suite, key_package_leaf(self.suite, founder, caps=caps))
        self.members: dict[int, Member] = {
            0: Member(founder, TreeKEMPrivateKey(self.suite, LeafIndex(0), founder.encryption_priv))
        }
        self.pending_adds: list[int] = []
        self.last_commit_secret: bytes | None = None

    # -- helpers -------------------------------------------------------------------------

    def new_identity(self) -> Identity:
        self.names += 1
        return make_identity(self.suite, b"member-%d" % self.names, self.rand)

    def context(self, tree: RatchetTree | None = None) -> GroupContext:
        return GroupContext(
            version=ProtocolVersion.MLS10,
            cipher_suite=int(self.suite.id),
            group_id=GROUP_ID,
            epoch=self.epoch,
            tree_hash=(self.tree if tree is None else tree).tree_hash(),
            confirmed_transcript_hash=b"\x00" * self.suite.hash_length,
            extensions=(),
        )

    # -- proposals (applied to the tree right away; committed by commit()) ------------------

    def add(self, leaf: LeafNode | None = None, ident: Identity | None = None) -> int:
        """Adds a member from a KeyPackage leaf (RFC 9420 §12.1.1); returns its leaf index."""
        ident = self.new_identity() if ident is None else ident
        leaf = key_package_leaf(self.suite, ident, caps=self.caps) if leaf is None else leaf
        index = self.tree.add_leaf(leaf)
        self.members[index] = Member(
            ident, TreeKEMPrivateKey(self.suite, index, ident.encryption_priv)
        )
        self.pending_adds.append(index)
        return index

    def update(self, index: int) -> None:
        """The member at ``index`` replaces its leaf with a fresh ``update`` leaf (§12.1.2)."""
        member = self.members[index]
        old = self.tree.leaf_node(LeafIndex(index))
        assert old is not None
        enc_priv, enc_pub = self.suite.hpke.derive_key_pair(self.rand(self.suite.hash_length))
        leaf = resign(
            self.suite,
            old,
            member.ident.signature_priv,
            index,
            encryption_key=enc_pub,
            leaf_node_source=LeafNodeSource.UPDATE,
            lifetime=None,
            parent_hash=None,
        )
        self.tree.update_leaf(LeafIndex(index), leaf)
        member.private = dataclasses.replace(member.private, encryption_priv=enc_priv)
        self._forget_blanks()

    def remove(self, index: int) -> None:
        """Removes the member at ``index`` (RFC 9420 §12.1.3)."""
        self.tree.remove_leaf(LeafIndex(index))
        del self.members[index]
        self.pending_adds = [i for i in self.pending_adds if i != index]
        self._forget_blanks()

    def _forget_blanks(self) -> None:
        for m in self.members.values():
            m.private = m.private.without_blanks(self.tree)

    # -- commit ----------------------------------------------------------------------------

    def commit(self, committer: int, *, process: bool = True) -> CreatedUpdatePath:
        """``committer`` commits the pending proposals with a path; every other member
        processes it (when ``process``), new members join with the Welcome path secret."""
        self.epoch += 1
        before = self.tree.copy()
        added = list(self.pending_adds)
        context = self.context(before)
        sender = LeafIndex(committer)
        member = self.members[committer]
        created = create_update_path(
            self.tree,
            sender,
            context,
            member.ident.signature_priv,
            excluded=added,
            random=self.rand,
        )
        member.private = created.private_key
        if process:
            for index, other in self.members.items():
                if index == committer:
                    continue
                if index in added:
                    other.private = TreeKEMPrivateKey.for_joiner(
                        self.tree,
                        LeafIndex(index),
                        other.private.encryption_priv,
                        sender,
                        created.path_secret_for(LeafIndex(index)),
                    )
                    continue
                mine = before.copy()
                done = process_update_path(
                    mine, sender, created.update_path, context, other.private, excluded=added
                )
                assert done.commit_secret == created.commit_secret
                assert mine == self.tree
                other.private = done.private_key
        self.pending_adds = []
        self.last_commit_secret = created.commit_secret
        return created

    def check_private_views(self) -> None:
        for m in self.members.values():
            m.private.check_against(self.tree)


def get_tree(
    n: int, suite_id: int = 1, seed: bytes = b"seed", caps: Capabilities | None = None
) -> TreeGroup:
    """The tree-validation vectors' ``get_tree(n)``: leaf ``i`` adds leaf ``i + 1`` with a
    commit, for ``i`` in ``0 .. n - 2``."""
    group = TreeGroup(suite_id, seed, caps)
    for i in range(n - 1):
        group.add()
        group.commit(i)
    return group


def with_parent(tree: RatchetTree, x: int, **changes: object) -> None:
    """Replaces parent node ``x`` of ``tree`` by a copy with ``changes``."""
    parent = tree.parent_node(NodeIndex(x))
    assert parent is not None
    tree.set_node(NodeIndex(x), Node.parent(dataclasses.replace(parent, **changes)))  # type: ignore[arg-type]


def fresh_public_key(suite: Suite, seed: bytes) -> bytes:
    return node_key_pair(
        suite, hashlib.sha256(seed).digest()[: suite.hash_length].ljust(suite.hash_length, b"\0")
    )[1]


__all__ = [
    "GROUP_ID",
    "NOW",
    "Identity",
    "Member",
    "Node",
    "ParentNode",
    "TreeGroup",
    "deterministic_random",
    "fresh_public_key",
    "get_tree",
    "key_package_leaf",
    "make_identity",
    "resign",
    "with_parent",
]
