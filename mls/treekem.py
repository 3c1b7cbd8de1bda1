"""TreeKEM: update paths and encrypting path secrets to copath resolutions (RFC 9420 §7.4-7.6).

A Commit's :class:`UpdatePath` carries the committer's new leaf and, for each node of its
filtered direct path, the node's new public key and the path secret HPKE-encrypted to every
node of the matching copath resolution::

    UpdatePath
      leaf_node                      new committer leaf (source commit)
      nodes[i]                       i-th node of the filtered direct path
        encryption_key               its new HPKE public key
        encrypted_path_secret[j]     path secret sealed to the j-th resolution node

The path secrets form a chain from a fresh leaf secret up the filtered direct path; each node's
key pair comes from its path secret, and the commit secret is one step past the last::

    leaf_secret ─"node"─> leaf key pair
        │"path"
    path_secret[0] ─"node"─> key pair of fdp[0]      (encrypted to resolution(copath[0]))
        │"path"
       ...
    path_secret[n-1] ─"node"─> key pair of fdp[n-1]
        │"path"
    commit_secret

:func:`create_update_path` builds a path (committer), sealing the secrets with
:func:`encrypt_path_secrets`; :func:`merge_update_path` checks and merges its public part;
:func:`process_update_path` also decrypts the one ciphertext meant for the receiver and
re-derives the rest (COM-05, COM-06, COM-08). :class:`TreeKEMPrivateKey` is a
member's private view of the tree.

Contract: the functions that take a tree change it only when they succeed, and private views
are immutable values, so a rejected Commit leaves no trace (ST-01).
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from .codec import Opaque, Struct, Vector
from .crypto.ciphersuite import Suite
from .crypto.labels import decrypt_with_label, derive_secret, encrypt_with_label
from .errors import UsageError, ValidationError, VerificationError
from .group_context import GroupContext
from .leaf_node import LeafNode, LeafNodeSource
from .ratchet_tree import RatchetTree
from .tree_math import (
    LeafIndex,
    NodeIndex,
    common_ancestor,
    direct_path,
    is_leaf_in_subtree,
    node_of,
)
from .tree_validation import RULE_LEAF_SIGNATURE, RULE_LEAF_SOURCE


@dataclass(frozen=True)
class HPKECiphertext(Struct):
    """An HPKE ciphertext: the KEM output and the AEAD ciphertext (RFC 9420 §7.6)."""

    kem_output: Annotated[bytes, Opaque]
    ciphertext: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class UpdatePathNode(Struct):
    """One node of an update path (RFC 9420 §7.6)."""

    encryption_key: Annotated[bytes, Opaque]
    encrypted_path_secret: Annotated[tuple[HPKECiphertext, ...], Vector(HPKECiphertext)]


@dataclass(frozen=True)
class UpdatePath(Struct):
    """A committer's new leaf and path (RFC 9420 §7.6)."""

    leaf_node: LeafNode
    nodes: Annotated[tuple[UpdatePathNode, ...], Vector(UpdatePathNode)]


# Struct declarations above; tree logic below (owned by the tree helper).


# ============================================================================================
# Path secrets and node keys (RFC 9420 §7.4)

PATH_LABEL = b"path"  # RFC 9420 §7.4: path_secret[n] = DeriveSecret(path_secret[n-1], "path")
NODE_LABEL = b"node"  # RFC 9420 §7.4: node_secret[n] = DeriveSecret(path_secret[n], "node")
UPDATE_PATH_NODE_LABEL = b"UpdatePathNode"  # RFC 9420 §7.6: EncryptWithLabel label

RULE_SENDER = "§12.4.2/path-sender"
RULE_PATH_LENGTH = "§7.6/path-node-count"
RULE_CIPHERTEXT_COUNT = "§7.6/ciphertext-count"
RULE_NEW_ENCRYPTION_KEY = "§12.4.2/new-encryption-key"
RULE_PATH_KEY_UNIQUE = "§12.4.2/path-key-unique"
RULE_LEAF_PARENT_HASH = "§7.9.2/leaf-parent-hash"
RULE_DERIVED_PUBLIC_KEY = "§7.5/derived-public-key"
RULE_PRIVATE_KEY_MISMATCH = "§7.5/private-key-mismatch"
RULE_PATH_SECRET_LENGTH = "§7.4/path-secret-length"  # noqa: S105 - a rule name


def _check_path_secret(suite: Suite, path_secret: bytes) -> None:
    """A path secret from the wire is ``KDF.Nh`` bytes (RFC 9420 §7.4, §12.4.1); a shorter one
    would otherwise reach HKDF-Expand as a too-short PRK.

    Raises:
        ValidationError: rule :data:`RULE_PATH_SECRET_LENGTH`.
    """
    if len(path_secret) != suite.hash_length:
        raise ValidationError(
            RULE_PATH_SECRET_LENGTH,
            f"path secret of {len(path_secret)} bytes, not {suite.hash_length}",
        )


def next_path_secret(suite: Suite, path_secret: bytes) -> bytes:
    """The path secret of the next node up: ``DeriveSecret(path_secret, "path")`` (§7.4)."""
    return derive_secret(suite, path_secret, PATH_LABEL)


def node_key_pair(suite: Suite, path_secret: bytes) -> tuple[bytes, bytes]:
    """The node's HPKE ``(private, public)`` key pair:
    ``DeriveKeyPair(DeriveSecret(path_secret, "node"))`` (RFC 9420 §7.4)."""
    return suite.hpke.derive_key_pair(derive_secret(suite, path_secret, NODE_LABEL))


@dataclass(frozen=True, eq=False)
class TreeKEMPrivateKey:
    """One member's private view of the tree (RFC 9420 §4.2): its leaf's HPKE private key and
    the path secret of every parent node whose private key it knows.

    Immutable: the methods return new objects, so a failed Commit leaves the old one intact.
    Compared by identity only (no ``==`` over secrets).

    Attributes:
        suite: the group's cipher suite.
        leaf_index: the member's leaf.
        encryption_priv: the HPKE private key of the member's leaf.
        path_secrets: node index -> path secret, for parents on the member's direct path.
    """

    suite: Suite
    leaf_index: LeafIndex
    encryption_priv: bytes = field(repr=False)
    path_secrets: Mapping[NodeIndex, bytes] = field(default_factory=dict, repr=False)

    def private_key(self, x: NodeIndex) -> bytes | None:
        """The HPKE private key of node ``x`` if this member knows it."""
        if x == node_of(self.leaf_index):
            return self.encryption_priv
        secret = self.path_secrets.get(x)
        return None if secret is None else node_key_pair(self.suite, secret)[0]

    def with_path_secrets(self, secrets: Mapping[NodeIndex, bytes]) -> TreeKEMPrivateKey:
        """A copy that also knows (or now knows differently) the nodes of ``secrets``."""
        merged = dict(self.path_secrets)
        merged.update(secrets)
        return dataclasses.replace(self, path_secrets=merged)

    def without_blanks(self, tree: RatchetTree) -> TreeKEMPrivateKey:
        """A copy that forgets the keys of nodes now blank in ``tree`` (RFC 9420 §7.5 asks
        to delete replaced key material)."""
        kept = {
            x: s
            for x, s in self.path_secrets.items()
            if x < tree.node_count and not tree.is_blank(x)
        }
        return dataclasses.replace(self, path_secrets=kept)

    def check_against(self, tree: RatchetTree) -> None:
        """Checks that every key this member holds matches the public key in ``tree``.

        Raises:
            VerificationError: rule :data:`RULE_PRIVATE_KEY_MISMATCH`.
        """
        leaf = tree.leaf_node(self.leaf_index)
        if leaf is None or self.suite.hpke.public_key(self.encryption_priv) != leaf.encryption_key:
            raise VerificationError(RULE_PRIVATE_KEY_MISMATCH, f"leaf {self.leaf_index}")
        for x, secret in self.path_secrets.items():
            if x >= tree.node_count or tree.public_key(x) != node_key_pair(self.suite, secret)[1]:
                raise VerificationError(RULE_PRIVATE_KEY_MISMATCH, f"node {x}")

    @classmethod
    def for_joiner(
        cls,
        tree: RatchetTree,
        leaf_index: LeafIndex,
        encryption_priv: bytes,
        committer: LeafIndex,
        path_secret: bytes | None,
    ) -> TreeKEMPrivateKey:
        """The private view of a member joining by Welcome (RFC 9420 §12.4.3.1).

        ``path_secret`` (from GroupSecrets) belongs to the lowest common ancestor of the new
        member and the committer; the secrets of the committer's filtered direct path above
        it follow by ``DeriveSecret(., "path")``.

        Raises:
            VerificationError: a derived public key differs from the tree's (WEL-12), rule
                :data:`RULE_DERIVED_PUBLIC_KEY`.
            ValidationError: ``committer`` (the GroupInfo signer, from the wire) is not a
                non-blank leaf of ``tree`` other than ``leaf_index`` (:data:`RULE_SENDER`), or
                ``path_secret`` is not ``KDF.Nh`` bytes (:data:`RULE_PATH_SECRET_LENGTH`).
            UsageError: ``leaf_index`` is not a non-blank leaf of ``tree``.
        """
        key = cls(tree.suite, leaf_index, encryption_priv, {})
        if path_secret is None:
            return key
        if tree.leaf_node(leaf_index) is None:
            raise UsageError(f"leaf {leaf_index} is blank")
        # VALIDATION TREE-01: a leaf index from the wire is range-checked before tree math
        if not 0 <= committer < tree.n_leaves or tree.leaf_node(committer) is None:
            raise ValidationError(RULE_SENDER, f"committer leaf {committer} is not a member")
        if leaf_index == committer:
            raise ValidationError(RULE_SENDER, "a joiner is not its own committer")
        _check_path_secret(tree.suite, path_secret)
        ancestor = common_ancestor(node_of(leaf_index), node_of(committer))
        secrets: dict[NodeIndex, bytes] = {}
        secret = path_secret
        started = False
        for p, _ in tree.filtered_direct_path(committer):
            if p == ancestor:
                started = True
            if not started:
                continue
            if tree.public_key(p) != node_key_pair(tree.suite, secret)[1]:
                raise VerificationError(
                    RULE_DERIVED_PUBLIC_KEY, f"path secret does not match node {p}"
                )
            secrets[p] = secret
            secret = next_path_secret(tree.suite, secret)
        if not started:
            raise VerificationError(
                RULE_DERIVED_PUBLIC_KEY, "the common ancestor is not on the committer's path"
            )
        return dataclasses.replace(key, path_secrets=secrets)


# ============================================================================================
# Creating an UpdatePath (RFC 9420 §7.4-7.6, §12.4.1)


@dataclass(frozen=True)
class CreatedUpdatePath:
    """What :func:`create_update_path` produced.

    Attributes:
        update_path: the path to put in the Commit.
        commit_secret: ``DeriveSecret`` of the last path secret (RFC 9420 §12.4.1).
        private_key: the committer's new private view of the tree.
        group_context: the provisional GroupContext (new tree hash) the secrets were
            encrypted under.
        path_secrets: the path secret of each node of the filtered direct path (for Welcome).
    """

    update_path: UpdatePath
    commit_secret: bytes = field(repr=False)
    private_key: TreeKEMPrivateKey
    group_context: GroupContext
    path_secrets: Mapping[NodeIndex, bytes] = field(repr=False)

    def path_secret_for(self, new_member: LeafIndex) -> bytes | None:
        """The path secret a Welcome gives ``new_member``: the one of the lowest common
        ancestor of it and the committer (RFC 9420 §12.4.3)."""
        ancestor = common_ancestor(node_of(new_member), node_of(self.private_key.leaf_index))
        return self.path_secrets.get(ancestor)


def create_update_path(
    tree: RatchetTree,
    leaf_index: LeafIndex,
    group_context: GroupContext,
    signature_priv: bytes,
    *,
    leaf_node: LeafNode | None = None,
    excluded: Collection[int] = (),
    random: Callable[[int], bytes] = os.urandom,
) -> CreatedUpdatePath:
    """Refreshes the committer's path in ``tree`` and builds the UpdatePath (RFC 9420 §7.4-7.6).

    ``tree`` is the tree after the Commit's proposals; it is changed in place into the new
    epoch's tree (leaf re-signed with source ``commit``, filtered direct path re-keyed, parent
    hashes set).

    Args:
        tree: the provisional tree; changed in place.
        leaf_index: the committer's leaf.
        group_context: the provisional GroupContext; its ``tree_hash`` is replaced by the
            new tree's hash before it is used as encryption context.
        signature_priv: the key the new leaf is signed with.
        leaf_node: the leaf to start from (credential, capabilities, extensions, signature
            key); defaults to the committer's current leaf. Its encryption key, source,
            lifetime, parent hash and signature are replaced.
        excluded: leaves added by this Commit; nothing is encrypted to them (§7.6).
        random: the source of fresh secrets (tests inject a deterministic one).

    Raises:
        UsageError: no leaf to start from.
    """
    suite = tree.suite
    template = tree.leaf_node(leaf_index) if leaf_node is None else leaf_node
    if template is None:
        raise UsageError(f"leaf {leaf_index} is blank and no leaf_node was given")
    leaf_secret = random(suite.hash_length)
    leaf_priv, leaf_pub = node_key_pair(suite, leaf_secret)
    path = tree.filtered_direct_path(leaf_index)
    secrets: list[bytes] = []
    secret = leaf_secret
    for _ in path:
        secret = next_path_secret(suite, secret)
        secrets.append(secret)
    commit_secret = next_path_secret(suite, secret)
    public_keys = [node_key_pair(suite, s)[1] for s in secrets]
    snapshot = tree.snapshot_path(leaf_index)
    try:
        _, leaf_parent_hash = tree.set_path(leaf_index, public_keys)
        new_leaf = dataclasses.replace(
            template,
            encryption_key=leaf_pub,
            leaf_node_source=LeafNodeSource.COMMIT,
            lifetime=None,
            parent_hash=leaf_parent_hash,
            signature=b"",
        ).signed(suite, signature_priv, group_id=group_context.group_id, leaf_index=leaf_index)
        tree.set_leaf(leaf_index, new_leaf)
        context = dataclasses.replace(group_context, tree_hash=tree.tree_hash())
        nodes = encrypt_path_secrets(tree, path, public_keys, secrets, context, excluded)
    except BaseException:
        tree.restore(snapshot)
        raise
    by_node = {p: s for (p, _), s in zip(path, secrets, strict=True)}
    return CreatedUpdatePath(
        update_path=UpdatePath(new_leaf, nodes),
        commit_secret=commit_secret,
        private_key=TreeKEMPrivateKey(suite, leaf_index, leaf_priv, by_node),
        group_context=context,
        path_secrets=by_node,
    )


def encrypt_path_secrets(
    tree: RatchetTree,
    path: Sequence[tuple[NodeIndex, NodeIndex]],
    public_keys: Sequence[bytes],
    path_secrets: Sequence[bytes],
    group_context: GroupContext,
    excluded: Collection[int] = (),
) -> tuple[UpdatePathNode, ...]:
    """The UpdatePathNodes of a path (RFC 9420 §7.6): for the i-th ``(parent, copath child)``
    of ``path``, ``public_keys[i]`` and ``path_secrets[i]`` sealed with EncryptWithLabel
    ("UpdatePathNode", ``group_context``) to each node of the copath child's resolution in
    ``tree``, the leaves in ``excluded`` (added by this Commit) left out.

    ``tree`` is the merged tree and ``group_context`` the provisional context carrying its
    tree hash.
    """
    suite = tree.suite
    context = group_context.encode()
    nodes = []
    for (_, s), key, path_secret in zip(path, public_keys, path_secrets, strict=True):
        ciphertexts = []
        for r in tree.resolution(s, excluded):
            target = tree.public_key(r)
            assert target is not None  # resolutions hold non-blank nodes only
            kem_output, ciphertext = encrypt_with_label(
                suite, target, UPDATE_PATH_NODE_LABEL, context, path_secret
            )
            ciphertexts.append(HPKECiphertext(kem_output, ciphertext))
        nodes.append(UpdatePathNode(key, tuple(ciphertexts)))
    return tuple(nodes)


# ============================================================================================
# Receiving an UpdatePath (RFC 9420 §7.5, §12.4.2)


def merge_update_path(
    tree: RatchetTree,
    sender: LeafIndex,
    update_path: UpdatePath,
    group_id: bytes,
    *,
    excluded: Collection[int] = (),
    new_sender: bool = False,
) -> list[tuple[NodeIndex, NodeIndex]]:
    """Checks a received UpdatePath against ``tree`` and merges its public part
    (RFC 9420 §7.5, §7.6, §12.4.2). No private key is needed (a tree follower can use it).

    Checks, in order: the sender is a non-blank leaf (blank for ``new_sender``, i.e. an
    external commit); the leaf has source ``commit``, a fresh encryption key and a valid
    signature for this group and index; one path node per filtered-direct-path node (COM-05)
    and one ciphertext per copath-resolution node minus ``excluded`` (COM-06); every key of
    the path a valid HPKE public key and none already in the tree; the leaf's ``parent_hash``
    is the one the path implies.
    Everything is checked before ``tree`` changes, so on error it is unchanged.

    The other §7.3 leaf checks (capabilities, credential, uniqueness of the signature key)
    are :func:`mls.tree_validation.validate_leaf_node`'s; the Commit logic runs them.

    Returns:
        the sender's filtered direct path as ``(parent, copath child)`` pairs.

    Raises:
        ValidationError: ``.rule`` is one of the ``RULE_*`` constants of this module,
            ``RULE_LEAF_SOURCE``/``RULE_LEAF_SIGNATURE`` of :mod:`mls.tree_validation`, or
            ``§5.1.1/public-key-encoding`` (a key that is not valid for the suite).
    """
    suite = tree.suite
    if not 0 <= sender < tree.n_leaves:
        raise ValidationError(RULE_SENDER, f"sender leaf {sender} outside {tree.n_leaves} leaves")
    current = tree.leaf_node(sender)
    if (current is None) != new_sender:
        raise ValidationError(RULE_SENDER, f"sender leaf {sender} blank: {current is None}")
    leaf = update_path.leaf_node
    # RFC 9420 §7.3, §12.4.2: an UpdatePath leaf has source commit (VALIDATION LN-08)
    if leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise ValidationError(RULE_LEAF_SOURCE, f"path leaf source {leaf.leaf_node_source.name}")
    # RFC 9420 §12.4.2: the committer's leaf gets a new encryption key (LN-09)
    if current is not None and current.encryption_key == leaf.encryption_key:
        raise ValidationError(RULE_NEW_ENCRYPTION_KEY, "path leaf reuses the old encryption key")
    # RFC 9420 §7.3: the leaf's signature covers group_id and the sender's index (LN-02)
    try:
        leaf.verify_signature(suite, group_id=group_id, leaf_index=sender)
    except VerificationError as exc:
        raise VerificationError(RULE_LEAF_SIGNATURE, "path leaf signature invalid") from exc
    path = tree.filtered_direct_path(sender)
    # RFC 9420 §7.6: one UpdatePathNode per node of the filtered direct path (COM-05)
    if len(update_path.nodes) != len(path):
        raise ValidationError(
            RULE_PATH_LENGTH, f"{len(update_path.nodes)} path nodes for a path of {len(path)}"
        )
    for i, ((_, s), node) in enumerate(zip(path, update_path.nodes, strict=True)):
        # RFC 9420 §7.6: one ciphertext per copath resolution node, new leaves excluded (COM-06)
        expected = len(tree.resolution(s, excluded))
        if len(node.encrypted_path_secret) != expected:
            raise ValidationError(
                RULE_CIPHERTEXT_COUNT,
                f"path node {i}: {len(node.encrypted_path_secret)} ciphertexts for {expected}",
            )
    keys = [leaf.encryption_key, *(node.encryption_key for node in update_path.nodes)]
    # RFC 9420 §5.1.1, §7.3: every key of the path is a valid HPKE public key for the suite
    # (CRD-04); a bad one below our common ancestor is never decrypted to, and would only fail
    # later, when we encrypt to it in our own Commit
    for k in keys:
        suite.check_hpke_public_key(k)
    # RFC 9420 §12.4.2: no public key of the path already appears in the tree (TREE-10)
    if len(set(keys)) != len(keys) or any(tree.contains_encryption_key(k) for k in keys):
        raise ValidationError(RULE_PATH_KEY_UNIQUE, "a path key is already in use")
    public_keys = [node.encryption_key for node in update_path.nodes]
    _, leaf_parent_hash = tree.path_parent_hashes(path, public_keys)
    # RFC 9420 §7.9.2: the leaf signed the parent hash the merged path produces
    if leaf.parent_hash is None or not hmac.compare_digest(leaf.parent_hash, leaf_parent_hash):
        raise VerificationError(RULE_LEAF_PARENT_HASH, "path leaf parent_hash does not match")
    tree.set_path(sender, public_keys)
    tree.set_leaf(sender, leaf)
    return path


@dataclass(frozen=True)
class ProcessedUpdatePath:
    """What :func:`process_update_path` produced.

    Attributes:
        commit_secret: ``DeriveSecret`` of the last path secret (RFC 9420 §12.4.2).
        private_key: the receiver's new private view of the tree.
        group_context: the provisional GroupContext used for decryption.
        decrypted_node: the node whose path secret was decrypted.
        path_secret: that path secret.
    """

    commit_secret: bytes = field(repr=False)
    private_key: TreeKEMPrivateKey
    group_context: GroupContext
    decrypted_node: NodeIndex
    path_secret: bytes = field(repr=False)


def process_update_path(
    tree: RatchetTree,
    sender: LeafIndex,
    update_path: UpdatePath,
    group_context: GroupContext,
    private_key: TreeKEMPrivateKey,
    *,
    excluded: Collection[int] = (),
    new_sender: bool = False,
) -> ProcessedUpdatePath:
    """Merges a received UpdatePath into ``tree`` and recovers the commit secret
    (RFC 9420 §7.5, §12.4.2).

    ``tree`` is the tree after the Commit's proposals; on success it becomes the new epoch's
    tree. On any error it is left exactly as it was.

    Args:
        tree: the provisional tree; changed in place on success.
        sender: the committer's leaf.
        update_path: the Commit's path.
        group_context: the provisional GroupContext; its ``tree_hash`` is replaced by the
            merged tree's hash before it is used as decryption context.
        private_key: the receiver's private view (before this Commit).
        excluded: leaves added by this Commit.
        new_sender: the sender is joining by external commit (its leaf is blank).

    Raises:
        ValidationError: any check of :func:`merge_update_path`; the decrypted path secret
            is not ``KDF.Nh`` bytes (:data:`RULE_PATH_SECRET_LENGTH`); or a derived public key
            differs from the path's (COM-08, :data:`RULE_DERIVED_PUBLIC_KEY`).
        DecryptionError: the ciphertext for the receiver does not decrypt.
        UsageError: the receiver is the sender, was added by this Commit, or holds no key
            for the resolution it must decrypt from.
    """
    suite = tree.suite
    me = private_key.leaf_index
    if me == sender:
        raise UsageError("the committer does not process its own UpdatePath")
    if me in excluded:
        raise UsageError("a member added by this Commit joins from the Welcome")
    # VALIDATION TREE-01: the sender index comes from the wire; check it before tree math
    if not 0 <= sender < tree.n_leaves:
        raise ValidationError(RULE_SENDER, f"sender leaf {sender} outside {tree.n_leaves} leaves")
    snapshot = tree.snapshot_path(sender)
    path = merge_update_path(
        tree, sender, update_path, group_context.group_id, excluded=excluded, new_sender=new_sender
    )
    try:
        context = dataclasses.replace(group_context, tree_hash=tree.tree_hash())
        # RFC 9420 §7.5: the path node whose copath child holds the receiver
        i = next((k for k, (_, c) in enumerate(path) if is_leaf_in_subtree(me, c)), None)
        if i is None:
            raise UsageError(f"leaf {me} is not below the sender's filtered direct path")
        resolution = tree.resolution(path[i][1], excluded)
        found = next(
            ((j, key) for j, r in enumerate(resolution) if (key := private_key.private_key(r))),
            None,
        )
        if found is None:
            raise UsageError(f"leaf {me} holds no private key in the copath resolution")
        j, priv = found
        ciphertext = update_path.nodes[i].encrypted_path_secret[j]
        path_secret = decrypt_with_label(
            suite,
            priv,
            UPDATE_PATH_NODE_LABEL,
            context.encode(),
            ciphertext.kem_output,
            ciphertext.ciphertext,
        )
        _check_path_secret(suite, path_secret)
        secrets: dict[NodeIndex, bytes] = {}
        secret = path_secret
        for k in range(i, len(path)):
            # RFC 9420 §7.5: the derived public key is the one sent (COM-08)
            if node_key_pair(suite, secret)[1] != update_path.nodes[k].encryption_key:
                raise VerificationError(
                    RULE_DERIVED_PUBLIC_KEY, f"path node {k}: derived key differs from the sent one"
                )
            secrets[path[k][0]] = secret
            secret = next_path_secret(suite, secret)
    except BaseException:
        tree.restore(snapshot)
        raise
    # RFC 9420 §7.5: the replaced secrets of the sender's direct path, and those of nodes the
    # Commit's proposals blanked, are deleted
    on_path = set(direct_path(node_of(sender), tree.n_leaves))
    kept = {x: v for x, v in private_key.path_secrets.items() if x not in on_path}
    kept.update(secrets)
    new_key = dataclasses.replace(private_key, path_secrets=kept).without_blanks(tree)
    return ProcessedUpdatePath(
        commit_secret=secret,
        private_key=new_key,
        group_context=context,
        decrypted_node=path[i][0],
        path_secret=path_secret,
    )
