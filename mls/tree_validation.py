"""Validating a ratchet tree and its leaves as a joiner must (RFC 9420 §7.3, §7.9.2, §12.4.3.1).

:func:`validate_ratchet_tree` runs every check a client makes before it uses a tree it did not
build itself (a tree from a Welcome's ``ratchet_tree`` extension or from out of band, VALIDATION
TREE-11), cheapest first::

    tree hash == GroupContext.tree_hash             TREE-02   §12.4.3.1
    unmerged_leaves: in range, sorted, non-blank,   TREE-06..08
      in the subtree, repeated on the way down
    signature / encryption keys unique              TREE-09, TREE-10
    every leaf valid (key encodings, signature,     TREE-05 = LN-01..LN-07, LN-11
      capabilities, lifetime policy, credential)
    parent keys valid encodings                     CRD-04
    every non-blank parent parent-hash valid        TREE-03, TREE-04   §7.9.2

:func:`validate_leaf_node` is the per-leaf part (RFC 9420 §7.3), also usable for a leaf arriving
in an Add, Update or UpdatePath: it adds the source check (LN-08), the fresh-key check of an
Update (LN-09) and the uniqueness of the leaf's keys against the other members (LN-10).

Lifetimes of *received* leaves are only RECOMMENDED to be checked (§7.3), and several official
test vectors carry leaves that expired in 2024, so the check is a :class:`LifetimePolicy` with an
injectable clock: vector runs pass :meth:`LifetimePolicy.disabled`.

Contract: each validator returns ``None`` or raises a :class:`~mls.errors.ValidationError` (a
:class:`~mls.errors.VerificationError` for hashes and signatures) whose ``.rule`` is one of the
``RULE_*`` constants here, of :mod:`mls.ratchet_tree`, or of :mod:`mls.leaf_node`. Nothing is
changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .credentials import Credential
from .errors import MLSError, UsageError, ValidationError, VerificationError
from .extensions import (
    DEFAULT_EXTENSION_TYPES,
    Extension,
    ExtensionType,
    RequiredCapabilities,
    extension_value,
    find_extension,
)
from .group_context import GroupContext
from .leaf_node import LeafNode, LeafNodeSource, check_lifetime, check_own_capabilities
from .ratchet_tree import RatchetTree, check_unmerged_leaves
from .tree_math import LeafIndex, NodeIndex, direct_path, is_leaf_in_subtree, left, node_of, right
from .tree_nodes import node_content

if TYPE_CHECKING:
    from .crypto.ciphersuite import Suite

RULE_TREE_HASH = "§12.4.3.1/tree-hash"
RULE_PARENT_HASH = "§7.9.2/parent-hash"
RULE_UNMERGED_LEAF = "§12.4.3.1/unmerged-leaf"
RULE_UNMERGED_INTERMEDIATE = "§12.4.3.1/unmerged-intermediate"
RULE_UNIQUE_SIGNATURE_KEY = "§7.3/unique-signature-key"
RULE_UNIQUE_ENCRYPTION_KEY = "§7.3/unique-encryption-key"
RULE_UNIQUE_PARENT_KEY = "§12.4.3.1/unique-parent-key"
RULE_LEAF_SIGNATURE = "§7.3/leaf-node-signature"
RULE_CREDENTIAL = "§5.3.1/credential"
RULE_REQUIRED_CAPABILITIES = "§7.3/required-capabilities"
RULE_CREDENTIAL_SUPPORT = "§7.3/credential-support"
RULE_MAX_LIFETIME = "§7.2/max-lifetime"
RULE_LIFETIME = "§7.3/lifetime"  # raised by mls.leaf_node.check_lifetime
RULE_LEAF_SOURCE = "§7.3/leaf-node-source"
RULE_UPDATE_KEY = "§7.3/update-encryption-key"

DEFAULT_MAX_LIFETIME = 366 * 24 * 3600
"""The longest ``not_after - not_before`` span accepted by default (RFC 9420 §7.2 makes the
application choose one): one year."""


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class LifetimePolicy:
    """How the ``lifetime`` of a received ``key_package`` leaf is checked (RFC 9420 §7.2, §7.3).

    Attributes:
        check_current_time: reject a leaf whose lifetime does not cover ``clock()``.
        max_lifetime: reject a leaf whose ``not_after - not_before`` exceeds this many
            seconds; ``None`` accepts any span.
        clock: the current time in seconds since the Unix epoch.
    """

    check_current_time: bool = True
    max_lifetime: int | None = DEFAULT_MAX_LIFETIME
    clock: Callable[[], int] = field(default=_now, compare=False)

    @classmethod
    def disabled(cls) -> LifetimePolicy:
        """No lifetime checks at all (official vector runs; see the module docstring)."""
        return cls(check_current_time=False, max_lifetime=None)

    def check(self, leaf: LeafNode) -> None:
        """Raises ValidationError (:data:`RULE_MAX_LIFETIME` or ``§7.3/lifetime``)."""
        if leaf.lifetime is None:
            return
        # RFC 9420 §7.2: the application's maximum total lifetime (VALIDATION LN-07)
        if self.max_lifetime is not None:
            span = leaf.lifetime.not_after - leaf.lifetime.not_before
            if span > self.max_lifetime:
                raise ValidationError(
                    RULE_MAX_LIFETIME, f"lifetime spans {span} s, over {self.max_lifetime} s"
                )
        # RFC 9420 §7.3: the current time lies within the lifetime (RECOMMENDED on receipt)
        if self.check_current_time:
            check_lifetime(leaf, self.clock())


CredentialValidator = Callable[[Credential, bytes], bool]
"""Asks the Authentication Service whether a credential may be used with a signature key
(RFC 9420 §5.3.1). Returning ``False`` or raising an :class:`~mls.errors.MLSError` rejects."""


# --------------------------------------------------------------------------------------------
# One leaf (RFC 9420 §7.3)


def _required_capabilities(extensions: Iterable[Extension]) -> RequiredCapabilities | None:
    ext = find_extension(extensions, ExtensionType.REQUIRED_CAPABILITIES)
    if ext is None:
        return None
    value = extension_value(ext)
    assert isinstance(value, RequiredCapabilities)
    return value


def _check_leaf_alone(
    suite: Suite,
    leaf: LeafNode,
    leaf_index: LeafIndex,
    group_id: bytes,
    required: RequiredCapabilities | None,
    lifetime_policy: LifetimePolicy,
    credential_validator: CredentialValidator | None,
    verify_signature: bool = True,
) -> None:
    """The checks of one leaf that need no other member (LN-01..03, LN-05..07, LN-11)."""
    # LN-01 (RFC 9420 §5.3.1, §7.3): the credential is acceptable to the AS
    if credential_validator is not None:
        try:
            accepted = credential_validator(leaf.credential, leaf.signature_key)
        except MLSError as exc:
            raise ValidationError(
                RULE_CREDENTIAL, f"leaf {leaf_index}: credential rejected"
            ) from exc
        if not accepted:
            raise ValidationError(RULE_CREDENTIAL, f"leaf {leaf_index}: credential rejected")
    # CRD-04 (RFC 9420 §5.1.1): the leaf's keys are valid encodings for the suite
    suite.check_hpke_public_key(leaf.encryption_key)
    suite.check_signature_public_key(leaf.signature_key)
    # LN-02 (RFC 9420 §7.3): the signature verifies; update/commit leaves bind group and index
    if verify_signature:
        try:
            leaf.verify_signature(suite, group_id=group_id, leaf_index=leaf_index)
        except VerificationError as exc:
            raise VerificationError(
                RULE_LEAF_SIGNATURE, f"leaf {leaf_index}: signature does not verify"
            ) from exc
    # LN-03 (RFC 9420 §7.3, §11.1): the group's required capabilities are supported
    if required is not None:
        caps = leaf.capabilities
        missing = [
            t
            for t in required.extension_types
            if t not in caps.extensions and t not in DEFAULT_EXTENSION_TYPES
        ]
        missing += [t for t in required.proposal_types if t not in caps.proposals and t > 7]
        missing += [t for t in required.credential_types if t not in caps.credentials]
        if missing:
            raise ValidationError(
                RULE_REQUIRED_CAPABILITIES, f"leaf {leaf_index} lacks required types {missing}"
            )
    # LN-05, LN-06 (RFC 9420 §7.2), no duplicate extension type (§13.4) and LN-11: no known
    # extension type the registry does not allow in a LeafNode (§17.3)
    check_own_capabilities(leaf)
    # LN-07 (RFC 9420 §7.2, §7.3): lifetime, per policy
    lifetime_policy.check(leaf)


def validate_leaf_node(
    suite: Suite,
    leaf: LeafNode,
    *,
    tree: RatchetTree,
    leaf_index: LeafIndex,
    group_context: GroupContext,
    expected_source: LeafNodeSource | None = None,
    replacing: LeafNode | None = None,
    lifetime_policy: LifetimePolicy | None = None,
    credential_validator: CredentialValidator | None = None,
    against_members: bool = True,
    signature_verified: bool = False,
) -> None:
    """Validates a LeafNode for use at ``leaf_index`` of ``tree`` (RFC 9420 §7.3).

    Args:
        suite: the group's cipher suite.
        leaf: the leaf to check.
        tree: the group's tree; the leaf's keys must not be used by any *other* leaf of it,
            and its credential type must be supported by every other member (and vice versa).
        leaf_index: where the leaf is (or will be); signed into update/commit leaves.
        group_context: supplies ``group_id`` and the ``required_capabilities`` extension.
        expected_source: the source the context demands (``key_package`` for a KeyPackage or
            Add, ``update`` for an Update, ``commit`` for an UpdatePath); ``None`` accepts any.
        replacing: for an Update or UpdatePath, the leaf being replaced; its encryption key
            must differ from the new one.
        lifetime_policy: how lifetimes are checked; the default policy checks both rules.
        credential_validator: the Authentication Service; ``None`` accepts every credential.
        against_members: also check key uniqueness and mutual credential support against
            the other leaves of ``tree`` (``O(n)``); a caller adding many leaves at once
            passes ``False`` and checks those with :class:`MemberIndex` instead.
        signature_verified: the caller already verified the leaf's signature (a KeyPackage
            leaf checked by ``validate_key_package``); it is not verified twice.

    Raises:
        ValidationError: ``.rule`` names the rule (``RULE_*``; signature failures are
            :class:`~mls.errors.VerificationError`).
    """
    policy = LifetimePolicy() if lifetime_policy is None else lifetime_policy
    # LN-08 (RFC 9420 §7.3): the source fits where the leaf appears
    if expected_source is not None and leaf.leaf_node_source != expected_source:
        raise ValidationError(
            RULE_LEAF_SOURCE,
            f"leaf source {leaf.leaf_node_source.name}, not {expected_source.name}",
        )
    # LN-09 (RFC 9420 §7.3): an Update carries a fresh encryption key
    if replacing is not None and replacing.encryption_key == leaf.encryption_key:
        raise ValidationError(RULE_UPDATE_KEY, "the new leaf reuses the old encryption key")
    _check_leaf_alone(
        suite,
        leaf,
        leaf_index,
        group_context.group_id,
        _required_capabilities(group_context.extensions),
        policy,
        credential_validator,
        verify_signature=not signature_verified,
    )
    if not against_members:
        return
    own_type = leaf.credential.credential_type
    for other_index, other in tree.leaves():
        if other_index == leaf_index:
            continue
        # LN-10 (RFC 9420 §7.3, §16.7): keys unique among the members
        if other.signature_key == leaf.signature_key:
            raise ValidationError(
                RULE_UNIQUE_SIGNATURE_KEY, f"signature key also used by leaf {other_index}"
            )
        if other.encryption_key == leaf.encryption_key:
            raise ValidationError(
                RULE_UNIQUE_ENCRYPTION_KEY, f"encryption key also used by leaf {other_index}"
            )
        # LN-04 (RFC 9420 §7.3): credential types mutually supported
        if own_type not in other.capabilities.credentials:
            raise ValidationError(
                RULE_CREDENTIAL_SUPPORT,
                f"leaf {other_index} does not support credential {own_type}",
            )
        if other.credential.credential_type not in leaf.capabilities.credentials:
            raise ValidationError(
                RULE_CREDENTIAL_SUPPORT,
                f"the leaf does not support credential type {other.credential.credential_type}",
            )


class MemberIndex:
    """The members' signature keys and credential types, for checking many new leaves
    against a tree in ``O(1)`` each (LN-04, LN-10; RFC 9420 §7.3, §12.1.1)."""

    def __init__(self, tree: RatchetTree) -> None:
        self._tree = tree
        self._signature_keys = {leaf.signature_key for _, leaf in tree.leaves()}
        self._in_use: set[int] = set()
        self._supported: set[int] | None = None
        for _, leaf in tree.leaves():
            self._note(leaf)

    def _note(self, leaf: LeafNode) -> None:
        self._in_use.add(leaf.credential.credential_type)
        caps = set(leaf.capabilities.credentials)
        self._supported = caps if self._supported is None else self._supported & caps

    def check(self, leaf: LeafNode) -> None:
        """LN-10 and LN-04 for ``leaf`` joining the members.

        Raises:
            ValidationError: the rule broken.
        """
        if leaf.signature_key in self._signature_keys:
            raise ValidationError(RULE_UNIQUE_SIGNATURE_KEY, "signature key already in use")
        if self._tree.contains_encryption_key(leaf.encryption_key):
            raise ValidationError(RULE_UNIQUE_ENCRYPTION_KEY, "encryption key already in use")
        own_type = leaf.credential.credential_type
        if self._supported is not None and own_type not in self._supported:
            raise ValidationError(
                RULE_CREDENTIAL_SUPPORT, f"a member does not support credential {own_type}"
            )
        missing = self._in_use.difference(leaf.capabilities.credentials)
        if missing:
            raise ValidationError(
                RULE_CREDENTIAL_SUPPORT, f"the leaf does not support credential {min(missing)}"
            )

    def add(self, leaf: LeafNode) -> None:
        """Counts ``leaf`` as a member (after it was added to the tree)."""
        self._signature_keys.add(leaf.signature_key)
        self._note(leaf)


# --------------------------------------------------------------------------------------------
# The whole tree (RFC 9420 §12.4.3.1)


def validate_ratchet_tree(
    tree: RatchetTree,
    group_context: GroupContext,
    *,
    lifetime_policy: LifetimePolicy | None = None,
    credential_validator: CredentialValidator | None = None,
) -> None:
    """Runs every check a joiner makes on a received tree (RFC 9420 §12.4.3.1; VALIDATION
    TREE-02..TREE-10). TREE-01 (shape) is :meth:`RatchetTree.from_nodes`'s.

    Args:
        tree: the tree, in the group's cipher suite.
        group_context: the context the tree must match (``tree_hash``, ``group_id``,
            ``required_capabilities``).
        lifetime_policy: how leaf lifetimes are checked (default: both checks, real clock).
        credential_validator: the Authentication Service; ``None`` accepts every credential.

    Raises:
        ValidationError: ``.rule`` names the first rule broken.
        UsageError: the tree's cipher suite is not the context's.
    """
    if tree.suite.id != group_context.cipher_suite:
        raise UsageError(
            f"tree in suite {int(tree.suite.id)}, context in suite {group_context.cipher_suite}"
        )
    # TREE-02 (RFC 9420 §12.4.3.1): the tree is the one the GroupContext commits to
    if tree.tree_hash() != group_context.tree_hash:
        raise VerificationError(RULE_TREE_HASH, "the tree hash differs from the GroupContext's")
    validate_unmerged_leaves(tree)
    validate_unique_keys(tree)
    validate_leaves(
        tree,
        group_context,
        lifetime_policy=LifetimePolicy() if lifetime_policy is None else lifetime_policy,
        credential_validator=credential_validator,
    )
    for _, parent in tree.parents():
        # CRD-04 (RFC 9420 §5.1.1): parent keys are valid HPKE public keys for the suite
        tree.suite.check_hpke_public_key(parent.encryption_key)
    validate_parent_hashes(tree)


def validate_unmerged_leaves(tree: RatchetTree) -> None:
    """TREE-06..08 (RFC 9420 §7.1, §12.4.3.1): every ``unmerged_leaves`` entry is a sorted,
    in-range, non-blank leaf under its parent, and is also listed at each non-blank parent
    between the leaf and that parent.

    Raises:
        ValidationError: :data:`RULE_UNMERGED_LEAF`, :data:`RULE_UNMERGED_INTERMEDIATE`,
            ``RULE_UNMERGED_SORTED`` or ``RULE_LEAF_INDEX`` of :mod:`mls.ratchet_tree`.
    """
    n = tree.n_leaves
    for p, parent in tree.parents():
        unmerged = parent.unmerged_leaves
        # in range (TREE-01) and strictly increasing (RFC 9420 §7.1, TREE-08)
        check_unmerged_leaves(p, unmerged, n)
        for leaf in unmerged:
            # RFC 9420 §12.4.3.1: a non-blank leaf that is a descendant (TREE-06)
            if not is_leaf_in_subtree(LeafIndex(leaf), p):
                raise ValidationError(RULE_UNMERGED_LEAF, f"node {p}: leaf {leaf} not below it")
            if tree.leaf_node(LeafIndex(leaf)) is None:
                raise ValidationError(
                    RULE_UNMERGED_LEAF, f"node {p}: unmerged leaf {leaf} is blank"
                )
            # RFC 9420 §12.4.3.1: listed at every non-blank node in between (TREE-07)
            for q in direct_path(node_of(LeafIndex(leaf)), n):
                if q == p:
                    break
                between = tree.parent_node(q)
                if between is not None and leaf not in between.unmerged_leaves:
                    raise ValidationError(
                        RULE_UNMERGED_INTERMEDIATE,
                        f"leaf {leaf} is unmerged at node {p} but not at node {q}",
                    )


def validate_unique_keys(tree: RatchetTree) -> None:
    """TREE-09, TREE-10 (RFC 9420 §7.3, §12.4.3.1, §16.7): no two leaves share a signature or
    encryption key, and no parent's encryption key appears in any other node.

    Raises:
        ValidationError: :data:`RULE_UNIQUE_SIGNATURE_KEY`, :data:`RULE_UNIQUE_ENCRYPTION_KEY`
            or :data:`RULE_UNIQUE_PARENT_KEY`.
    """
    signature_keys: dict[bytes, LeafIndex] = {}
    encryption_keys: dict[bytes, NodeIndex] = {}
    for leaf, node in tree.leaves():
        seen = signature_keys.setdefault(node.signature_key, leaf)
        if seen != leaf:
            raise ValidationError(
                RULE_UNIQUE_SIGNATURE_KEY, f"leaves {seen} and {leaf} share a signature key"
            )
        here = node_of(leaf)
        other = encryption_keys.setdefault(node.encryption_key, here)
        if other != here:
            raise ValidationError(
                RULE_UNIQUE_ENCRYPTION_KEY,
                f"leaves {other // 2} and {leaf} share an encryption key",
            )
    for p, parent in tree.parents():
        other = encryption_keys.setdefault(parent.encryption_key, p)
        if other != p:
            raise ValidationError(
                RULE_UNIQUE_PARENT_KEY, f"parent {p} reuses the encryption key of node {other}"
            )


def validate_leaves(
    tree: RatchetTree,
    group_context: GroupContext,
    *,
    lifetime_policy: LifetimePolicy,
    credential_validator: CredentialValidator | None = None,
) -> None:
    """TREE-05: every non-blank leaf passes the §7.3 checks (LN-01..LN-07, LN-11), with the
    mutual credential support of LN-04 checked once for the whole tree.

    Raises:
        ValidationError: the rule of the first failing check.
    """
    suite = tree.suite
    required = _required_capabilities(group_context.extensions)
    in_use: dict[int, LeafIndex] = {}
    leaves = list(tree.leaves())
    for index, leaf in leaves:
        _check_leaf_alone(
            suite,
            leaf,
            index,
            group_context.group_id,
            required,
            lifetime_policy,
            credential_validator,
        )
        in_use.setdefault(leaf.credential.credential_type, index)
    # LN-04 (RFC 9420 §7.3): every member supports every credential type in use
    for index, leaf in leaves:
        for ctype, user in in_use.items():
            if ctype not in leaf.capabilities.credentials:
                raise ValidationError(
                    RULE_CREDENTIAL_SUPPORT,
                    f"leaf {index} does not support credential type {ctype} of leaf {user}",
                )


def parent_hash_valid_children(tree: RatchetTree, p: NodeIndex) -> list[NodeIndex]:
    """The descendants ``D`` of non-blank parent ``p`` whose ``parent_hash`` is valid with
    respect to ``p`` (RFC 9420 §7.9.2): at most one per child of ``p``."""
    parent = tree.parent_node(p)
    if parent is None:
        return []
    found = []
    for c, s in ((left(p), right(p)), (right(p), left(p))):
        resolution = tree.resolution(c)
        unmerged_here = {
            node_of(LeafIndex(leaf))
            for leaf in parent.unmerged_leaves
            if is_leaf_in_subtree(LeafIndex(leaf), c)
        }
        # D is in resolution(C) and resolution(C) minus D is exactly P's unmerged leaves
        # under C: so D is the one resolution node that is not such an unmerged leaf.
        rest = [d for d in resolution if d not in unmerged_here]
        if len(rest) != 1 or not unmerged_here <= set(resolution):
            continue
        d = rest[0]
        node = tree.node(d)
        assert node is not None  # resolutions hold non-blank nodes only
        claimed = node_content(node).parent_hash  # None for a leaf not from a commit
        if claimed is not None and claimed == tree.parent_hash_of(p, s):
            found.append(d)
    return found


def validate_parent_hashes(tree: RatchetTree) -> None:
    """TREE-03, TREE-04 (RFC 9420 §7.9.2), top down: each non-blank parent has exactly one
    descendant whose ``parent_hash`` is valid with respect to it, so every parent lies on
    exactly one chain that ends at a leaf.

    Raises:
        VerificationError: :data:`RULE_PARENT_HASH`.
    """
    for p, _ in tree.parents():
        found = parent_hash_valid_children(tree, p)
        if len(found) != 1:
            raise VerificationError(
                RULE_PARENT_HASH,
                f"parent {p} is covered by {len(found)} parent-hash links, not exactly one",
            )
