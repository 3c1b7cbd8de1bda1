"""Signing, MACing and encrypting framed messages (RFC 9420 §6.1-§6.3).

Sending goes in two steps. First the content is signed into an
:class:`~mls.framing.AuthenticatedContent` (:func:`sign_content`, or
:func:`sign_framed_content` when a Commit's confirmation tag must be computed between the
signature and the wrapping). Then it is wrapped: :func:`protect_public_message` adds the
membership tag (member senders), :func:`protect_private_message` encrypts it under the next
key of the sender's ratchet.

Receiving reverses that. :func:`unprotect_public_message` checks the membership tag and the
signature. :func:`open_private_message` decrypts the sender data, checks the sender leaf,
stages the generation's key, decrypts the content, checks the padding, decodes, and verifies
the signature; it returns the content and the *staged* key, which the caller consumes with
``secret_tree.apply`` once it has accepted the message (:func:`unprotect_private_message`
does both at once).

What is left to the caller: choosing the epoch (and its secrets) the message names, checking
a Commit's confirmation tag (it needs the next epoch's key schedule), resolving the signature
key of public senders (member leaf, external sender, new member), and recognising our own
messages.

Contract: every check raises a typed error carrying a ``rule`` (below), and a rejected
message changes no state: the secret tree is only changed by ``apply``, after every check.
Tags compare in constant time; errors never include key material.
"""

from __future__ import annotations

import hmac
import secrets as _random
from collections.abc import Callable
from dataclasses import dataclass

from .crypto.ciphersuite import Suite
from .crypto.labels import sign_with_label, verify_with_label
from .errors import (
    DecryptionError,
    EpochError,
    UsageError,
    ValidationError,
    VerificationError,
)
from .framing import (
    REUSE_GUARD_SIZE,
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    PrivateContentAAD,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
    decode_private_message_content,
    encode_private_message_content,
)
from .group_context import GroupContext, ProtocolVersion
from .key_schedule import sender_data_key_nonce
from .messages import ProposalType
from .secret_tree import RULE_SENDER_LEAF, SecretTree, StagedKey, ratchet_type_for
from .tree_math import LeafIndex

FRAMED_CONTENT_TBS_LABEL = b"FramedContentTBS"
"""The SignWithLabel label of framing signatures (RFC 9420 §6.1)."""

RULE_GROUP_ID = "§6/group-id"
"""The message is for another group (VALIDATION PUB-01, PRIV-01)."""
RULE_EPOCH = "§6/epoch"
"""The message's epoch is not the epoch whose secrets were supplied (PUB-02, PRIV-01)."""
RULE_PUBLIC_APPLICATION = "§6/application-in-public-message"
"""Application data never travels in a PublicMessage (PUB-07)."""
RULE_SENDER_CONTENT = "§6.1/sender-content-type"
"""An external or new-member sender with content it may not send: external senders and
``new_member_proposal`` send proposals only (the latter Add only), ``new_member_commit``
commits only (PUB-06, PUB-08)."""
RULE_MEMBERSHIP_TAG = "§6.2/membership-tag"
"""A member's PublicMessage lacks a membership tag, or it does not verify (PUB-03)."""
RULE_SIGNATURE = "§6.1/signature"
"""The FramedContentTBS signature does not verify (PUB-04, PRIV-08)."""
RULE_SENDER_DATA = "§6.3.2/sender-data-aead"
"""The sender data does not decrypt (PRIV-02)."""
RULE_CONTENT_AEAD = "§6.3.1/content-aead"
"""The content does not decrypt (PRIV-05)."""
RULE_PADDING = "§6.3.1/padding"
"""The decrypted padding holds a non-zero byte (PRIV-04)."""

__all__ = [
    "FRAMED_CONTENT_TBS_LABEL",
    "RULE_CONTENT_AEAD",
    "RULE_EPOCH",
    "RULE_GROUP_ID",
    "RULE_MEMBERSHIP_TAG",
    "RULE_PADDING",
    "RULE_PUBLIC_APPLICATION",
    "RULE_SENDER_CONTENT",
    "RULE_SENDER_DATA",
    "RULE_SENDER_LEAF",
    "RULE_SIGNATURE",
    "OpenedPrivateMessage",
    "decrypt_sender_data",
    "framed_content_tbs",
    "membership_tag",
    "open_private_message",
    "protect_private_message",
    "protect_public_message",
    "sender_data_key_nonce",
    "sign_content",
    "sign_framed_content",
    "unprotect_private_message",
    "unprotect_public_message",
    "verify_framed_content_signature",
]


# --------------------------------------------------------------------------------------------
# Signatures and membership tags (§6.1, §6.2)


def framed_content_tbs(
    wire_format: WireFormat, content: FramedContent, group_context: GroupContext | None
) -> FramedContentTBS:
    """The FramedContentTBS of ``content`` (RFC 9420 §6.1). The group context is included
    exactly for member and new-member-commit senders; it may be ``None`` for the others.

    Raises:
        UsageError: a member or new-member-commit sender and no group context.
    """
    wants = content.sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)
    if wants and group_context is None:
        raise UsageError("member and new_member_commit signatures cover the group context")
    return FramedContentTBS(
        ProtocolVersion.MLS10, wire_format, content, group_context if wants else None
    )


def sign_framed_content(
    suite: Suite,
    signature_priv: bytes,
    wire_format: WireFormat,
    content: FramedContent,
    group_context: GroupContext | None,
) -> bytes:
    """``SignWithLabel(signature_priv, "FramedContentTBS", FramedContentTBS)`` (RFC 9420 §6.1)."""
    tbs = framed_content_tbs(wire_format, content, group_context).encode()
    return sign_with_label(suite, signature_priv, FRAMED_CONTENT_TBS_LABEL, tbs)


def sign_content(
    suite: Suite,
    content: FramedContent,
    *,
    wire_format: WireFormat,
    signature_priv: bytes,
    group_context: GroupContext | None,
    confirmation_tag: bytes | None = None,
) -> AuthenticatedContent:
    """Signs ``content`` for sending as ``wire_format`` (RFC 9420 §6.1).

    Args:
        confirmation_tag: required exactly for Commit content. When it depends on the
            signature (it always does for a real Commit, via the transcript hash), call
            :func:`sign_framed_content` first and build the AuthenticatedContent yourself.

    Raises:
        UsageError: the tag's presence does not match the content type, or a wire format
            other than public or private message.
    """
    if wire_format not in (WireFormat.MLS_PUBLIC_MESSAGE, WireFormat.MLS_PRIVATE_MESSAGE):
        raise UsageError("framed content is sent as a public or private message")
    if (confirmation_tag is not None) != (content.content_type == ContentType.COMMIT):
        raise UsageError("confirmation_tag must be given exactly for commit content")
    signature = sign_framed_content(suite, signature_priv, wire_format, content, group_context)
    return AuthenticatedContent(
        wire_format, content, FramedContentAuthData(signature, confirmation_tag)
    )


def verify_framed_content_signature(
    suite: Suite,
    signature_key: bytes,
    authenticated_content: AuthenticatedContent,
    group_context: GroupContext | None,
) -> None:
    """Checks the framing signature of ``authenticated_content`` (RFC 9420 §6.1).

    Raises:
        VerificationError: rule ``"§6.1/signature"``.
        ValidationError: ``signature_key`` is not a valid key encoding for the suite.
    """
    tbs = framed_content_tbs(
        authenticated_content.wire_format, authenticated_content.content, group_context
    ).encode()
    try:
        verify_with_label(
            suite,
            signature_key,
            FRAMED_CONTENT_TBS_LABEL,
            tbs,
            authenticated_content.auth.signature,
        )
    except VerificationError:
        raise VerificationError(
            RULE_SIGNATURE, "framed content signature does not verify"
        ) from None


def membership_tag(
    suite: Suite,
    membership_key: bytes,
    authenticated_content: AuthenticatedContent,
    group_context: GroupContext,
) -> bytes:
    """``MAC(membership_key, AuthenticatedContentTBM)`` (RFC 9420 §6.2)."""
    tbs = framed_content_tbs(
        authenticated_content.wire_format, authenticated_content.content, group_context
    )
    tbm = AuthenticatedContentTBM(tbs, authenticated_content.auth).encode()
    return suite.mac(membership_key, tbm)


def _sender_content_error(content: FramedContent) -> str | None:
    """Why ``content``'s sender may not send it (RFC 9420 §6.1), or ``None`` if it may.

    Members may send any content type; which proposal types an external sender may send is
    the group's policy (§12.1.8) and is checked where the ``external_senders`` are known.
    """
    sender_type = content.sender.sender_type
    if sender_type == SenderType.NEW_MEMBER_COMMIT:
        if content.content_type != ContentType.COMMIT:
            return "a new_member_commit sender may only send a commit"
    elif sender_type == SenderType.NEW_MEMBER_PROPOSAL:
        proposal = content.proposal
        if content.content_type != ContentType.PROPOSAL or proposal is None:
            return "a new_member_proposal sender may only send a proposal"
        if proposal.proposal_type != ProposalType.ADD:
            return "a new_member_proposal sender may only propose Add"
    elif sender_type == SenderType.EXTERNAL and content.content_type != ContentType.PROPOSAL:
        return "an external sender may only send proposals"
    return None


def _check_group_and_epoch(group_id: bytes, epoch: int, group_context: GroupContext) -> None:
    if not hmac.compare_digest(group_id, group_context.group_id):
        raise EpochError(RULE_GROUP_ID, "message is for another group")
    if epoch != group_context.epoch:
        raise EpochError(RULE_EPOCH, f"message epoch {epoch} is not epoch {group_context.epoch}")


# --------------------------------------------------------------------------------------------
# PublicMessage (§6.2)


def protect_public_message(
    suite: Suite,
    authenticated_content: AuthenticatedContent,
    *,
    membership_key: bytes | None,
    group_context: GroupContext | None,
) -> PublicMessage:
    """Wraps signed content as a PublicMessage, adding the membership tag for member
    senders (RFC 9420 §6.2).

    Raises:
        UsageError: application content (never public, §6), a wire format other than
            public message, content its sender type may not send (§6.1), or a member sender
            without ``membership_key``/``group_context``.
    """
    content = authenticated_content.content
    if content.content_type == ContentType.APPLICATION:
        raise UsageError("application data cannot be sent as a PublicMessage")
    if authenticated_content.wire_format != WireFormat.MLS_PUBLIC_MESSAGE:
        raise UsageError("content signed for another wire format")
    problem = _sender_content_error(content)
    if problem is not None:
        raise UsageError(problem)
    tag = None
    if content.sender.sender_type == SenderType.MEMBER:
        if membership_key is None or group_context is None:
            raise UsageError("member PublicMessages need the membership key and group context")
        tag = membership_tag(suite, membership_key, authenticated_content, group_context)
    return PublicMessage(content, authenticated_content.auth, tag)


def unprotect_public_message(
    suite: Suite,
    message: PublicMessage,
    *,
    signature_key: bytes,
    group_context: GroupContext,
    membership_key: bytes | None,
) -> AuthenticatedContent:
    """Checks a received PublicMessage and returns its AuthenticatedContent (RFC 9420 §6.2).

    Args:
        signature_key: the sender's signature key, resolved by the caller from the sender
            (member leaf, external sender, or the new member's own leaf).
        group_context: the current epoch's GroupContext.
        membership_key: the current epoch's membership key (needed for member senders).

    Raises:
        EpochError: rules ``"§6/group-id"``, ``"§6/epoch"``.
        ValidationError: rules ``"§6/application-in-public-message"``,
            ``"§6.1/sender-content-type"``.
        VerificationError: rules ``"§6.2/membership-tag"``, ``"§6.1/signature"``.
    """
    content = message.content
    _check_group_and_epoch(content.group_id, content.epoch, group_context)
    if content.content_type == ContentType.APPLICATION:
        raise ValidationError(RULE_PUBLIC_APPLICATION, "application data in a PublicMessage")
    # RFC 9420 §6.1: non-member senders are limited in what they may send.
    problem = _sender_content_error(content)
    if problem is not None:
        raise ValidationError(RULE_SENDER_CONTENT, problem)
    authenticated = AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, content, message.auth)
    if content.sender.sender_type == SenderType.MEMBER:
        if message.membership_tag is None:
            raise VerificationError(RULE_MEMBERSHIP_TAG, "member message without membership tag")
        if membership_key is None:
            raise UsageError("member PublicMessages need the membership key")
        expected = membership_tag(suite, membership_key, authenticated, group_context)
        if not hmac.compare_digest(expected, message.membership_tag):
            raise VerificationError(RULE_MEMBERSHIP_TAG, "membership tag does not verify")
    verify_framed_content_signature(suite, signature_key, authenticated, group_context)
    return authenticated


# --------------------------------------------------------------------------------------------
# PrivateMessage (§6.3)


def _xor_guard(nonce: bytes, reuse_guard: bytes) -> bytes:
    head = int.from_bytes(nonce[:REUSE_GUARD_SIZE], "big") ^ int.from_bytes(reuse_guard, "big")
    return head.to_bytes(REUSE_GUARD_SIZE, "big") + nonce[REUSE_GUARD_SIZE:]


def protect_private_message(
    suite: Suite,
    authenticated_content: AuthenticatedContent,
    *,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    padding_size: int = 0,
    reuse_guard: bytes | None = None,
) -> PrivateMessage:
    """Encrypts signed member content as a PrivateMessage (RFC 9420 §6.3).

    Consumes the next generation of the sender's handshake or application ratchet in
    ``secret_tree``.

    Args:
        padding_size: zero bytes appended to the content (§6.3.1).
        reuse_guard: 4 bytes XORed into the nonce; fresh random bytes unless given (tests).

    Raises:
        UsageError: the sender is not a member, the content was signed for another wire
            format, or ``reuse_guard`` is not 4 bytes.
    """
    content = authenticated_content.content
    if authenticated_content.wire_format != WireFormat.MLS_PRIVATE_MESSAGE:
        raise UsageError("content signed for another wire format")
    if content.sender.sender_type != SenderType.MEMBER or content.sender.leaf_index is None:
        raise UsageError("only members send PrivateMessages")
    guard = _random.token_bytes(REUSE_GUARD_SIZE) if reuse_guard is None else reuse_guard
    if len(guard) != REUSE_GUARD_SIZE:
        raise UsageError("reuse_guard must be 4 bytes")
    # Everything that can fail runs before the sending key is consumed.
    plaintext = encode_private_message_content(
        content.content_type, content.body, authenticated_content.auth, padding_size
    )
    aad = PrivateContentAAD(
        content.group_id, content.epoch, content.content_type, content.authenticated_data
    ).encode()
    sd_aad = SenderDataAAD(content.group_id, content.epoch, content.content_type).encode()
    leaf = content.sender.leaf_index
    key = secret_tree.next_sending_key(leaf, ratchet_type_for(content.content_type))
    ciphertext = suite.aead_seal(key.key, _xor_guard(key.nonce, guard), aad, plaintext)
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, ciphertext)
    encrypted_sender_data = suite.aead_seal(
        sd_key, sd_nonce, sd_aad, SenderData(leaf, key.generation, guard).encode()
    )
    return PrivateMessage(
        content.group_id,
        content.epoch,
        content.content_type,
        content.authenticated_data,
        encrypted_sender_data,
        ciphertext,
    )


def decrypt_sender_data(
    suite: Suite, message: PrivateMessage, sender_data_secret: bytes
) -> SenderData:
    """Decrypts a PrivateMessage's SenderData (RFC 9420 §6.3.2), e.g. to recognise our own
    messages before opening them (VALIDATION PRIV-09). Checks nothing else.

    Raises:
        DecryptionError: rule ``"§6.3.2/sender-data-aead"`` (PRIV-02).
        DecodeError: the decrypted sender data is malformed.
    """
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, message.ciphertext)
    sd_aad = SenderDataAAD(message.group_id, message.epoch, message.content_type).encode()
    try:
        plain = suite.aead_open(sd_key, sd_nonce, sd_aad, message.encrypted_sender_data)
    except DecryptionError:
        raise DecryptionError(RULE_SENDER_DATA, "sender data does not decrypt") from None
    return SenderData.decode(plain)


@dataclass(frozen=True)
class OpenedPrivateMessage:
    """A PrivateMessage that passed every check of §6.3, with its key still unconsumed.

    Attributes:
        content: the authenticated content (wire format private message).
        staged: the ratchet key used; pass it to ``SecretTree.apply`` when the message is
            accepted, so its generation can never be used again (§9.2).
    """

    content: AuthenticatedContent
    staged: StagedKey

    @property
    def sender_leaf(self) -> LeafIndex:
        return self.staged.leaf

    @property
    def generation(self) -> int:
        return self.staged.generation


def open_private_message(
    suite: Suite,
    message: PrivateMessage,
    *,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    group_context: GroupContext,
    signature_key_of: Callable[[LeafIndex], bytes | None],
) -> OpenedPrivateMessage:
    """Decrypts and checks a PrivateMessage without consuming its key (RFC 9420 §6.3).

    Args:
        secret_tree, sender_data_secret, group_context: those of the epoch the message
            names (the current one, or a retained past epoch for application data).
        signature_key_of: the signature key of the member at a leaf, or ``None`` if that
            leaf is blank.

    Raises:
        EpochError: rules ``"§6/group-id"``, ``"§6/epoch"`` (PRIV-01).
        DecryptionError: rules ``"§6.3.2/sender-data-aead"`` (PRIV-02),
            ``"§6.3.1/content-aead"`` (PRIV-05).
        DecodeError: the sender data or content does not decode.
        ValidationError: rules ``"§6.3.2/sender-leaf"`` (blank or out-of-range leaf,
            PRIV-03), ``"§6.3.1/padding"`` (PRIV-04).
        StaleGenerationError: the generation was consumed or is beyond the window (PRIV-06/07).
        VerificationError: rule ``"§6.1/signature"`` (PRIV-08).
    """
    _check_group_and_epoch(message.group_id, message.epoch, group_context)
    content_type = message.content_type
    sender_data = decrypt_sender_data(suite, message, sender_data_secret)
    leaf = LeafIndex(sender_data.leaf_index)
    if leaf >= secret_tree.n_leaves:
        raise ValidationError(RULE_SENDER_LEAF, f"sender leaf {leaf} is outside the tree")
    signature_key = signature_key_of(leaf)
    if signature_key is None:
        raise ValidationError(RULE_SENDER_LEAF, f"sender leaf {leaf} is blank")
    staged = secret_tree.stage(leaf, ratchet_type_for(content_type), sender_data.generation)
    aad = PrivateContentAAD(
        message.group_id, message.epoch, content_type, message.authenticated_data
    ).encode()
    nonce = _xor_guard(staged.key.nonce, sender_data.reuse_guard)
    try:
        plaintext = suite.aead_open(staged.key.key, nonce, aad, message.ciphertext)
    except DecryptionError:
        raise DecryptionError(RULE_CONTENT_AEAD, "content does not decrypt") from None
    body, auth, padding_ok = decode_private_message_content(content_type, plaintext)
    if not padding_ok:
        raise ValidationError(RULE_PADDING, "padding holds a non-zero byte")
    content = FramedContent.with_body(
        message.group_id, message.epoch, Sender.member(leaf), message.authenticated_data, body
    )
    authenticated = AuthenticatedContent(WireFormat.MLS_PRIVATE_MESSAGE, content, auth)
    verify_framed_content_signature(suite, signature_key, authenticated, group_context)
    return OpenedPrivateMessage(authenticated, staged)


def unprotect_private_message(
    suite: Suite,
    message: PrivateMessage,
    *,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    group_context: GroupContext,
    signature_key_of: Callable[[LeafIndex], bytes | None],
) -> AuthenticatedContent:
    """:func:`open_private_message`, then consumes the key: for callers with nothing left
    to check. Raises what :func:`open_private_message` raises, with no state change."""
    opened = open_private_message(
        suite,
        message,
        secret_tree=secret_tree,
        sender_data_secret=sender_data_secret,
        group_context=group_context,
        signature_key_of=signature_key_of,
    )
    secret_tree.apply(opened.staged)
    return opened.content
