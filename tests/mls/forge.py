"""Forging valid-but-wrong group messages for negative tests (VALIDATION §1 preamble).

Each helper builds what a key-holding but malicious (or buggy) peer could send: one field
changed, everything else re-signed, re-MACed and re-encrypted, so only the check under test
can reject it.

- PublicMessage: :func:`public_message` signs a FramedContent and adds the membership tag.
- PrivateMessage: :func:`private_plaintext` signs and encodes a PrivateMessageContent;
  :func:`seal_private` encrypts any plaintext under the sender's key of a chosen generation
  with any SenderData.
- Welcome: :func:`open_welcome` decrypts one (as the joiner), :func:`seal_welcome` encrypts a
  GroupInfo and GroupSecrets again, :func:`resign_group_info` changes GroupInfo fields,
  recomputes its confirmation tag from the joiner secret and signs it again;
  :func:`forge_welcome` does all three.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mls.crypto.ciphersuite import Suite
from mls.crypto.labels import decrypt_with_label, encrypt_with_label
from mls.framing import (
    AuthenticatedContent,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    WireFormat,
    encode_private_message_content,
)
from mls.group.state import GroupState
from mls.group.welcome import WELCOME_LABEL, JoinKeys
from mls.group_context import GroupContext
from mls.key_package import KeyPackage
from mls.key_schedule import (
    EpochSecrets,
    derive_welcome_secret,
    sender_data_key_nonce,
    welcome_key_nonce,
)
from mls.message_protection import membership_tag, sign_framed_content
from mls.messages import Commit, EncryptedGroupSecrets, GroupInfo, GroupSecrets, Proposal, Welcome
from mls.secret_tree import ratchet_type_for
from mls.treekem import HPKECiphertext

REUSE_GUARD = b"\x0a\x0b\x0c\x0d"

# --------------------------------------------------------------------------------------------
# PublicMessage


def public_message(
    state: GroupState,
    content: FramedContent,
    *,
    signature_priv: bytes | None = None,
    sign_context: GroupContext | None = None,
    membership_key: bytes | None = None,
    confirmation_tag: bytes | None = None,
    with_tag: bool = True,
) -> bytes:
    """``content`` signed (by default with ``state``'s key over its GroupContext) and tagged
    with ``state``'s membership key, as MLSMessage bytes. ``state`` is the sender's."""
    context = state.group_context if sign_context is None else sign_context
    priv = state.signature_priv if signature_priv is None else signature_priv
    wire_format = WireFormat.MLS_PUBLIC_MESSAGE
    signature = sign_framed_content(state.suite, priv, wire_format, content, context)
    auth = FramedContentAuthData(signature, confirmation_tag)
    tag = None
    if with_tag:
        key = state.secrets.membership_key if membership_key is None else membership_key
        authenticated = AuthenticatedContent(wire_format, content, auth)
        tag = membership_tag(state.suite, key, authenticated, context)
    return MLSMessage.of(PublicMessage(content, auth, tag)).encode()


def member_content(
    state: GroupState, body: bytes | Proposal | Commit, *, leaf: int | None = None, **changes: Any
) -> FramedContent:
    """A FramedContent of ``state``'s epoch from a member (default: ``state``'s own leaf)."""
    content = FramedContent.with_body(
        state.group_id,
        state.epoch,
        Sender.member(state.own_leaf if leaf is None else leaf),
        b"",
        body,
    )
    return dataclasses.replace(content, **changes)


def reframe_public(message: bytes, state: GroupState, **changes: Any) -> bytes:
    """A PublicMessage from ``state``'s member with FramedContent fields changed, signed and
    tagged again (the confirmation tag, if any, is kept)."""
    body = MLSMessage.decode(message).body
    assert isinstance(body, PublicMessage)
    content = dataclasses.replace(body.content, **changes)
    return public_message(state, content, confirmation_tag=body.auth.confirmation_tag)


# --------------------------------------------------------------------------------------------
# PrivateMessage


def private_plaintext(
    state: GroupState,
    body: bytes | Proposal | Commit,
    *,
    padding: int = 0,
    authenticated_data: bytes = b"",
    confirmation_tag: bytes | None = None,
    signature_priv: bytes | None = None,
) -> bytes:
    """A PrivateMessageContent from ``state``'s member, signed for the private wire format."""
    content = member_content(state, body, authenticated_data=authenticated_data)
    priv = state.signature_priv if signature_priv is None else signature_priv
    signature = sign_framed_content(
        state.suite, priv, WireFormat.MLS_PRIVATE_MESSAGE, content, state.group_context
    )
    auth = FramedContentAuthData(signature, confirmation_tag)
    return encode_private_message_content(content.content_type, content.body, auth, padding)


def seal_private(
    state: GroupState,
    plaintext: bytes,
    *,
    content_type: ContentType = ContentType.APPLICATION,
    generation: int = 0,
    leaf: int | None = None,
    sender_data: SenderData | None = None,
    authenticated_data: bytes = b"",
    reuse_guard: bytes = REUSE_GUARD,
    content_aad: bytes | None = None,
    ciphertext: bytes | None = None,
) -> bytes:
    """Encrypts ``plaintext`` with the key of ``generation`` in ``leaf``'s ratchet (default:
    ``state``'s own leaf; ``state`` is left unchanged) and seals ``sender_data`` (default: that
    leaf, generation and guard) with ``state``'s sender data secret.

    Args:
        content_aad: the authenticated data the content AEAD is sealed with, when it should
            differ from the one the message carries.
        ciphertext: use these bytes instead of encrypting (the sender data is sealed over them).
    """
    suite = state.suite
    leaf = int(state.own_leaf) if leaf is None else leaf
    if ciphertext is None:
        key = state.secret_tree.copy().stage(leaf, ratchet_type_for(content_type), generation).key
        nonce = bytes(a ^ b for a, b in zip(key.nonce[:4], reuse_guard, strict=True))
        aad = PrivateContentAAD(
            state.group_id,
            state.epoch,
            content_type,
            authenticated_data if content_aad is None else content_aad,
        ).encode()
        ciphertext = suite.aead_seal(key.key, nonce + key.nonce[4:], aad, plaintext)
    if sender_data is None:
        sender_data = SenderData(leaf, generation, reuse_guard)
    sd_key, sd_nonce = sender_data_key_nonce(suite, state.secrets.sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(state.group_id, state.epoch, content_type).encode()
    esd = suite.aead_seal(sd_key, sd_nonce, sd_aad, sender_data.encode())
    message = PrivateMessage(
        state.group_id, state.epoch, content_type, authenticated_data, esd, ciphertext
    )
    return MLSMessage.of(message).encode()


# --------------------------------------------------------------------------------------------
# Welcome


def open_group_secrets(welcome: Welcome, keys: JoinKeys, suite: Suite) -> GroupSecrets:
    """The GroupSecrets of ``welcome`` sealed to ``keys``' KeyPackage."""
    ref = keys.key_package.ref(suite)
    entry = next(e for e in welcome.secrets if e.new_member == ref)
    plain = decrypt_with_label(
        suite,
        keys.init_priv,
        WELCOME_LABEL,
        welcome.encrypted_group_info,
        entry.encrypted_group_secrets.kem_output,
        entry.encrypted_group_secrets.ciphertext,
    )
    return GroupSecrets.decode(plain)


def open_welcome(
    welcome: Welcome, keys: JoinKeys, suite: Suite, *, psk_value: bytes | None = None
) -> tuple[GroupInfo, GroupSecrets]:
    """The GroupInfo and GroupSecrets of ``welcome``, as the holder of ``keys`` reads them."""
    secrets = open_group_secrets(welcome, keys, suite)
    welcome_secret = derive_welcome_secret(suite, secrets.joiner_secret, psk_value)
    key, nonce = welcome_key_nonce(suite, welcome_secret)
    info = GroupInfo.decode(suite.aead_open(key, nonce, b"", welcome.encrypted_group_info))
    return info, secrets


def seal_welcome(
    suite: Suite,
    info: GroupInfo | bytes,
    secrets: GroupSecrets | bytes,
    key_package: KeyPackage,
    *,
    joiner_secret: bytes | None = None,
    psk_value: bytes | None = None,
    cipher_suite: int | None = None,
    new_member: bytes | None = None,
) -> Welcome:
    """A Welcome carrying ``info`` (encrypted under the welcome key of ``secrets``' joiner
    secret, or ``joiner_secret``) and ``secrets`` sealed to ``key_package``'s init key. Either
    may be raw bytes (for undecodable contents)."""
    if joiner_secret is None:
        assert isinstance(secrets, GroupSecrets)
        joiner_secret = secrets.joiner_secret
    key, nonce = welcome_key_nonce(suite, derive_welcome_secret(suite, joiner_secret, psk_value))
    info_bytes = info if isinstance(info, bytes) else info.encode()
    encrypted_group_info = suite.aead_seal(key, nonce, b"", info_bytes)
    secrets_bytes = secrets if isinstance(secrets, bytes) else secrets.encode()
    kem_output, ciphertext = encrypt_with_label(
        suite, key_package.init_key, WELCOME_LABEL, encrypted_group_info, secrets_bytes
    )
    ref = key_package.ref(suite) if new_member is None else new_member
    entry = EncryptedGroupSecrets(ref, HPKECiphertext(kem_output, ciphertext))
    suite_id = int(suite.id) if cipher_suite is None else cipher_suite
    return Welcome(suite_id, (entry,), encrypted_group_info)


def resign_group_info(
    suite: Suite,
    info: GroupInfo,
    signature_priv: bytes,
    *,
    joiner_secret: bytes | None = None,
    psk_value: bytes | None = None,
    context_changes: Mapping[str, Any] | None = None,
    **changes: Any,
) -> GroupInfo:
    """``info`` with fields (and GroupContext fields) changed, its confirmation tag
    recomputed for the changed context when ``joiner_secret`` is given, and signed again."""
    if context_changes:
        changes["group_context"] = dataclasses.replace(info.group_context, **context_changes)
    info = dataclasses.replace(info, **changes)
    if joiner_secret is not None and "confirmation_tag" not in changes:
        context = info.group_context
        secrets = EpochSecrets.from_joiner_secret(suite, joiner_secret, psk_value, context)
        tag = secrets.confirmation_tag(suite, context.confirmed_transcript_hash)
        info = dataclasses.replace(info, confirmation_tag=tag)
    return info.signed(suite, signature_priv)


def forge_welcome(
    welcome: Welcome,
    keys: JoinKeys,
    suite: Suite,
    signature_priv: bytes,
    *,
    secrets_changes: Mapping[str, Any] | None = None,
    context_changes: Mapping[str, Any] | None = None,
    psk_value: bytes | None = None,
    **info_changes: Any,
) -> Welcome:
    """``welcome`` with GroupInfo / GroupContext / GroupSecrets fields changed, the GroupInfo
    re-tagged and re-signed (with ``signature_priv``, the signer's key), everything
    re-encrypted to ``keys``' KeyPackage."""
    info, secrets = open_welcome(welcome, keys, suite, psk_value=psk_value)
    if secrets_changes:
        secrets = dataclasses.replace(secrets, **secrets_changes)
    info = resign_group_info(
        suite,
        info,
        signature_priv,
        joiner_secret=secrets.joiner_secret,
        psk_value=psk_value,
        context_changes=context_changes,
        **info_changes,
    )
    return seal_welcome(suite, info, secrets, keys.key_package, psk_value=psk_value)
