"""Proposals: checking one, checking a Commit's list, and applying a list (RFC 9420 §12.1-12.3).

Three stages, each with its own rule identifiers (the ``RULE_*`` constants; the VALIDATION ids
they implement are in ``docs/validation.md``):

1. :func:`validate_proposal` checks one proposal against the current epoch, where it is
   received (a proposal message) and again where a Commit carries it (§12.1.1-12.1.8).
2. :func:`validate_proposal_list` checks the list a Commit carries as a whole (§12.2), for
   member commits and for external commits (§12.4.3.2).
3. :func:`apply_proposals` applies the list to a copy of the tree in the order of §12.3
   (GroupContextExtensions, then Updates, Removes, Adds, then PSKs are collected) and returns
   the provisional tree with what the Commit logic needs next.

Contract: nothing here changes the state it is given; :func:`apply_proposals` works on a copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..crypto.ciphersuite import get_suite
from ..errors import MLSError, ValidationError
from ..extensions import (
    DEFAULT_EXTENSION_TYPES,
    Extension,
    ExtensionSite,
    ExtensionType,
    RequiredCapabilities,
    duplicate_extension_type,
    extension_value,
    find_extension,
    misplaced_extension_type,
)
from ..framing import Sender, SenderType
from ..group_context import GroupContext
from ..key_package import KeyPackage, validate_key_package
from ..leaf_node import LeafNode, LeafNodeSource
from ..messages import ExternalInit, Proposal, ProposalType, ReInit
from ..psk_id import PreSharedKeyID, PSKType, ResumptionPSKUsage
from ..ratchet_tree import RatchetTree
from ..tree_math import LeafIndex
from ..tree_validation import MemberIndex, validate_leaf_node
from .config import GroupConfig
from .state import GroupState

RULE_UNKNOWN_PROPOSAL = "§12.2/unsupported-proposal-type"
RULE_REMOVED_LEAF = "§12.1.3/removed-leaf"
RULE_UPDATE_SENDER = "§12.1.2/update-sender"
RULE_KEY_PACKAGE = "§12.1.1/key-package"
RULE_ADD_VERSION = "§12.1.1/version"
RULE_ADD_GC_EXTENSION = "§12.1.1/group-context-extension-support"
RULE_PSK_NONCE = "§12.1.4/psk-nonce-length"
RULE_PSK_USAGE = "§12.1.4/resumption-usage"
RULE_REINIT_VERSION = "§12.1.5/reinit-version"
RULE_REINIT_SUITE = "§12.1.5/reinit-cipher-suite"
RULE_GCE_DUPLICATE = "§13.4/duplicate-extension"
RULE_GCE_SITE = "§17.3/group-context-extension-type"
RULE_GCE_SUPPORT = "§12.1.7/extension-support"
RULE_REQUIRED_CAPABILITIES = "§11.1/required-capabilities"
RULE_EXTERNAL_SENDERS = "§12.1.8.1/external-senders"
RULE_COMMITTER_UPDATE = "§12.2/committer-update"
RULE_COMMITTER_REMOVE = "§12.2/committer-remove"
RULE_SAME_LEAF = "§12.2/one-change-per-leaf"
RULE_DUPLICATE_ADD = "§12.2/duplicate-add"
RULE_ADD_MEMBER = "§12.2/add-existing-member"
RULE_DUPLICATE_PSK = "§12.2/duplicate-psk"
RULE_MULTIPLE_GCE = "§12.2/multiple-group-context-extensions"
RULE_REINIT_ALONE = "§12.2/reinit-alone"
RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT = "§12.2/external-init-in-member-commit"
RULE_EXTERNAL_INIT_COUNT = "§12.4.3.2/one-external-init"
RULE_EXTERNAL_PROPOSAL_TYPE = "§12.4.3.2/proposal-types"
RULE_EXTERNAL_REMOVES = "§12.4.3.2/one-remove"
RULE_EXTERNAL_BY_REFERENCE = "§12.4.3.2/by-reference"

KNOWN_PROPOSAL_TYPES = frozenset(ProposalType)
PATH_REQUIRED_TYPES = frozenset(
    {
        ProposalType.UPDATE,
        ProposalType.REMOVE,
        ProposalType.EXTERNAL_INIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)
"""Proposal types whose Commit must carry a path (RFC 9420 §12.4, §17.4 "Path" column)."""

EXTERNAL_SENDER_TYPES = frozenset(
    {
        ProposalType.ADD,
        ProposalType.REMOVE,
        ProposalType.PSK,
        ProposalType.REINIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)
"""Proposal types an external sender may send (RFC 9420 §12.1.8)."""


@dataclass(frozen=True)
class ResolvedProposal:
    """A proposal of a Commit with its sender and, if it came by reference, its ref."""

    proposal: Proposal
    sender: Sender
    ref: bytes | None = None


@dataclass
class AppliedProposals:
    """The outcome of :func:`apply_proposals`.

    Attributes:
        tree: the provisional tree (a copy; the state's tree is untouched).
        extensions: the GroupContext extensions of the next epoch.
        added: ``(leaf, KeyPackage)`` of each member added, in list order.
        removed: leaves removed.
        updated: leaves whose Update was applied.
        psks: the PSK ids, in list order.
        external_init: the ExternalInit, if any.
        reinit: the ReInit, if any.
        path_required: the Commit must carry a path.
    """

    tree: RatchetTree
    extensions: tuple[Extension, ...]
    added: list[tuple[LeafIndex, KeyPackage]] = field(default_factory=list)
    removed: list[LeafIndex] = field(default_factory=list)
    updated: list[LeafIndex] = field(default_factory=list)
    psks: list[PreSharedKeyID] = field(default_factory=list)
    external_init: ExternalInit | None = None
    reinit: ReInit | None = None
    path_required: bool = False


# --------------------------------------------------------------------------------------------
# One proposal (§12.1)


def validate_proposal(
    state: GroupState,
    proposal: Proposal,
    sender: Sender,
    config: GroupConfig,
    *,
    in_external_commit: bool = False,
) -> None:
    """Checks one proposal against the current epoch (RFC 9420 §12.1.1-12.1.8).

    Add proposals are checked here on their own (KeyPackage, version, suite); their fit with
    the other members is checked by :func:`apply_proposals` on the provisional tree.

    Raises:
        ValidationError: ``.rule`` names the rule.
    """
    ptype = proposal.proposal_type
    if ptype not in KNOWN_PROPOSAL_TYPES:
        # RFC 9420 §12.2, §13.2: a proposal type this member does not support (COM-23)
        raise ValidationError(RULE_UNKNOWN_PROPOSAL, f"proposal type {ptype}")
    if ptype == ProposalType.ADD:
        assert proposal.add is not None
        check_key_package(state, proposal.add.key_package, config)
    elif ptype == ProposalType.UPDATE:
        # RFC 9420 §12.1.2: only members send Updates (UPD-02)
        if sender.sender_type != SenderType.MEMBER or sender.leaf_index is None:
            raise ValidationError(RULE_UPDATE_SENDER, "an Update from a non-member")
        assert proposal.update is not None
        check_leaf_in_range(state.tree, sender.leaf_index, RULE_UPDATE_SENDER)
        validate_leaf_node(
            state.suite,
            proposal.update.leaf_node,
            tree=state.tree,
            leaf_index=LeafIndex(sender.leaf_index),
            group_context=state.group_context,
            expected_source=LeafNodeSource.UPDATE,
            replacing=state.tree.leaf_node(LeafIndex(sender.leaf_index)),
            lifetime_policy=config.lifetime_policy,
            credential_validator=config.credential_validator,
        )
    elif ptype == ProposalType.REMOVE:
        assert proposal.remove is not None
        # RFC 9420 §12.1.3: the removed leaf is a member (REM-01, TREE-01)
        check_leaf_in_range(state.tree, proposal.remove.removed, RULE_REMOVED_LEAF)
    elif ptype == ProposalType.PSK:
        assert proposal.psk is not None
        check_psk_id(state, proposal.psk.psk, in_external_commit=in_external_commit)
    elif ptype == ProposalType.REINIT:
        assert proposal.reinit is not None
        reinit = proposal.reinit
        # RFC 9420 §12.1.5: no downgrade of the protocol version (REI-01)
        if reinit.version < state.group_context.version:
            raise ValidationError(RULE_REINIT_VERSION, f"ReInit to version {reinit.version}")

        try:
            get_suite(reinit.cipher_suite)
        except MLSError as exc:
            raise ValidationError(RULE_REINIT_SUITE, f"suite {reinit.cipher_suite}") from exc
    elif ptype == ProposalType.GROUP_CONTEXT_EXTENSIONS:
        assert proposal.group_context_extensions is not None
        check_group_context_extensions(proposal.group_context_extensions.extensions)


def check_leaf_in_range(tree: RatchetTree, leaf: int, rule: str) -> None:
    """A leaf index from the wire names a non-blank leaf (VALIDATION TREE-01, REM-01)."""
    if not 0 <= leaf < tree.n_leaves or tree.leaf_node(LeafIndex(leaf)) is None:
        raise ValidationError(rule, f"leaf {leaf} is not a member")


def check_key_package(state: GroupState, key_package: KeyPackage, config: GroupConfig) -> None:
    """KP-01..07 and KP-05 against the group (RFC 9420 §10.1, §12.1.1)."""
    if key_package.version != state.group_context.version:
        raise ValidationError(RULE_ADD_VERSION, f"KeyPackage version {key_package.version}")
    try:
        validate_key_package(key_package, suite=state.suite)
    except ValidationError as exc:
        raise type(exc)(RULE_KEY_PACKAGE, f"{exc.rule}") from exc
    config.lifetime_policy.check(key_package.leaf_node)


def check_psk_id(state: GroupState, psk: PreSharedKeyID, *, in_external_commit: bool) -> None:
    """PSK-01, PSK-02 (RFC 9420 §8.4, §12.1.4)."""
    if len(psk.psk_nonce) != state.suite.hash_length:
        raise ValidationError(RULE_PSK_NONCE, f"psk_nonce of {len(psk.psk_nonce)} bytes")
    # RFC 9420 §8.6, §11: reinit and branch PSKs only start a new group (the Commit that
    # creates its epoch 1); in any other Commit they are refused (PSK-02)
    if (
        psk.psktype == PSKType.RESUMPTION
        and psk.usage != ResumptionPSKUsage.APPLICATION
        and (state.epoch != 0 or in_external_commit)
    ):
        raise ValidationError(RULE_PSK_USAGE, f"resumption PSK with usage {psk.usage}")


def check_group_context_extensions(extensions: Sequence[Extension]) -> None:
    """GCE-03, GCE-04 (RFC 9420 §13.4, §17.3); support is checked on the final tree."""
    dup = duplicate_extension_type(extensions)
    if dup is not None:
        raise ValidationError(RULE_GCE_DUPLICATE, f"extension type {dup} repeated")
    misplaced = misplaced_extension_type(extensions, ExtensionSite.GROUP_CONTEXT)
    if misplaced is not None:
        raise ValidationError(RULE_GCE_SITE, f"extension type {misplaced} not allowed in GC")
    ext = find_extension(extensions, ExtensionType.REQUIRED_CAPABILITIES)
    if ext is not None:
        try:
            extension_value(ext)
        except MLSError as exc:
            raise ValidationError(RULE_REQUIRED_CAPABILITIES, "malformed") from exc


# --------------------------------------------------------------------------------------------
# A Commit's list (§12.2, §12.4.3.2)


def validate_proposal_list(
    state: GroupState,
    proposals: Sequence[ResolvedProposal],
    committer: Sender,
) -> None:
    """The rules of RFC 9420 §12.2 over a Commit's whole list; for an external commit
    (``committer`` of type new_member_commit) those of §12.4.3.2.

    Raises:
        ValidationError: ``.rule`` names the rule.
    """
    external = committer.sender_type == SenderType.NEW_MEMBER_COMMIT
    types = [p.proposal.proposal_type for p in proposals]
    if external:
        # RFC 9420 §12.4.3.2 (EXT-01..03)
        if types.count(ProposalType.EXTERNAL_INIT) != 1:
            raise ValidationError(
                RULE_EXTERNAL_INIT_COUNT, f"{types.count(ProposalType.EXTERNAL_INIT)} ExternalInit"
            )
        allowed = {ProposalType.EXTERNAL_INIT, ProposalType.REMOVE, ProposalType.PSK}
        if any(t not in allowed for t in types):
            raise ValidationError(RULE_EXTERNAL_PROPOSAL_TYPE, "only ExternalInit, Remove, PSK")
        if types.count(ProposalType.REMOVE) > 1:
            raise ValidationError(RULE_EXTERNAL_REMOVES, "more than one Remove")
        if any(p.ref is not None for p in proposals):
            raise ValidationError(RULE_EXTERNAL_BY_REFERENCE, "a proposal by reference")
    elif ProposalType.EXTERNAL_INIT in types:
        # RFC 9420 §12.2: ExternalInit only in external commits (COM-22)
        raise ValidationError(RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT, "ExternalInit from a member")
    if ProposalType.REINIT in types and len(types) > 1:
        # RFC 9420 §12.2: ReInit stands alone (COM-21)
        raise ValidationError(RULE_REINIT_ALONE, "ReInit with other proposals")
    if types.count(ProposalType.GROUP_CONTEXT_EXTENSIONS) > 1:
        raise ValidationError(RULE_MULTIPLE_GCE, "two GroupContextExtensions")  # COM-20
    committer_leaf = committer.leaf_index if not external else None
    touched: set[int] = set()
    add_keys: set[bytes] = set()
    add_init_keys: set[bytes] = set()
    psk_ids: set[bytes] = set()
    removed = {p.proposal.remove.removed for p in proposals if p.proposal.remove is not None}
    for p in proposals:
        prop = p.proposal
        if prop.update is not None:
            leaf = p.sender.leaf_index
            if leaf is not None and leaf == committer_leaf:
                # RFC 9420 §12.2: the committer's own Update (COM-15)
                raise ValidationError(RULE_COMMITTER_UPDATE, "the committer's own Update")
            if leaf in touched:
                raise ValidationError(RULE_SAME_LEAF, f"leaf {leaf} changed twice")  # COM-17
            touched.add(leaf if leaf is not None else -1)
        elif prop.remove is not None:
            leaf = prop.remove.removed
            if leaf == committer_leaf:
                # RFC 9420 §12.2: the committer cannot remove itself (COM-16)
                raise ValidationError(RULE_COMMITTER_REMOVE, "the committer removes itself")
            if leaf in touched:
                raise ValidationError(RULE_SAME_LEAF, f"leaf {leaf} changed twice")  # COM-17
            touched.add(leaf)
        elif prop.add is not None:
            leaf_node = prop.add.key_package.leaf_node
            key = leaf_node.signature_key
            # RFC 9420 §12.2: one Add per client (COM-18; ADD-04 for init keys)
            if key in add_keys or prop.add.key_package.init_key in add_init_keys:
                raise ValidationError(RULE_DUPLICATE_ADD, "two Adds for one client")
            add_keys.add(key)
            add_init_keys.add(prop.add.key_package.init_key)
            for index, member in state.tree.leaves():
                if member.signature_key == key and index not in removed:
                    raise ValidationError(RULE_ADD_MEMBER, f"client already at leaf {index}")
        elif prop.psk is not None:
            encoded = prop.psk.psk.encode()
            if encoded in psk_ids:
                raise ValidationError(RULE_DUPLICATE_PSK, "a PSK named twice")  # COM-19
            psk_ids.add(encoded)


# --------------------------------------------------------------------------------------------
# Applying (§12.3)


def apply_proposals(
    state: GroupState,
    proposals: Sequence[ResolvedProposal],
    config: GroupConfig,
) -> AppliedProposals:
    """Applies a validated list to a copy of the tree in the order of RFC 9420 §12.3 and
    checks the result (§12.2 last bullet, §11.1, §12.1.7).

    Raises:
        ValidationError: an Add does not fit the group (ADD-02, ADD-03, LN-*), or the
            resulting extensions are not supported by every member (GCE-01, GCE-02).
    """
    tree = state.tree.copy()
    extensions = state.group_context.extensions
    out = AppliedProposals(tree, extensions)
    for p in proposals:
        gce = p.proposal.group_context_extensions
        if gce is not None:
            out.extensions = tuple(gce.extensions)
    for p in proposals:
        update = p.proposal.update
        if update is not None:
            assert p.sender.leaf_index is not None
            leaf = LeafIndex(p.sender.leaf_index)
            tree.update_leaf(leaf, update.leaf_node)
            out.updated.append(leaf)
    for p in proposals:
        remove = p.proposal.remove
        if remove is not None:
            tree.remove_leaf(LeafIndex(remove.removed))
            out.removed.append(LeafIndex(remove.removed))
    context = dataclasses.replace(state.group_context, extensions=out.extensions)
    index: MemberIndex | None = None
    for p in proposals:
        add = p.proposal.add
        if add is not None:
            leaf_node = add.key_package.leaf_node
            if index is None:
                index = MemberIndex(tree)
            # RFC 9420 §7.3, §12.1.1: the new leaf fits the group (ADD-02, ADD-03, LN-04)
            validate_leaf_node(
                state.suite,
                leaf_node,
                tree=tree,
                leaf_index=LeafIndex(0),  # unused: a key_package leaf signs no index
                group_context=context,
                expected_source=LeafNodeSource.KEY_PACKAGE,
                lifetime_policy=config.lifetime_policy,
                credential_validator=config.credential_validator,
                against_members=False,
                # check_key_package verified it (validate_proposal ran on every proposal)
                signature_verified=True,
            )
            index.check(leaf_node)
            check_supports_extensions(leaf_node, out.extensions)
            out.added.append((tree.add_leaf(leaf_node), add.key_package))
            index.add(leaf_node)
    for p in proposals:
        prop = p.proposal
        if prop.psk is not None:
            out.psks.append(prop.psk.psk)
        elif prop.external_init is not None:
            out.external_init = prop.external_init
        elif prop.reinit is not None:
            out.reinit = prop.reinit
    if out.extensions is not extensions:
        for _, leaf_node in tree.leaves():
            check_supports_extensions(leaf_node, out.extensions)
    types = {p.proposal.proposal_type for p in proposals}
    out.path_required = not proposals or bool(types & PATH_REQUIRED_TYPES)
    return out


def check_supports_extensions(leaf: LeafNode, extensions: Sequence[Extension]) -> None:
    """GCE-01, GCE-02, ADD-02 (RFC 9420 §11.1, §12.1.7, §13.4): ``leaf`` supports every
    non-default GroupContext extension and everything ``required_capabilities`` names."""
    caps = leaf.capabilities
    for ext in extensions:
        t = ext.extension_type
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps.extensions:
            raise ValidationError(RULE_GCE_SUPPORT, f"a member does not support extension {t}")
    found = find_extension(extensions, ExtensionType.REQUIRED_CAPABILITIES)
    if found is None:
        return
    required: RequiredCapabilities = extension_value(found)
    for t in required.extension_types:
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps.extensions:
            raise ValidationError(RULE_REQUIRED_CAPABILITIES, f"extension {t} not supported")
    for t in required.proposal_types:
        if t not in KNOWN_PROPOSAL_TYPES and t not in caps.proposals:
            raise ValidationError(RULE_REQUIRED_CAPABILITIES, f"proposal {t} not supported")
    for t in required.credential_types:
        if t not in caps.credentials:
            raise ValidationError(RULE_REQUIRED_CAPABILITIES, f"credential {t} not supported")


def external_sender_key(group_context: GroupContext, sender_index: int) -> bytes:
    """The signature key of external sender ``sender_index`` (RFC 9420 §12.1.8.1; PUB-06).

    Raises:
        ValidationError: no ``external_senders`` extension, or the index is outside it.
    """
    ext = find_extension(group_context.extensions, ExtensionType.EXTERNAL_SENDERS)
    if ext is None:
        raise ValidationError(RULE_EXTERNAL_SENDERS, "the group has no external senders")
    try:
        senders = extension_value(ext)
    except MLSError as exc:
        raise ValidationError(RULE_EXTERNAL_SENDERS, "malformed external_senders") from exc
    if not 0 <= sender_index < len(senders):
        raise ValidationError(RULE_EXTERNAL_SENDERS, f"external sender {sender_index} unknown")
    key: bytes = senders[sender_index].signature_key
    return key
