"""Unit tests for mls.message_protection (RFC 9420 §6.1-§6.3) and mls.transcript.

Negative tests follow VALIDATION.md's rule: each bad message is built with the correct keys
(re-signed, re-MACed, re-encrypted) so that only the check under test can fire, and a
control message built the same way without the defect is accepted.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from mls.crypto.ciphersuite import get_suite
from mls.errors import (
    DecodeError,
    DecryptionError,
    EpochError,
    StaleGenerationError,
    UsageError,
    ValidationError,
    VerificationError,
)
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
from mls.group_context import GroupContext, ProtocolVersion
from mls.key_schedule import sender_data_key_nonce
from mls.message_protection import (
    RULE_CONTENT_AEAD,
    RULE_EPOCH,
    RULE_GROUP_ID,
    RULE_MEMBERSHIP_TAG,
    RULE_PADDING,
    RULE_PUBLIC_APPLICATION,
    RULE_SENDER_CONTENT,
    RULE_SENDER_DATA,
    RULE_SENDER_LEAF,
    RULE_SIGNATURE,
    decrypt_sender_data,
    membership_tag,
    open_private_message,
    protect_private_message,
    protect_public_message,
    sign_content,
    sign_framed_content,
    unprotect_private_message,
    unprotect_public_message,
)
from mls.messages import Commit, Proposal, Remove
from mls.secret_tree import RULE_CONSUMED, RULE_WINDOW, RatchetPolicy, RatchetType, SecretTree
from mls.transcript import confirmed_transcript_hash_input, next_transcript_hashes
from mls.tree_math import LeafIndex

SUITE = get_suite(1)
ENCRYPTION_SECRET = b"\x10" * 32
SENDER_DATA_SECRET = b"\x20" * 32
MEMBERSHIP_KEY = b"\x30" * 32
N_LEAVES = 4
SENDER = 1
SIG_PRIV, SIG_PUB = SUITE.generate_signature_key_pair()
OTHER_PRIV, OTHER_PUB = SUITE.generate_signature_key_pair()
CONTEXT = GroupContext(
    version=ProtocolVersion.MLS10,
    cipher_suite=1,
    group_id=b"group-1",
    epoch=7,
    tree_hash=b"\x01" * 32,
    confirmed_transcript_hash=b"\x02" * 32,
    extensions=(),
)
PROPOSAL = Proposal.of(Remove(2))


def key_of(leaf: LeafIndex) -> bytes | None:
    """Leaves 0 and 1 are members (same key for simplicity); 2 and 3 are blank."""
    return SIG_PUB if leaf in (0, 1) else None


def tree(**policy: int) -> SecretTree:
    return SecretTree(
        SUITE, ENCRYPTION_SECRET, N_LEAVES, RatchetPolicy(**policy) if policy else None
    )


def content(body: bytes | Proposal | Commit, *, sender: Sender | None = None) -> FramedContent:
    return FramedContent.with_body(
        CONTEXT.group_id, CONTEXT.epoch, sender or Sender.member(SENDER), b"aad", body
    )


def signed(
    body: bytes | Proposal | Commit,
    wire_format: WireFormat = WireFormat.MLS_PRIVATE_MESSAGE,
    *,
    priv: bytes = SIG_PRIV,
    sender: Sender | None = None,
    group_context: GroupContext = CONTEXT,
) -> AuthenticatedContent:
    tag = b"\x77" * 32 if isinstance(body, Commit) else None
    return sign_content(
        SUITE,
        content(body, sender=sender),
        wire_format=wire_format,
        signature_priv=priv,
        group_context=group_context,
        confirmation_tag=tag,
    )


def open_msg(msg: PrivateMessage, t: SecretTree) -> AuthenticatedContent:
    return unprotect_private_message(
        SUITE,
        msg,
        secret_tree=t,
        sender_data_secret=SENDER_DATA_SECRET,
        group_context=CONTEXT,
        signature_key_of=key_of,
    )


def seal_sender_data(
    ciphertext: bytes, sender_data: SenderData, content_type: ContentType = ContentType.APPLICATION
) -> bytes:
    """``encrypted_sender_data`` for ``ciphertext``, with the correct key (RFC 9420 §6.3.2)."""
    sd_key, sd_nonce = sender_data_key_nonce(SUITE, SENDER_DATA_SECRET, ciphertext)
    sd_aad = SenderDataAAD(CONTEXT.group_id, CONTEXT.epoch, content_type).encode()
    return SUITE.aead_seal(sd_key, sd_nonce, sd_aad, sender_data.encode())


def seal_raw(
    plaintext: bytes,
    *,
    leaf: int = SENDER,
    generation: int = 0,
    content_type: ContentType = ContentType.APPLICATION,
    guard: bytes = b"\x01\x02\x03\x04",
    authenticated_data: bytes = b"aad",
) -> PrivateMessage:
    """Encrypts an arbitrary PrivateMessageContent plaintext with the correct keys, as a
    malicious but key-holding sender would."""
    kind = (
        RatchetType.APPLICATION
        if content_type == ContentType.APPLICATION
        else RatchetType.HANDSHAKE
    )
    key = None
    if leaf < N_LEAVES and generation < 10**4:
        key = tree(max_forward=10**4).stage(leaf, kind, generation).key
    if key is not None:
        nonce = bytes(a ^ b for a, b in zip(key.nonce[:4], guard, strict=True)) + key.nonce[4:]
        aad = PrivateContentAAD(
            CONTEXT.group_id, CONTEXT.epoch, content_type, authenticated_data
        ).encode()
        ciphertext = SUITE.aead_seal(key.key, nonce, aad, plaintext)
    else:
        # No key exists (leaf outside the tree) or deriving it is out of reach: the sender-leaf
        # or window check rejects the message before its content is decrypted.
        ciphertext = b"\x00" * 48
    esd = seal_sender_data(ciphertext, SenderData(leaf, generation, guard), content_type)
    return PrivateMessage(
        CONTEXT.group_id, CONTEXT.epoch, content_type, authenticated_data, esd, ciphertext
    )


def app_plaintext(data: bytes = b"hello", padding: int = 0) -> bytes:
    auth = signed(data).auth
    return encode_private_message_content(ContentType.APPLICATION, data, auth, padding)


def assert_rejected(
    msg: PrivateMessage, t: SecretTree, error: type[ValidationError], rule: str
) -> None:
    before = t.to_bytes()
    with pytest.raises(error) as exc:
        open_msg(msg, t)
    assert exc.value.rule == rule
    assert t.to_bytes() == before


# -- PrivateMessage: round trips ------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"app data", PROPOSAL, Commit((), None)], ids=["app", "proposal", "commit"]
)
@pytest.mark.parametrize("padding", [0, 1, 100])
def test_private_round_trip(body: bytes | Proposal | Commit, padding: int) -> None:
    sender_tree, receiver_tree = tree(), tree()
    ac = signed(body)
    msg = protect_private_message(
        SUITE,
        ac,
        secret_tree=sender_tree,
        sender_data_secret=SENDER_DATA_SECRET,
        padding_size=padding,
    )
    wire = MLSMessage.of(msg).encode()
    got = open_msg(MLSMessage.decode(wire).body, receiver_tree)  # type: ignore[arg-type]
    assert got == ac
    assert not receiver_tree.has_key(
        SENDER, RatchetType.APPLICATION if isinstance(body, bytes) else RatchetType.HANDSHAKE, 0
    )


def test_sender_generations_advance_and_receiver_accepts_out_of_order() -> None:
    sender_tree, receiver_tree = tree(), tree()
    msgs = [
        protect_private_message(
            SUITE,
            signed(b"m%d" % i),
            secret_tree=sender_tree,
            sender_data_secret=SENDER_DATA_SECRET,
        )
        for i in range(3)
    ]
    for i in (2, 0, 1):
        assert open_msg(msgs[i], receiver_tree).content.application_data == b"m%d" % i


def test_open_without_apply_leaves_tree_unchanged() -> None:
    sender_tree, receiver_tree = tree(), tree()
    msg = protect_private_message(
        SUITE, signed(PROPOSAL), secret_tree=sender_tree, sender_data_secret=SENDER_DATA_SECRET
    )
    before = receiver_tree.to_bytes()
    opened = open_private_message(
        SUITE,
        msg,
        secret_tree=receiver_tree,
        sender_data_secret=SENDER_DATA_SECRET,
        group_context=CONTEXT,
        signature_key_of=key_of,
    )
    assert receiver_tree.to_bytes() == before
    assert (opened.sender_leaf, opened.generation) == (SENDER, 0)
    receiver_tree.apply(opened.staged)
    assert not receiver_tree.has_key(SENDER, RatchetType.HANDSHAKE, 0)


def test_decrypt_sender_data_names_leaf_and_generation() -> None:
    sender_tree = tree()
    sender_tree.next_sending_key(SENDER, RatchetType.APPLICATION)
    msg = protect_private_message(
        SUITE, signed(b"x"), secret_tree=sender_tree, sender_data_secret=SENDER_DATA_SECRET
    )
    sd = decrypt_sender_data(SUITE, msg, SENDER_DATA_SECRET)
    assert (sd.leaf_index, sd.generation) == (SENDER, 1)
    with pytest.raises(DecryptionError) as exc:
        decrypt_sender_data(SUITE, msg, b"\x21" * 32)
    assert exc.value.rule == RULE_SENDER_DATA


def test_seal_raw_control_message_is_accepted() -> None:
    # The helper used by the negative tests produces valid messages when nothing is wrong.
    assert open_msg(seal_raw(app_plaintext(padding=5)), tree()).content.application_data == b"hello"


# -- PrivateMessage: rejections -------------------------------------------------------------


@pytest.mark.parametrize("leaf", [4, 2**32 - 1])
def test_priv03_sender_leaf_out_of_range(leaf: int) -> None:
    assert_rejected(seal_raw(app_plaintext(), leaf=leaf), tree(), ValidationError, RULE_SENDER_LEAF)


def test_priv03_sender_leaf_blank() -> None:
    assert_rejected(seal_raw(app_plaintext(), leaf=2), tree(), ValidationError, RULE_SENDER_LEAF)


@pytest.mark.parametrize("position", [0, 2, 4])
def test_priv04_nonzero_padding(position: int) -> None:
    plaintext = bytearray(app_plaintext(padding=5))
    plaintext[len(plaintext) - 5 + position] = 1
    assert_rejected(seal_raw(bytes(plaintext)), tree(), ValidationError, RULE_PADDING)


def test_priv06_generation_beyond_window() -> None:
    t = tree(max_forward=50)
    assert (
        open_msg(seal_raw(app_plaintext(), generation=50), t).content.application_data == b"hello"
    )
    assert_rejected(seal_raw(app_plaintext(), generation=102), t, StaleGenerationError, RULE_WINDOW)


def test_priv06_generation_near_uint32_max() -> None:
    assert_rejected(
        seal_raw(app_plaintext(), generation=2**32 - 1), tree(), StaleGenerationError, RULE_WINDOW
    )


def test_priv07_replay_rejected() -> None:
    t = tree()
    msg = seal_raw(app_plaintext())
    open_msg(msg, t)
    assert_rejected(msg, t, StaleGenerationError, RULE_CONSUMED)


def test_priv07_out_of_order_then_replay() -> None:
    t = tree()
    late = seal_raw(app_plaintext(), generation=0)
    open_msg(seal_raw(app_plaintext(), generation=2), t)
    open_msg(late, t)
    open_msg(seal_raw(app_plaintext(), generation=1), t)
    assert_rejected(late, t, StaleGenerationError, RULE_CONSUMED)


def test_priv02_tampered_sender_data() -> None:
    msg = seal_raw(app_plaintext())
    bad = dataclasses.replace(
        msg,
        encrypted_sender_data=bytes([msg.encrypted_sender_data[0] ^ 1])
        + msg.encrypted_sender_data[1:],
    )
    assert_rejected(bad, tree(), DecryptionError, RULE_SENDER_DATA)


@pytest.mark.parametrize("length", [0, 16, 31])
def test_priv02_ciphertext_shorter_than_nh_uses_whole_sample(length: int) -> None:
    # Sender data sealed under the key of the whole (short) ciphertext opens; the content
    # then fails its AEAD, and nothing else goes wrong on the way.
    ciphertext = bytes(range(length))
    esd = seal_sender_data(ciphertext, SenderData(SENDER, 0, bytes(4)))
    msg = PrivateMessage(
        CONTEXT.group_id, CONTEXT.epoch, ContentType.APPLICATION, b"aad", esd, ciphertext
    )
    assert decrypt_sender_data(SUITE, msg, SENDER_DATA_SECRET) == SenderData(SENDER, 0, bytes(4))
    assert_rejected(msg, tree(), DecryptionError, RULE_CONTENT_AEAD)


def test_priv05_tampered_authenticated_data() -> None:
    msg = seal_raw(app_plaintext())
    bad = dataclasses.replace(msg, authenticated_data=b"other")
    assert_rejected(bad, tree(), DecryptionError, RULE_CONTENT_AEAD)


def test_priv05_wrong_reuse_guard() -> None:
    good = seal_raw(app_plaintext(), guard=b"\x01\x02\x03\x04")
    # Re-seal good's sender data (valid for its ciphertext) naming another reuse guard, so
    # only the content nonce is wrong.
    esd = seal_sender_data(good.ciphertext, SenderData(SENDER, 0, b"\x09\x09\x09\x09"))
    assert_rejected(
        dataclasses.replace(good, encrypted_sender_data=esd),
        tree(),
        DecryptionError,
        RULE_CONTENT_AEAD,
    )


def test_priv08_bad_signature() -> None:
    data = b"hello"
    auth = signed(data, priv=OTHER_PRIV).auth
    plaintext = encode_private_message_content(ContentType.APPLICATION, data, auth)
    assert_rejected(seal_raw(plaintext), tree(), VerificationError, RULE_SIGNATURE)


def test_priv08_signature_for_other_context_rejected() -> None:
    other_context = dataclasses.replace(CONTEXT, tree_hash=b"\x09" * 32)
    auth = signed(b"hello", group_context=other_context).auth
    plaintext = encode_private_message_content(ContentType.APPLICATION, b"hello", auth)
    assert_rejected(seal_raw(plaintext), tree(), VerificationError, RULE_SIGNATURE)


def test_priv_malformed_content_is_decode_error() -> None:
    t = tree()
    before = t.to_bytes()
    with pytest.raises(DecodeError):
        open_msg(seal_raw(b"\x05abc"), t)  # application_data claims 5 bytes, has 3
    assert t.to_bytes() == before


def test_priv01_group_and_epoch_mismatch() -> None:
    msg = seal_raw(app_plaintext())
    assert_rejected(dataclasses.replace(msg, group_id=b"other"), tree(), EpochError, RULE_GROUP_ID)
    assert_rejected(dataclasses.replace(msg, epoch=8), tree(), EpochError, RULE_EPOCH)


def test_protect_private_failure_consumes_no_generation() -> None:
    t = tree()
    before = t.to_bytes()
    with pytest.raises(UsageError):
        protect_private_message(
            SUITE,
            signed(b"x"),
            secret_tree=t,
            sender_data_secret=SENDER_DATA_SECRET,
            padding_size=-1,
        )
    assert t.to_bytes() == before
    assert t.next_generation(SENDER, RatchetType.APPLICATION) == 0


def test_protect_private_requires_member_and_private_wire_format() -> None:
    with pytest.raises(UsageError):
        protect_private_message(
            SUITE,
            signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE),
            secret_tree=tree(),
            sender_data_secret=SENDER_DATA_SECRET,
        )
    ext = sign_content(
        SUITE,
        content(PROPOSAL, sender=Sender.external(0)),
        wire_format=WireFormat.MLS_PRIVATE_MESSAGE,
        signature_priv=SIG_PRIV,
        group_context=None,
    )
    with pytest.raises(UsageError):
        protect_private_message(
            SUITE, ext, secret_tree=tree(), sender_data_secret=SENDER_DATA_SECRET
        )


# -- PublicMessage -------------------------------------------------------------------------------


def public(ac: AuthenticatedContent) -> PublicMessage:
    return protect_public_message(SUITE, ac, membership_key=MEMBERSHIP_KEY, group_context=CONTEXT)


def unprotect(msg: PublicMessage, key: bytes = SIG_PUB) -> AuthenticatedContent:
    return unprotect_public_message(
        SUITE, msg, signature_key=key, group_context=CONTEXT, membership_key=MEMBERSHIP_KEY
    )


@pytest.mark.parametrize("body", [PROPOSAL, Commit((), None)], ids=["proposal", "commit"])
def test_public_round_trip(body: Proposal | Commit) -> None:
    ac = signed(body, WireFormat.MLS_PUBLIC_MESSAGE)
    msg = public(ac)
    decoded = MLSMessage.decode(MLSMessage.of(msg).encode()).body
    assert isinstance(decoded, PublicMessage)
    assert unprotect(decoded) == ac


def test_pub03_missing_membership_tag() -> None:
    msg = dataclasses.replace(
        public(signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE)), membership_tag=None
    )
    with pytest.raises(VerificationError) as exc:
        unprotect(msg)
    assert exc.value.rule == RULE_MEMBERSHIP_TAG


def test_pub03_bad_membership_tag() -> None:
    msg = public(signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE))
    assert msg.membership_tag is not None
    bad = dataclasses.replace(
        msg, membership_tag=bytes([msg.membership_tag[0] ^ 1]) + msg.membership_tag[1:]
    )
    with pytest.raises(VerificationError) as exc:
        unprotect(bad)
    assert exc.value.rule == RULE_MEMBERSHIP_TAG


def test_pub04_bad_signature_with_valid_membership_tag() -> None:
    # Signed by another key; membership tag recomputed, so only the signature check fails.
    msg = public(signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE, priv=OTHER_PRIV))
    with pytest.raises(VerificationError) as exc:
        unprotect(msg)
    assert exc.value.rule == RULE_SIGNATURE
    assert unprotect(msg, OTHER_PUB).content.proposal == PROPOSAL  # control


def test_pub04_signature_covers_group_context() -> None:
    other_context = dataclasses.replace(CONTEXT, confirmed_transcript_hash=b"\x08" * 32)
    ac = signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE, group_context=other_context)
    tag = membership_tag(SUITE, MEMBERSHIP_KEY, ac, CONTEXT)
    msg = PublicMessage(ac.content, ac.auth, tag)
    with pytest.raises(VerificationError) as exc:
        unprotect(msg)
    assert exc.value.rule == RULE_SIGNATURE


def test_pub07_application_in_public_message() -> None:
    ac = signed(b"data", WireFormat.MLS_PUBLIC_MESSAGE)
    with pytest.raises(UsageError):
        public(ac)
    msg = PublicMessage(ac.content, ac.auth, membership_tag(SUITE, MEMBERSHIP_KEY, ac, CONTEXT))
    with pytest.raises(ValidationError) as exc:
        unprotect(msg)
    assert exc.value.rule == RULE_PUBLIC_APPLICATION


def test_pub_wrong_epoch_or_group() -> None:
    ac = signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE)
    msg = public(ac)
    with pytest.raises(EpochError) as exc:
        unprotect(dataclasses.replace(msg, content=dataclasses.replace(msg.content, epoch=6)))
    assert exc.value.rule == RULE_EPOCH
    with pytest.raises(EpochError) as exc:
        unprotect(dataclasses.replace(msg, content=dataclasses.replace(msg.content, group_id=b"x")))
    assert exc.value.rule == RULE_GROUP_ID


def test_external_sender_public_message_has_no_tag_and_no_context() -> None:
    ac = signed(PROPOSAL, WireFormat.MLS_PUBLIC_MESSAGE, priv=OTHER_PRIV, sender=Sender.external(0))
    msg = protect_public_message(SUITE, ac, membership_key=None, group_context=None)
    assert msg.membership_tag is None
    assert (
        unprotect_public_message(
            SUITE, msg, signature_key=OTHER_PUB, group_context=CONTEXT, membership_key=None
        )
        == ac
    )


def test_new_member_commit_has_no_tag_and_signature_covers_context() -> None:
    ac = signed(Commit((), None), WireFormat.MLS_PUBLIC_MESSAGE, sender=Sender.new_member_commit())
    msg = protect_public_message(SUITE, ac, membership_key=None, group_context=None)
    assert msg.membership_tag is None
    decoded = MLSMessage.decode(MLSMessage.of(msg).encode()).body
    assert isinstance(decoded, PublicMessage)

    def receive(context: GroupContext) -> AuthenticatedContent:
        return unprotect_public_message(
            SUITE, decoded, signature_key=SIG_PUB, group_context=context, membership_key=None
        )

    assert receive(CONTEXT) == ac
    # The same epoch and group id, another tree hash: the signature no longer verifies.
    with pytest.raises(VerificationError) as exc:
        receive(dataclasses.replace(CONTEXT, tree_hash=b"\x09" * 32))
    assert exc.value.rule == RULE_SIGNATURE


@pytest.mark.parametrize(
    ("sender", "body"),
    [
        (Sender.external(0), Commit((), None)),
        (Sender.new_member_commit(), PROPOSAL),
        (Sender.new_member_proposal(), PROPOSAL),  # a Remove, not an Add
        (Sender.new_member_proposal(), Commit((), None)),
    ],
    ids=["external-commit", "new-member-commit-proposal", "new-member-remove", "new-member-commit"],
)
def test_pub06_pub08_sender_may_not_send_this_content(
    sender: Sender, body: Proposal | Commit
) -> None:
    # Correctly signed by the sender's key: only the §6.1 sender/content rule is broken.
    ac = signed(body, WireFormat.MLS_PUBLIC_MESSAGE, sender=sender)
    with pytest.raises(UsageError):
        protect_public_message(SUITE, ac, membership_key=None, group_context=None)
    msg = PublicMessage(ac.content, ac.auth, None)
    with pytest.raises(ValidationError) as exc:
        unprotect_public_message(
            SUITE, msg, signature_key=SIG_PUB, group_context=CONTEXT, membership_key=None
        )
    assert exc.value.rule == RULE_SENDER_CONTENT


def test_sign_content_checks_confirmation_tag_presence() -> None:
    with pytest.raises(UsageError):
        sign_content(
            SUITE,
            content(Commit((), None)),
            wire_format=WireFormat.MLS_PUBLIC_MESSAGE,
            signature_priv=SIG_PRIV,
            group_context=CONTEXT,
        )
    with pytest.raises(UsageError):
        sign_content(
            SUITE,
            content(PROPOSAL),
            wire_format=WireFormat.MLS_PUBLIC_MESSAGE,
            signature_priv=SIG_PRIV,
            group_context=CONTEXT,
            confirmation_tag=b"x",
        )
    with pytest.raises(UsageError):
        sign_framed_content(SUITE, SIG_PRIV, WireFormat.MLS_PUBLIC_MESSAGE, content(PROPOSAL), None)


# -- transcript -----------------------------------------------------------------------------------


def test_transcript_rejects_non_commit_and_missing_tag() -> None:
    proposal = signed(PROPOSAL)
    with pytest.raises(UsageError):
        confirmed_transcript_hash_input(proposal.wire_format, proposal.content, b"sig")
    ac = signed(Commit((), None))
    no_tag = AuthenticatedContent(
        ac.wire_format, ac.content, FramedContentAuthData(ac.auth.signature, None)
    )
    with pytest.raises(UsageError):
        next_transcript_hashes(SUITE, b"", no_tag)
    interim_before = b"\x5a" * 32
    confirmed, interim = next_transcript_hashes(SUITE, interim_before, ac)
    # RFC 9420 §8.2, computed here with hashlib over hand-assembled inputs.
    assert ac.auth.confirmation_tag is not None
    signature = ac.auth.signature
    confirmed_input = (
        int(WireFormat.MLS_PRIVATE_MESSAGE).to_bytes(2, "big")
        + ac.content.encode()
        + bytes([0x40 | (len(signature) >> 8), len(signature) & 0xFF])  # 64 <= len < 16384
        + signature
    )
    assert confirmed == hashlib.sha256(interim_before + confirmed_input).digest()
    tag = ac.auth.confirmation_tag
    assert interim == hashlib.sha256(confirmed + bytes([len(tag)]) + tag).digest()
