"""The incoming-message pipeline (RFC 9420 §6, §12.1, §12.4.2).

::

    MLSMessage
      ├─ PublicMessage ── wire-format policy (PUB-10)
      │    sender → signature key:   member leaf (PUB-05) │ external_senders entry (PUB-06)
      │                              │ new member's KeyPackage (PUB-08) │ path leaf (EXT-05)
      │    group, epoch, membership tag, signature (PUB-01..04)
      │
      └─ PrivateMessage ── wire-format policy for handshakes (PUB-10)
           epoch: current, or a retained past one for application data (PRIV-01, ACC-06)
           sender data: our own message? → OwnMessage (PRIV-09)
           sender leaf, generation, content AEAD, padding, signature (PRIV-02..08)
      │
      ▼ AuthenticatedContent
      ├─ application → ApplicationMessage  (key consumed)
      ├─ proposal    → validate (§12.1) → cached by ProposalRef → ProposalMessage
      └─ commit      → stage_commit (§12.4.2) → StagedCommit (state untouched)

Contract: a message that fails any check raises and changes nothing (ST-01). Accepted
application and proposal messages change the state (a consumed key, a cached proposal);
a Commit changes nothing until its StagedCommit is merged.
"""

from __future__ import annotations

from ..credentials import Credential
from ..crypto.labels import make_proposal_ref
from ..errors import EpochError, UsageError, ValidationError
from ..framing import (
    AuthenticatedContent,
    ContentType,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    SenderType,
)
from ..message_protection import (
    RULE_EPOCH,
    RULE_GROUP_ID,
    decrypt_sender_data,
    open_private_message,
    unprotect_public_message,
)
from ..secret_tree import SecretTree
from ..tree_math import LeafIndex
from .config import GroupConfig
from .proposals import (
    EXTERNAL_SENDER_TYPES,
    RULE_EXTERNAL_SENDERS,
    external_sender_key,
    validate_proposal,
)
from .results import ApplicationMessage, OwnMessage, ProposalMessage
from .staged_commit import RULE_PATH_REQUIRED, StagedCommit, stage_commit
from .state import CachedProposal, GroupState, PastEpoch

RULE_WIRE_FORMAT = "§6/wire-format-policy"
RULE_SENDER_LEAF = "§6.1/sender-leaf"
RULE_NOT_FRAMED = "§6/not-a-framed-message"

Result = ApplicationMessage | ProposalMessage | StagedCommit | OwnMessage


def process_message(state: GroupState, message: MLSMessage, config: GroupConfig) -> Result:
    """Processes one incoming message (see the module docstring).

    Raises:
        EpochError, ValidationError (and subclasses), DecodeError: the message is rejected.
        UsageError: the group has ended for this member, or this is its own Commit.
    """
    if state.removed:
        raise UsageError("this member was removed from the group")
    body = message.body
    if isinstance(body, PublicMessage):
        return _process_public(state, body, config)
    if isinstance(body, PrivateMessage):
        return _process_private(state, body, config)
    raise ValidationError(RULE_NOT_FRAMED, f"a {message.wire_format.name} is not group traffic")


def _process_public(state: GroupState, message: PublicMessage, config: GroupConfig) -> Result:
    suite = state.suite
    content = message.content
    if not config.accept_public_handshake:
        raise ValidationError(RULE_WIRE_FORMAT, "handshake messages must be private")
    if content.group_id != state.group_id:
        raise EpochError(RULE_GROUP_ID, "message is for another group")
    if content.epoch != state.epoch:
        raise EpochError(RULE_EPOCH, f"message epoch {content.epoch} is not {state.epoch}")
    sender = content.sender
    key: bytes | None = None
    if sender.sender_type == SenderType.MEMBER:
        assert sender.leaf_index is not None
        key = _member_key(state, sender.leaf_index)
    elif sender.sender_type == SenderType.EXTERNAL:
        assert sender.sender_index is not None
        # RFC 9420 §12.1.8: external senders propose only some types (PUB-06)
        proposal = content.proposal
        if proposal is not None and proposal.proposal_type not in EXTERNAL_SENDER_TYPES:
            raise ValidationError(
                RULE_EXTERNAL_SENDERS, f"external proposal type {proposal.proposal_type}"
            )
        key = external_sender_key(state.group_context, sender.sender_index)
    elif sender.sender_type == SenderType.NEW_MEMBER_PROPOSAL:
        proposal = content.proposal
        if proposal is not None and proposal.add is not None:
            key = proposal.add.key_package.leaf_node.signature_key
    elif sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
        commit = content.commit
        if commit is not None:
            # RFC 9420 §12.4.3.2: an external commit carries a path, signed by its leaf (EXT-04/05)
            if commit.path is None:
                raise ValidationError(RULE_PATH_REQUIRED, "external commit without a path")
            key = commit.path.leaf_node.signature_key
    if key is None:
        # the sender may not send this content type; unprotect names the rule
        key = b""
    authenticated = unprotect_public_message(
        suite,
        message,
        signature_key=key,
        group_context=state.group_context,
        membership_key=state.secrets.membership_key,
    )
    return _dispatch(state, authenticated, config, None)


def _member_key(state: GroupState, leaf: int) -> bytes:
    # PUB-05 (RFC 9420 §6.1): a member sender names a non-blank leaf (TREE-01 range first)
    node = state.tree.leaf_node(LeafIndex(leaf)) if 0 <= leaf < state.tree.n_leaves else None
    if node is None:
        raise ValidationError(RULE_SENDER_LEAF, f"sender leaf {leaf} is not a member")
    return node.signature_key


def _process_private(state: GroupState, message: PrivateMessage, config: GroupConfig) -> Result:
    suite = state.suite
    if message.group_id != state.group_id:
        raise EpochError(RULE_GROUP_ID, "message is for another group")
    handshake = message.content_type != ContentType.APPLICATION
    if handshake and not config.accept_private_handshake:
        raise ValidationError(RULE_WIRE_FORMAT, "handshake messages must be public")
    past: PastEpoch | None = None
    members: dict[int, tuple[bytes, Credential]]
    if message.epoch != state.epoch:
        # PRIV-01, ACC-06 (RFC 9420 §15.2): application data of a retained epoch still opens
        past = next((p for p in state.past_epochs if p.group_context.epoch == message.epoch), None)
        if past is None or handshake:
            raise EpochError(RULE_EPOCH, f"epoch {message.epoch} is not readable")
    if past is None:
        context = state.group_context
        secret_tree = state.secret_tree
        sds = state.secrets.sender_data_secret
        own = state.own_leaf
        members = state.members_snapshot()
    else:
        context = past.group_context
        secret_tree = past.secret_tree
        sds = past.sender_data_secret
        own = past.own_leaf
        members = dict(past.members)
    sender_data = decrypt_sender_data(suite, message, sds)
    if sender_data.leaf_index == own:
        # PRIV-09: our own message, recognised by the epoch's own leaf
        return OwnMessage(message.epoch, sender_data.generation)
    if handshake:
        # the Commit's or proposal's key is consumed only once it is accepted
        secret_tree = secret_tree.copy()

    def signature_key_of(leaf: LeafIndex) -> bytes | None:
        entry = members.get(int(leaf))
        return None if entry is None else entry[0]

    opened = open_private_message(
        suite,
        message,
        secret_tree=secret_tree,
        sender_data_secret=sds,
        group_context=context,
        signature_key_of=signature_key_of,
    )
    if not handshake:
        secret_tree.apply(opened.staged)
        content = opened.content.content
        return ApplicationMessage(
            opened.sender_leaf,
            members[int(opened.sender_leaf)][1],
            content.application_data or b"",
            content.authenticated_data,
            message.epoch,
            opened.generation,
        )
    return _dispatch(state, opened.content, config, (secret_tree, opened.staged))


def _dispatch(
    state: GroupState,
    authenticated: AuthenticatedContent,
    config: GroupConfig,
    private: tuple[SecretTree, object] | None,
) -> Result:
    content = authenticated.content
    if content.content_type == ContentType.PROPOSAL:
        proposal = content.proposal
        assert proposal is not None
        validate_proposal(state, proposal, content.sender, config)
        ref = make_proposal_ref(state.suite, authenticated.encode())
        if private is not None:
            tree, staged = private
            tree.apply(staged)  # type: ignore[arg-type]
            state.secret_tree = tree
        if any(c.ref == ref for c in state.proposals):
            return ProposalMessage(ref, proposal, content.sender, duplicate=True)
        state.proposals.append(CachedProposal(ref, proposal, content.sender))
        return ProposalMessage(ref, proposal, content.sender)
    if content.content_type == ContentType.COMMIT:
        old_tree = None
        if private is not None:
            old_tree, staged = private
            old_tree.apply(staged)  # type: ignore[arg-type]
        return stage_commit(state, authenticated, config, old_secret_tree=old_tree)
    raise ValidationError(RULE_NOT_FRAMED, "application data in a PublicMessage")


__all__ = ["Result", "process_message"]
