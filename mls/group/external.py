"""Joining by external commit, and resyncing (RFC 9420 §8.3, §12.4.3.2).

A client that holds a signed GroupInfo with the ``external_pub`` extension can join without
a Welcome: it encapsulates to ``external_pub`` (the ExternalInit proposal), takes the leftmost
blank leaf of the tree, refreshes its path, and commits as a ``new_member_commit`` sender. A
member that lost its state resyncs the same way, removing its old leaf in the same Commit.

Contract: the returned state is the joiner's first epoch; nothing else is kept.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..crypto.ciphersuite import get_suite
from ..errors import MLSError, ValidationError
from ..extensions import ExtensionType, extension_value, find_extension
from ..framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    Sender,
    WireFormat,
)
from ..key_schedule import external_init_secret_for_joiner
from ..leaf_node import LeafNode
from ..message_protection import protect_public_message, sign_framed_content
from ..messages import (
    Commit,
    ExternalInit,
    GroupInfo,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    Remove,
)
from ..psk_id import PreSharedKeyID
from ..secret_tree import SecretTree
from ..transcript import interim_transcript_hash
from ..tree_math import LeafIndex
from ..tree_validation import validate_ratchet_tree
from ..treekem import create_update_path
from .config import GroupConfig
from .epoch import next_epoch, resolve_psks
from .state import GroupState
from .welcome import tree_from_group_info, verify_group_info

RULE_EXTERNAL_PUB = "§12.4.3.2/external-pub"


@dataclass(eq=False)
class ExternalJoin:
    """What :func:`join_external` produced.

    Attributes:
        message: the external Commit (a PublicMessage) to send to the group.
        state: the joiner's state in the new epoch; valid once the group accepted the Commit.
    """

    message: MLSMessage
    state: GroupState = field(repr=False)


def join_external(
    group_info: GroupInfo,
    *,
    leaf_node: LeafNode,
    signature_priv: bytes,
    config: GroupConfig,
    ratchet_tree: bytes | None = None,
    resync_leaf: int | None = None,
    psks: Sequence[PreSharedKeyID] = (),
    authenticated_data: bytes = b"",
    random: Callable[[int], bytes] = os.urandom,
) -> ExternalJoin:
    """Builds an external Commit that joins (or resyncs into) the group (§12.4.3.2).

    Args:
        group_info: a GroupInfo of the current epoch, with ``external_pub`` (EXT-07).
        leaf_node: the joiner's leaf template (credential, capabilities, signature key);
            its encryption key is replaced by the path's.
        signature_priv: the joiner's signature key.
        ratchet_tree: the tree, when the GroupInfo does not carry it.
        resync_leaf: the joiner's old leaf, removed in the same Commit (a resync).
        psks: external PSKs to inject.

    Raises:
        ValidationError: the GroupInfo or its tree fails a check (WEL-05/06, TREE-*, EXT-07).
    """
    try:
        suite = get_suite(group_info.group_context.cipher_suite)
    except MLSError as exc:
        raise ValidationError("§12.4.3.2/cipher-suite", "unsupported suite") from exc
    context = group_info.group_context
    tree = tree_from_group_info(suite, group_info, ratchet_tree)
    verify_group_info(suite, group_info, tree)
    validate_ratchet_tree(
        tree,
        context,
        lifetime_policy=config.lifetime_policy,
        credential_validator=config.credential_validator,
    )
    ext = find_extension(group_info.extensions, ExtensionType.EXTERNAL_PUB)
    if ext is None:
        raise ValidationError(RULE_EXTERNAL_PUB, "the GroupInfo has no external_pub")
    try:
        external_pub = extension_value(ext).external_pub
        suite.check_hpke_public_key(external_pub)
    except MLSError as exc:
        raise ValidationError(RULE_EXTERNAL_PUB, "malformed external_pub") from exc
    kem_output, init_secret = external_init_secret_for_joiner(suite, external_pub)
    proposals = [Proposal.of(ExternalInit(kem_output))]
    if resync_leaf is not None:
        if not 0 <= resync_leaf < tree.n_leaves or tree.leaf_node(LeafIndex(resync_leaf)) is None:
            raise ValidationError("§12.1.3/removed-leaf", f"leaf {resync_leaf} is not a member")
        proposals.append(Proposal.of(Remove(resync_leaf)))
        tree.remove_leaf(LeafIndex(resync_leaf))
    proposals.extend(Proposal.of(PreSharedKey(p)) for p in psks)
    # RFC 9420 §12.4.3.2: the joiner takes the leftmost blank leaf after the proposals
    own = tree.leftmost_blank_leaf()
    if own is None:
        own = LeafIndex(tree.n_leaves)
        tree.extend()
    provisional = dataclasses.replace(context, epoch=context.epoch + 1)
    created = create_update_path(
        tree, own, provisional, signature_priv, leaf_node=leaf_node, random=random
    )
    content = FramedContent.with_body(
        context.group_id,
        context.epoch,
        Sender.new_member_commit(),
        authenticated_data,
        Commit(tuple(ProposalOrRef.by_value(p) for p in proposals), created.update_path),
    )
    wire_format = WireFormat.MLS_PUBLIC_MESSAGE
    signature = sign_framed_content(suite, signature_priv, wire_format, content, context)
    interim = interim_transcript_hash(
        suite, context.confirmed_transcript_hash, group_info.confirmation_tag
    )
    psk_value = resolve_psks(
        suite,
        psks,
        group_id=context.group_id,
        resumption_psks={},
        external_psks=config.external_psks,
    )
    nxt = next_epoch(
        suite,
        context,
        interim,
        tree=tree,
        extensions=context.extensions,
        wire_format=wire_format,
        content=content,
        signature=signature,
        init_secret=init_secret,
        commit_secret=created.commit_secret,
        psk_secret_value=psk_value,
    )
    authenticated = AuthenticatedContent(
        wire_format, content, FramedContentAuthData(signature, nxt.confirmation_tag)
    )
    message = MLSMessage.of(
        protect_public_message(suite, authenticated, membership_key=None, group_context=context)
    )
    state = GroupState(
        suite=suite,
        group_context=nxt.group_context,
        tree=tree,
        private_key=created.private_key,
        signature_priv=signature_priv,
        interim_transcript_hash=nxt.interim_transcript_hash,
        confirmation_tag=nxt.confirmation_tag,
        secrets=nxt.secrets,
        secret_tree=SecretTree(
            suite, nxt.secrets.encryption_secret, tree.n_leaves, config.ratchet_policy
        ),
        resumption_psks={nxt.group_context.epoch: nxt.secrets.resumption_psk},
    )
    return ExternalJoin(message, state)
