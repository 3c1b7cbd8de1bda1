"""Building a Commit, its Welcome and the framed message that carries it (RFC 9420 §12.4.1).

:func:`create_commit` takes the proposals cached in the epoch (by reference) and new ones
(by value), checks and applies them as a receiver would, refreshes the committer's path when
required or asked, runs the key schedule, signs and frames the Commit, and builds the Welcome
for the new members::

    cached proposals (by ref) + new proposals (by value)
      │ validate, apply (§12.2, §12.3) ── the same code receivers run
      │ path: create_update_path (§7.4-7.6)   when required or forced
      │ sign FramedContent (current GroupContext)
      │ next epoch: transcript, key schedule, confirmation tag (§8)
      │ frame: PublicMessage + membership tag, or PrivateMessage
      ▼
    CreatedCommit(message, welcome, staged)

Contract: the group state is not changed (ST-02): everything lands in the returned
:class:`~mls.group.staged_commit.StagedCommit`, which the caller merges once the Delivery
Service accepted the Commit.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import UsageError
from ..framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    Sender,
    WireFormat,
)
from ..leaf_node import LeafNode
from ..message_protection import (
    protect_private_message,
    protect_public_message,
    sign_framed_content,
)
from ..messages import Commit, GroupInfo, Proposal, ProposalOrRef, Welcome
from ..tree_math import LeafIndex
from ..treekem import create_update_path
from .config import GroupConfig
from .epoch import next_epoch, resolve_psks
from .proposals import ResolvedProposal
from .staged_commit import StagedCommit, check_proposals, finish_state
from .state import GroupState
from .welcome import create_welcome, sign_group_info


@dataclass(eq=False)
class CreatedCommit:
    """What :func:`create_commit` produced.

    Attributes:
        message: the framed Commit to send to the group.
        welcome: the Welcome for the members it adds, if any.
        group_info: a signed GroupInfo of the new epoch (with tree and external_pub).
        staged: the next state; merge it once the Commit is accepted.
    """

    message: MLSMessage
    welcome: Welcome | None
    group_info: GroupInfo
    staged: StagedCommit = field(repr=False)


def frame(
    state: GroupState,
    config: GroupConfig,
    authenticated: AuthenticatedContent,
) -> tuple[MLSMessage, object]:
    """Wraps handshake content sent by this member as the group's policy says (§6).

    Returns:
        the message, and the secret tree copy whose key the PrivateMessage consumed
        (``None`` for a PublicMessage).
    """
    suite = state.suite
    if authenticated.wire_format == WireFormat.MLS_PUBLIC_MESSAGE:
        public = protect_public_message(
            suite,
            authenticated,
            membership_key=state.secrets.membership_key,
            group_context=state.group_context,
        )
        return MLSMessage.of(public), None
    tree = state.secret_tree.copy()
    private = protect_private_message(
        suite,
        authenticated,
        secret_tree=tree,
        sender_data_secret=state.secrets.sender_data_secret,
        padding_size=config.padding,
    )
    return MLSMessage.of(private), tree


def handshake_wire_format(config: GroupConfig) -> WireFormat:
    if config.handshake_private:
        return WireFormat.MLS_PRIVATE_MESSAGE
    return WireFormat.MLS_PUBLIC_MESSAGE


def create_commit(
    state: GroupState,
    config: GroupConfig,
    *,
    proposals: Sequence[Proposal] = (),
    by_reference: bool = True,
    force_path: bool = False,
    leaf_node: LeafNode | None = None,
    authenticated_data: bytes = b"",
    other_groups: Mapping[tuple[bytes, int], bytes] | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> CreatedCommit:
    """Builds a Commit of the cached proposals and ``proposals`` (RFC 9420 §12.4.1).

    Args:
        proposals: proposals to include by value.
        by_reference: also commit every proposal cached in this epoch (by reference), except
            this member's own Updates and any Remove of this member (§12.2 forbids both).
        force_path: include a path even when no proposal requires one.
        leaf_node: the committer's next leaf (e.g. a new credential); default: the current.
        other_groups: resumption PSKs of other groups, for ReInit and branch Commits.

    Raises:
        UsageError: the group has ended for this member.
        ValidationError: a proposal or the list breaks a rule of §12.1-12.2 (``.rule``).
    """
    if state.removed or state.pending_reinit is not None:
        raise UsageError("this group has ended for this member")
    suite = state.suite
    me = Sender.member(state.own_leaf)
    resolved: list[ResolvedProposal] = []
    refs: list[ProposalOrRef] = []
    if by_reference:
        for cached in state.proposals:
            p = cached.proposal
            own_update = p.update is not None and cached.sender.leaf_index == state.own_leaf
            self_remove = p.remove is not None and p.remove.removed == state.own_leaf
            if own_update or self_remove:
                continue
            resolved.append(ResolvedProposal(p, cached.sender, cached.ref))
            refs.append(ProposalOrRef.by_reference(cached.ref))
    for p in proposals:
        resolved.append(ResolvedProposal(p, me))
        refs.append(ProposalOrRef.by_value(p))
    applied = check_proposals(state, resolved, me, config)
    tree = applied.tree
    added = [leaf for leaf, _ in applied.added]
    context = dataclasses.replace(
        state.group_context, epoch=state.epoch + 1, extensions=applied.extensions
    )
    commit_secret = None
    path_secret_for: Callable[[LeafIndex], bytes | None] = lambda _leaf: None  # noqa: E731
    private_key = state.private_key.without_blanks(tree)
    path = None
    if applied.path_required or force_path:
        created = create_update_path(
            tree,
            state.own_leaf,
            context,
            state.signature_priv,
            leaf_node=leaf_node,
            excluded=added,
            random=random,
        )
        path = created.update_path
        commit_secret = created.commit_secret
        private_key = created.private_key
        path_secret_for = created.path_secret_for
    wire_format = handshake_wire_format(config)
    content = FramedContent.with_body(
        state.group_id, state.epoch, me, authenticated_data, Commit(tuple(refs), path)
    )
    signature = sign_framed_content(
        suite, state.signature_priv, wire_format, content, state.group_context
    )
    psk_value = resolve_psks(
        suite,
        applied.psks,
        group_id=state.group_id,
        resumption_psks=state.resumption_psks,
        external_psks=config.external_psks,
        other_groups=other_groups,
    )
    nxt = next_epoch(
        suite,
        state.group_context,
        state.interim_transcript_hash,
        tree=tree,
        extensions=applied.extensions,
        wire_format=wire_format,
        content=content,
        signature=signature,
        init_secret=state.secrets.init_secret,
        commit_secret=commit_secret,
        psk_secret_value=psk_value,
    )
    authenticated = AuthenticatedContent(
        wire_format, content, FramedContentAuthData(signature, nxt.confirmation_tag)
    )
    message, used_tree = frame(state, config, authenticated)
    new_state = finish_state(
        state,
        applied,
        nxt,
        private_key,
        config,
        old_secret_tree=used_tree,  # type: ignore[arg-type]
    )
    welcome = None
    if applied.added:
        welcome = create_welcome(new_state, applied.added, path_secret_for, applied.psks, config)
    staged = StagedCommit.of(new_state, state, resolved, applied, me)
    info = sign_group_info(new_state, with_tree=True, with_external_pub=True)
    return CreatedCommit(message, welcome, info, staged)
