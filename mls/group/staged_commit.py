"""Processing a received Commit into a staged next state (RFC 9420 §12.4.2).

:func:`stage_commit` runs every check of §12.4.2 and computes the complete next
:class:`~mls.group.state.GroupState` without touching the current one; the caller merges by
swapping states. The steps::

    AuthenticatedContent(Commit)       (framing checks done: signature, membership tag)
      │ resolve ProposalOrRef ─────── by reference: cached in this epoch (COM-03)
      │ validate each, then the list ─ §12.1, §12.2 / §12.4.3.2 (COM-15..23, EXT-01..03)
      │ apply to a copy of the tree ── §12.3 (GCE, Update, Remove, Add)
      │ path present if required ──── COM-02
      │ path: leaf checks, merge, decrypt ─ §7.5, §12.4.2 (COM-05..11)
      │ PSKs, init secret ─────────── §8.3, §8.4 (COM-13, EXI-02)
      │ key schedule, confirmation tag ─ §8, §8.2 (COM-12)
      ▼
    StagedCommit(next GroupState)

Contract: the state passed in is never changed; any failure raises before a StagedCommit
exists (ST-01).
"""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass, field

from ..credentials import Credential
from ..errors import UsageError, ValidationError
from ..framing import AuthenticatedContent, Sender, SenderType
from ..key_schedule import external_init_secret_for_member
from ..leaf_node import LeafNodeSource
from ..messages import Commit, Proposal, ProposalOrRefType, ReInit
from ..psk_id import PreSharedKeyID
from ..secret_tree import SecretTree
from ..tree_math import LeafIndex
from ..tree_validation import validate_leaf_node
from ..treekem import TreeKEMPrivateKey, merge_update_path, process_update_path
from .config import GroupConfig
from .epoch import NextEpoch, next_epoch, resolve_psks
from .proposals import (
    AppliedProposals,
    ResolvedProposal,
    apply_proposals,
    validate_proposal,
    validate_proposal_list,
)
from .state import GroupState

RULE_PROPOSAL_REF = "§12.4/proposal-ref"
RULE_PATH_REQUIRED = "§12.4/path-required"
RULE_COMMIT_SENDER = "§12.4.2/commit-sender"
RULE_CONFIRMATION_TAG = "§6.1/confirmation-tag"
RULE_RESYNC_IDENTITY = "§12.4.3.2/resync-identity"


@dataclass(eq=False)
class StagedCommit:
    """A Commit fully processed and not yet merged (RFC 9420 §12.4.2).

    Attributes:
        state: the next state; merging makes it the group's.
        proposals: the proposals the Commit applied, in list order.
        committer: who sent the Commit.
        added: leaves added (with their credentials).
        removed: leaves removed (with the credentials they had).
        updated: leaves whose Update was applied.
        psks: PSK ids the Commit used.
        reinit: the ReInit proposal, if the Commit ends the group (§11.2).
        self_removed: this member is removed by the Commit (ACC-02).
    """

    state: GroupState = field(repr=False)
    proposals: tuple[Proposal, ...]
    committer: Sender
    added: tuple[tuple[LeafIndex, Credential], ...] = ()
    removed: tuple[tuple[LeafIndex, Credential], ...] = ()
    updated: tuple[LeafIndex, ...] = ()
    psks: tuple[PreSharedKeyID, ...] = ()
    reinit: ReInit | None = None
    self_removed: bool = False

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @classmethod
    def of(
        cls,
        state: GroupState,
        before: GroupState,
        proposals: list[ResolvedProposal],
        applied: AppliedProposals,
        committer: Sender,
        *,
        self_removed: bool = False,
    ) -> StagedCommit:
        """The staged next ``state`` of a Commit applied to ``before``, with its summary."""
        removed = []
        for leaf in applied.removed:
            node = before.tree.leaf_node(leaf)
            if node is not None:
                removed.append((leaf, node.credential))
        return cls(
            state,
            proposals=tuple(p.proposal for p in proposals),
            committer=committer,
            added=tuple((leaf, kp.leaf_node.credential) for leaf, kp in applied.added),
            removed=tuple(removed),
            updated=tuple(applied.updated),
            psks=tuple(applied.psks),
            reinit=applied.reinit,
            self_removed=self_removed,
        )


def resolve_proposals(
    state: GroupState, commit: Commit, committer: Sender
) -> list[ResolvedProposal]:
    """The Commit's proposals with their senders (RFC 9420 §12.4).

    Raises:
        ValidationError: a reference that names no proposal cached in this epoch (COM-03).
    """
    cached = {c.ref: c for c in state.proposals}
    out = []
    for item in commit.proposals:
        if item.type == ProposalOrRefType.REFERENCE:
            assert item.reference is not None
            found = cached.get(item.reference)
            if found is None:
                raise ValidationError(RULE_PROPOSAL_REF, "unknown proposal reference")
            out.append(ResolvedProposal(found.proposal, found.sender, found.ref))
        else:
            assert item.proposal is not None
            out.append(ResolvedProposal(item.proposal, committer))
    return out


def check_proposals(
    state: GroupState,
    proposals: list[ResolvedProposal],
    committer: Sender,
    config: GroupConfig,
) -> AppliedProposals:
    """Validates each proposal and the list, then applies them to a copy of the tree."""
    external = committer.sender_type == SenderType.NEW_MEMBER_COMMIT
    for p in proposals:
        validate_proposal(state, p.proposal, p.sender, config, in_external_commit=external)
    validate_proposal_list(state, proposals, committer)
    return apply_proposals(state, proposals, config)


def finish_state(
    state: GroupState,
    applied: AppliedProposals,
    nxt: NextEpoch,
    private_key: TreeKEMPrivateKey,
    config: GroupConfig,
    *,
    old_secret_tree: SecretTree | None = None,
    signature_priv: bytes | None = None,
) -> GroupState:
    """The next GroupState from the current one and a Commit's outcome."""
    suite = state.suite
    past = [state.as_past_epoch(old_secret_tree), *state.past_epochs][: config.past_epochs]
    epoch = nxt.group_context.epoch
    keep = config.resumption_psk_epochs
    psks = {e: v for e, v in state.resumption_psks.items() if e > epoch - 1 - keep}
    psks[epoch] = nxt.secrets.resumption_psk
    reinit = None
    if applied.reinit is not None:
        reinit = Proposal.of(applied.reinit)
    return GroupState(
        suite=suite,
        group_context=nxt.group_context,
        tree=applied.tree,
        private_key=private_key,
        signature_priv=state.signature_priv if signature_priv is None else signature_priv,
        interim_transcript_hash=nxt.interim_transcript_hash,
        confirmation_tag=nxt.confirmation_tag,
        secrets=nxt.secrets,
        secret_tree=SecretTree(
            suite, nxt.secrets.encryption_secret, applied.tree.n_leaves, config.ratchet_policy
        ),
        proposals=[],
        past_epochs=past,
        resumption_psks=psks,
        pending_reinit=reinit,
        update_keys={},
    )


def stage_commit(
    state: GroupState,
    content: AuthenticatedContent,
    config: GroupConfig,
    *,
    old_secret_tree: SecretTree | None = None,
) -> StagedCommit:
    """Processes a received Commit whose framing was already checked (RFC 9420 §12.4.2).

    Args:
        state: the current state (not changed).
        content: the Commit's AuthenticatedContent, with its confirmation tag.
        old_secret_tree: a copy of the current secret tree with the Commit's own key
            consumed (a PrivateMessage Commit), kept as the past epoch's.

    Raises:
        ValidationError: any check of §12.4.2 (rules in this module, :mod:`.proposals`,
            :mod:`mls.treekem`, :mod:`mls.tree_validation`, :mod:`.epoch`).
        DecryptionError: the path secret or the ExternalInit does not decrypt.
        UsageError: the Commit is this member's own (merge the pending commit instead).
    """
    suite = state.suite
    body = content.content.commit
    if body is None:
        raise UsageError("not a Commit")
    sender = content.content.sender
    if sender.sender_type == SenderType.MEMBER:
        assert sender.leaf_index is not None
        if sender.leaf_index == state.own_leaf:
            raise UsageError("this member's own Commit: merge the pending commit instead")
    elif sender.sender_type != SenderType.NEW_MEMBER_COMMIT:
        # RFC 9420 §6.1: only members and new members commit (COM-04)
        raise ValidationError(RULE_COMMIT_SENDER, f"a Commit from a {sender.sender_type.name}")
    external = sender.sender_type == SenderType.NEW_MEMBER_COMMIT
    proposals = resolve_proposals(state, body, sender)
    applied = check_proposals(state, proposals, sender, config)
    # RFC 9420 §12.4: a path is present when the proposals require one (COM-02, GCE-06)
    path = body.path
    if path is None and (applied.path_required or external):
        raise ValidationError(RULE_PATH_REQUIRED, "the Commit needs a path")
    tree = applied.tree
    if external:
        assert path is not None
        committer = tree.leftmost_blank_leaf()
        if committer is None:
            committer = LeafIndex(tree.n_leaves)
            tree.extend()
        # RFC 9420 §12.4.3.2: a resync keeps the identity of the leaf it replaces (EXT-06)
        for leaf in applied.removed:
            old = state.tree.leaf_node(leaf)
            if old is not None and old.credential != path.leaf_node.credential:
                raise ValidationError(RULE_RESYNC_IDENTITY, "resync by another identity")
    else:
        assert sender.leaf_index is not None
        committer = LeafIndex(sender.leaf_index)
    context = dataclasses.replace(
        state.group_context, epoch=state.epoch + 1, extensions=applied.extensions
    )
    self_removed = state.own_leaf in applied.removed
    added = {leaf for leaf, _ in applied.added}
    commit_secret: bytes | None = None
    private_key = state.private_key
    if not self_removed:
        private_key = _after_own_update(state, applied, private_key).without_blanks(tree)
    if path is not None:
        # RFC 9420 §7.3, §12.4.2: the path leaf is a valid leaf for the committer (COM-07)
        validate_leaf_node(
            suite,
            path.leaf_node,
            tree=tree,
            leaf_index=committer,
            group_context=context,
            expected_source=LeafNodeSource.COMMIT,
            replacing=None if external else tree.leaf_node(committer),
            lifetime_policy=config.lifetime_policy,
            credential_validator=config.credential_validator,
        )
        if self_removed:
            merge_update_path(
                tree, committer, path, state.group_id, excluded=added, new_sender=external
            )
        else:
            processed = process_update_path(
                tree,
                committer,
                path,
                context,
                private_key,
                excluded=added,
                new_sender=external,
            )
            commit_secret = processed.commit_secret
            private_key = processed.private_key
    init_secret = state.secrets.init_secret
    if external:
        assert applied.external_init is not None
        external_priv, _ = state.secrets.external_key_pair(suite)
        # RFC 9420 §8.3: the joiner's init secret (EXI-02)
        init_secret = external_init_secret_for_member(
            suite, external_priv, applied.external_init.kem_output
        )
    psk_value = resolve_psks(
        suite,
        applied.psks,
        group_id=state.group_id,
        resumption_psks=state.resumption_psks,
        external_psks=config.external_psks,
    )
    if self_removed:
        # ACC-02 (RFC 9420 §12.4.2): a Commit removing us is valid; the group ends for us
        gone = dataclasses.replace(_copy_state(state), removed=True)
        return StagedCommit.of(gone, state, proposals, applied, sender, self_removed=True)
    nxt = next_epoch(
        suite,
        state.group_context,
        state.interim_transcript_hash,
        tree=tree,
        extensions=applied.extensions,
        wire_format=content.wire_format,
        content=content.content,
        signature=content.auth.signature,
        init_secret=init_secret,
        commit_secret=commit_secret,
        psk_secret_value=psk_value,
    )
    tag = content.auth.confirmation_tag or b""

    # RFC 9420 §12.4.2: the confirmation tag verifies under the new epoch (COM-12)
    if not hmac.compare_digest(tag, nxt.confirmation_tag):
        raise ValidationError(RULE_CONFIRMATION_TAG, "confirmation tag does not verify")
    new_state = finish_state(
        state, applied, nxt, private_key, config, old_secret_tree=old_secret_tree
    )
    return StagedCommit.of(new_state, state, proposals, applied, sender)


def _after_own_update(
    state: GroupState, applied: AppliedProposals, private_key: TreeKEMPrivateKey
) -> TreeKEMPrivateKey:
    """If another member committed our Update, our leaf key is the one we proposed."""
    if state.own_leaf not in applied.updated:
        return private_key
    leaf = applied.tree.leaf_node(state.own_leaf)
    assert leaf is not None
    priv = state.update_keys.get(leaf.encryption_key)
    if priv is None:
        raise UsageError("an Update for our leaf that we did not propose")
    return dataclasses.replace(private_key, encryption_priv=priv)


def _copy_state(state: GroupState) -> GroupState:
    return GroupState.from_bytes(state.to_bytes())


__all__ = [
    "StagedCommit",
    "check_proposals",
    "finish_state",
    "resolve_proposals",
    "stage_commit",
]
