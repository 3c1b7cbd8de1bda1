"""mls-rs's wire bytes through our codec, and mls-rs-to-mls-rs sanity (issue 13).

These need no group engine of ours: every message mls-rs produces must decode with
``mls.framing.MLSMessage`` and re-encode byte-identically, its KeyPackage must pass our
validation, and the values it derives (KeyPackageRef, tree hash, transcript hash, framing
signature) must match what our primitives compute from the same bytes.
"""

from __future__ import annotations

import time

import mls_rs_uniffi as rs
import pytest

from mls.crypto.labels import verify_with_label
from mls.framing import (
    ContentType,
    FramedContentTBS,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    WireFormat,
)
from mls.group_context import GroupContext, ProtocolVersion
from mls.key_package import KeyPackage, validate_key_package
from mls.messages import Add, Remove, Welcome
from mls.ratchet_tree import RatchetTree
from mls.transcript import confirmed_transcript_hash, interim_transcript_hash

from .mls_rs_peer import SUITE, MlsRsPeer

GROUP_ID = b"interop-codec"


def decode(data: bytes, wire_format: WireFormat) -> MLSMessage:
    """Decodes ``data``, checks its wire format and that it re-encodes to the same bytes."""
    message = MLSMessage.decode(data)
    assert message.version == ProtocolVersion.MLS10
    assert message.wire_format == wire_format
    assert message.encode() == data
    return message


def public_commit(data: bytes) -> PublicMessage:
    body = decode(data, WireFormat.MLS_PUBLIC_MESSAGE).body
    assert isinstance(body, PublicMessage)
    assert body.content.content_type == ContentType.COMMIT
    assert body.content.group_id == GROUP_ID
    return body


def agree(*peers: MlsRsPeer) -> None:
    """Every peer is at the same epoch with the same tree and exporter output."""
    contexts = {p.group_context for p in peers}
    assert len(contexts) == 1
    secrets = {p.export_secret(b"interop", b"ctx", 32) for p in peers}
    assert len(secrets) == 1
    trees = {p.ratchet_tree() for p in peers}
    assert len(trees) == 1


@pytest.fixture
def pair() -> tuple[MlsRsPeer, MlsRsPeer]:
    alice, bob = MlsRsPeer(b"alice"), MlsRsPeer(b"bob")
    alice.create_group(GROUP_ID)
    _, welcome = alice.add_member(bob.generate_key_package())
    bob.join_group(welcome)
    return alice, bob


# ============================================================================================
# KeyPackage and Welcome


def test_key_package_roundtrips_and_validates() -> None:
    data = MlsRsPeer(b"bob").generate_key_package()
    kp = decode(data, WireFormat.MLS_KEY_PACKAGE).body
    assert isinstance(kp, KeyPackage)
    assert kp.cipher_suite == SUITE.id
    assert kp.leaf_node.credential.identity == b"bob"
    assert kp.encode() == data[4:]
    validate_key_package(kp, suite=SUITE, now=int(time.time()))


def test_welcome_new_member_is_our_key_package_ref() -> None:
    alice, bob, carol = MlsRsPeer(b"alice"), MlsRsPeer(b"bob"), MlsRsPeer(b"carol")
    alice.create_group(GROUP_ID)
    kps = [bob.generate_key_package(), carol.generate_key_package()]
    _, data = alice.add_members(kps)
    welcome = decode(data, WireFormat.MLS_WELCOME).body
    assert isinstance(welcome, Welcome)
    assert welcome.cipher_suite == SUITE.id
    # RFC 9420 §12.4.3: new_member is MakeKeyPackageRef of the KeyPackage (§5.2)
    refs = set()
    for kp_bytes in kps:
        kp = MLSMessage.decode(kp_bytes).body
        assert isinstance(kp, KeyPackage)
        refs.add(kp.ref(SUITE))
    assert {s.new_member for s in welcome.secrets} == refs


def test_welcome_carries_ratchet_tree_by_default() -> None:
    alice, bob = MlsRsPeer(b"alice"), MlsRsPeer(b"bob")
    alice.create_group(GROUP_ID)
    _, welcome = alice.add_member(bob.generate_key_package())
    assert alice.last_ratchet_tree is None
    bob.join_group(welcome)  # no tree out of band: it is in the Welcome's GroupInfo
    agree(alice, bob)


def test_welcome_without_ratchet_tree_needs_it_out_of_band() -> None:
    alice = MlsRsPeer(b"alice", ratchet_tree_extension=False)
    bob, carol = MlsRsPeer(b"bob"), MlsRsPeer(b"carol")
    alice.create_group(GROUP_ID)
    _, welcome = alice.add_members([bob.generate_key_package(), carol.generate_key_package()])
    assert alice.last_ratchet_tree == alice.ratchet_tree()
    with pytest.raises(rs.Error.MlsError):
        bob.join_group(welcome)
    carol.join_group(welcome, alice.last_ratchet_tree)
    agree(alice, carol)


def test_group_info_when_exported() -> None:
    alice, bob = MlsRsPeer(b"alice"), MlsRsPeer(b"bob")
    alice.create_group(GROUP_ID)
    output = alice.group.add_members([rs.Message.from_bytes(bob.generate_key_package())])
    if output.group_info is None:
        pytest.skip("mls_rs_uniffi 0.1 returns no GroupInfo (CommitOutput.group_info is None)")
    decode(output.group_info.to_bytes(), WireFormat.MLS_GROUP_INFO)


# ============================================================================================
# Commits and application messages


def test_add_commit_roundtrips() -> None:
    alice, bob = MlsRsPeer(b"alice"), MlsRsPeer(b"bob")
    alice.create_group(GROUP_ID)
    kp = bob.generate_key_package()
    commit = public_commit(alice.add_member(kp)[0])
    assert commit.content.epoch == 0
    assert commit.content.commit is not None
    (proposal,) = commit.content.commit.proposals
    assert proposal.proposal is not None
    add = proposal.proposal.body
    assert isinstance(add, Add)
    assert MLSMessage.of(add.key_package).encode() == kp


def test_update_and_remove_commits_roundtrip(pair: tuple[MlsRsPeer, MlsRsPeer]) -> None:
    alice, bob = pair
    update = bob.update()
    alice.receive_message(update)
    body = public_commit(update)
    assert body.content.epoch == 1
    assert body.content.commit is not None
    assert body.content.commit.proposals == ()
    assert body.content.commit.path is not None  # a self-update commits a path

    remove = alice.remove_member(b"bob")
    bob.receive_message(remove)
    assert bob.removed
    body = public_commit(remove)
    assert body.content.commit is not None
    (proposal,) = body.content.commit.proposals
    assert proposal.proposal is not None
    assert proposal.proposal.body == Remove(1)


def test_application_message_roundtrips(pair: tuple[MlsRsPeer, MlsRsPeer]) -> None:
    alice, bob = pair
    data = alice.send_message(b"hello bob")
    body = decode(data, WireFormat.MLS_PRIVATE_MESSAGE).body
    assert isinstance(body, PrivateMessage)
    assert (body.group_id, body.epoch, body.content_type) == (
        GROUP_ID,
        1,
        ContentType.APPLICATION,
    )
    assert bob.receive_message(data) == b"hello bob"


# ============================================================================================
# Values mls-rs derives, recomputed with our primitives


def test_snapshot_group_context(pair: tuple[MlsRsPeer, MlsRsPeer]) -> None:
    alice, bob = pair
    context = alice.group_context
    assert isinstance(context, GroupContext)
    assert (context.cipher_suite, context.group_id, context.epoch) == (SUITE.id, GROUP_ID, 1)
    assert bob.group_context == context


def test_ratchet_tree_roundtrips_and_tree_hash_matches() -> None:
    alice, bob, carol = MlsRsPeer(b"alice"), MlsRsPeer(b"bob"), MlsRsPeer(b"carol")
    alice.create_group(GROUP_ID)
    _, welcome = alice.add_members([bob.generate_key_package(), carol.generate_key_package()])
    bob.join_group(welcome)
    carol.join_group(welcome)

    def check() -> None:
        data = alice.ratchet_tree()
        tree = RatchetTree.decode(SUITE, data)
        assert tree.encode() == data
        # RFC 9420 §7.8: the GroupContext's tree_hash is the root's tree hash
        assert tree.tree_hash() == alice.group_context.tree_hash

    check()
    update = bob.update()  # fills parent nodes along bob's path
    alice.receive_message(update)
    carol.receive_message(update)
    check()
    remove = alice.remove_member(b"bob")  # blanks a leaf in the middle
    carol.receive_message(remove)
    check()
    assert alice.members == carol.members == [b"alice", b"carol"]


def test_commit_signature_and_transcript_hash(pair: tuple[MlsRsPeer, MlsRsPeer]) -> None:
    alice, bob = pair
    interim: bytes | None = None
    before = alice.group_context
    for committer, other in [(bob, alice), (alice, bob), (bob, alice)]:
        data = committer.update()
        other.receive_message(data)
        commit = public_commit(data)
        after = alice.group_context
        assert commit.content.epoch == before.epoch == after.epoch - 1
        # RFC 9420 §6.1: the framing signature covers FramedContentTBS with the GroupContext
        # of the epoch the commit was sent in
        tbs = FramedContentTBS(
            ProtocolVersion.MLS10, WireFormat.MLS_PUBLIC_MESSAGE, commit.content, before
        )
        signature_key = committer.signature_keypair.public_key.bytes
        verify_with_label(
            SUITE, signature_key, b"FramedContentTBS", tbs.encode(), commit.auth.signature
        )
        # RFC 9420 §8.2: the confirmed hash chains from the previous epoch's interim hash
        if interim is not None:
            expected = confirmed_transcript_hash(
                SUITE, interim, WireFormat.MLS_PUBLIC_MESSAGE, commit.content, commit.auth.signature
            )
            assert after.confirmed_transcript_hash == expected
        assert commit.auth.confirmation_tag is not None
        interim = interim_transcript_hash(
            SUITE, after.confirmed_transcript_hash, commit.auth.confirmation_tag
        )
        before = after


# ============================================================================================
# mls-rs to mls-rs through the adapter


def test_mls_rs_pair_lifecycle(pair: tuple[MlsRsPeer, MlsRsPeer]) -> None:
    alice, bob = pair
    agree(alice, bob)
    assert alice.members == bob.members == [b"alice", b"bob"]
    assert alice.receive_message(bob.send_message(b"to alice")) == b"to alice"
    assert bob.receive_message(alice.send_message(b"to bob")) == b"to bob"
    for committer, other in [(alice, bob), (bob, alice)]:
        assert other.receive_message(committer.update()) is None
        agree(alice, bob)

    carol = MlsRsPeer(b"carol")
    commit, welcome = bob.add_member(carol.generate_key_package())
    alice.receive_message(commit)
    carol.join_group(welcome)
    agree(alice, bob, carol)
    assert carol.members == [b"alice", b"bob", b"carol"]
    assert carol.receive_message(alice.send_message(b"hi carol")) == b"hi carol"

    commit = alice.remove_member(b"carol")
    bob.receive_message(commit)
    carol.receive_message(commit)
    assert carol.removed
    agree(alice, bob)
    assert alice.epoch == 5
    assert alice.members == [b"alice", b"bob"]
    assert bob.receive_message(alice.send_message(b"after")) == b"after"
