"""Receiving a Commit that breaks one rule of RFC 9420 §12.2/§12.4.2 (VALIDATION COM-01..24).

Each Commit is built by our own committer ("frankenstein", see ``tests/mls/forge_commit.py``)
with only the validator under test disabled for the creation, or mutated and re-signed /
re-tagged, so only the check under test can fire. Each test asserts the error type, its
``.rule`` and that the receiver is unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from mls.crypto.labels import encrypt_with_label
from mls.errors import DecodeError, DecryptionError, EpochError, ValidationError, VerificationError
from mls.extensions import Extension, ExtensionType, RequiredCapabilities, make_extension
from mls.framing import FramedContent, MLSMessage, PublicMessage, Sender
from mls.group import commit as commit_module
from mls.group import proposals as proposals_module
from mls.group import staged_commit as staged_module
from mls.group.config import GroupConfig
from mls.group.epoch import RULE_PSK_UNKNOWN
from mls.group.group import Group, add_proposal
from mls.group.proposals import (
    RULE_ADD_MEMBER,
    RULE_COMMITTER_REMOVE,
    RULE_COMMITTER_UPDATE,
    RULE_DUPLICATE_ADD,
    RULE_DUPLICATE_PSK,
    RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT,
    RULE_MULTIPLE_GCE,
    RULE_REINIT_ALONE,
    RULE_SAME_LEAF,
)
from mls.group.staged_commit import (
    RULE_CONFIRMATION_TAG,
    RULE_PATH_REQUIRED,
    RULE_PROPOSAL_REF,
    StagedCommit,
)
from mls.group_context import ProtocolVersion
from mls.leaf_node import Capabilities, LeafNodeSource
from mls.message_protection import RULE_EPOCH, RULE_SENDER_CONTENT, sign_framed_content
from mls.messages import (
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    ReInit,
    Remove,
)
from mls.psk_id import PreSharedKeyID
from mls.tree_validation import RULE_CREDENTIAL, RULE_LEAF_SOURCE, RULE_UPDATE_KEY, MemberIndex
from mls.tree_validation import RULE_REQUIRED_CAPABILITIES as RULE_LEAF_REQUIRED_CAPABILITIES
from mls.treekem import (
    RULE_CIPHERTEXT_COUNT,
    RULE_DERIVED_PUBLIC_KEY,
    RULE_LEAF_PARENT_HASH,
    RULE_PATH_KEY_UNIQUE,
    RULE_PATH_LENGTH,
    UPDATE_PATH_NODE_LABEL,
    HPKECiphertext,
    UpdatePath,
)
from tests.mls.forge_commit import (
    commit_of,
    forge_commit,
    identity_with,
    public_message,
    reframe,
    rejects,
    repath,
    update_proposal,
    with_proposals,
)
from tests.mls.group_harness import GroupHarness, fresh_key_package, new_identity, unchanged

LIST_CHECK = (staged_module, "validate_proposal_list")
"""Disabling §12.2's list rules for the committer only."""

PSK_ID = b"shared-psk"
PSK_CONFIG = GroupConfig(external_psks={PSK_ID: b"\x42" * 32})


@pytest.fixture
def h() -> GroupHarness:
    """Three members, suite 1; member 0 commits, member 2 receives."""
    return GroupHarness(1, 3)


def ext_psk(suite_hash_length: int) -> Proposal:
    return Proposal.of(PreSharedKey(PreSharedKeyID.external(PSK_ID, os.urandom(suite_hash_length))))


def psk_harness() -> GroupHarness:
    return GroupHarness(1, 3, PSK_CONFIG)


# --------------------------------------------------------------------------------------------
# COM-01..04: framing of the Commit


def test_com01_commit_for_another_epoch_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, force_path=True)

    def next_epoch(content: FramedContent) -> FramedContent:
        return dataclasses.replace(content, epoch=content.epoch + 1)

    rejects(receiver, reframe(committer, message, next_epoch), EpochError, RULE_EPOCH)


def test_com01_commit_of_the_previous_epoch_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    stale = forge_commit(committer, force_path=True)
    h.update(1)
    h.deliver_all()
    rejects(receiver, stale, EpochError, RULE_EPOCH)


class _NoPath:
    """Wraps ``check_proposals`` so the committer believes no path is required."""

    def __init__(self) -> None:
        self.original = staged_module.check_proposals

    def __call__(self, *args: Any, **kw: Any) -> Any:
        applied = self.original(*args, **kw)
        applied.path_required = False
        return applied


def commit_without_path(committer: Group, proposals: list[Proposal]) -> bytes:
    from unittest import mock

    with mock.patch.object(commit_module, "check_proposals", _NoPath()):
        created = committer.commit(proposals)
    committer.clear_pending_commit()
    assert commit_of(public_message(created.message.encode()).content).path is None
    return created.message.encode()


@pytest.mark.parametrize("kind", ["empty", "remove", "update", "gce"])
def test_com02_commit_without_required_path_is_rejected(h: GroupHarness, kind: str) -> None:
    committer, receiver = h.group(0), h.group(2)
    proposals: list[Proposal] = []
    if kind == "remove":
        proposals = [Proposal.of(Remove(1))]
    elif kind == "update":
        # member 1's Update, cached at the committer and the receiver, committed by reference
        update = h.group(1).propose_update()
        committer.process(update)
        receiver.process(update)
    elif kind == "gce":
        proposals = [Proposal.of(GroupContextExtensions(()))]
    message = commit_without_path(committer, proposals)
    rejects(receiver, message, ValidationError, RULE_PATH_REQUIRED)


def test_gce06_group_context_extensions_without_path_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = commit_without_path(committer, [Proposal.of(GroupContextExtensions(()))])
    rejects(receiver, message, ValidationError, RULE_PATH_REQUIRED)


def test_com02_add_only_commit_without_path_is_accepted(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    created = committer.commit([add_proposal(new_identity(1, b"dave").key_package)])
    assert commit_of(public_message(created.message.encode()).content).path is None
    committer.merge_pending_commit()
    staged = receiver.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    receiver.merge(staged)
    assert receiver.epoch_authenticator == committer.epoch_authenticator


def test_com03_reference_to_a_proposal_the_receiver_never_saw_is_rejected(
    h: GroupHarness,
) -> None:
    committer, receiver = h.group(0), h.group(2)
    committer.propose_remove(1)  # never delivered to the receiver
    message = forge_commit(committer)
    rejects(receiver, message, ValidationError, RULE_PROPOSAL_REF)


def test_com03_reference_to_a_proposal_of_a_past_epoch_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    proposal = h.group(1).propose_update()
    committer.process(proposal)
    receiver.process(proposal)
    old = committer.pending_proposals[0]
    # a Commit without the Remove moves everyone to the next epoch, dropping the cache
    h.commit(0, by_reference=False, force_path=True)
    h.deliver_to(2)
    h.group(1).clear_pending_commit()
    committer.state.proposals.append(old)  # the committer still "remembers" it
    message = forge_commit(committer, relax=[(staged_module, "validate_proposal")])
    rejects(receiver, message, ValidationError, RULE_PROPOSAL_REF)


def test_com03_unknown_reference_bytes_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, [Proposal.of(Remove(1))])

    ref = ProposalOrRef.by_reference(os.urandom(committer.suite.hash_length))
    forged = with_proposals(committer, message, lambda _: (ref,))
    rejects(receiver, forged, ValidationError, RULE_PROPOSAL_REF)


def test_com04_commit_from_an_external_sender_is_rejected() -> None:
    """The Commit is signed by a listed external sender, so only the sender rule can fire."""
    suite = 1
    h = GroupHarness(suite, 2)
    sender_priv, sender_pub = h.group(0).suite.generate_signature_key_pair()
    from mls.credentials import Credential
    from mls.extensions import ExternalSender

    senders = make_extension(
        ExtensionType.EXTERNAL_SENDERS, (ExternalSender(sender_pub, Credential.basic(b"ds")),)
    )
    h.commit(0, [Proposal.of(GroupContextExtensions((senders,)))])
    h.deliver_all()
    committer, receiver = h.group(0), h.group(1)
    message = forge_commit(committer, force_path=True)
    public = public_message(message)
    content = dataclasses.replace(public.content, sender=Sender.external(0))
    state = receiver.state
    wire = MLSMessage.decode(message).wire_format
    signature = sign_framed_content(state.suite, sender_priv, wire, content, state.group_context)
    forged = PublicMessage(content, dataclasses.replace(public.auth, signature=signature), None)
    rejects(receiver, MLSMessage.of(forged).encode(), ValidationError, RULE_SENDER_CONTENT)


# --------------------------------------------------------------------------------------------
# COM-05..12: the UpdatePath and the confirmation tag


def _drop_last_node(path: UpdatePath) -> UpdatePath:
    return dataclasses.replace(path, nodes=path.nodes[:-1])


def test_com05_too_few_path_nodes_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = repath(committer, forge_commit(committer, force_path=True), _drop_last_node)
    rejects(receiver, message, ValidationError, RULE_PATH_LENGTH)


def test_com05_too_many_path_nodes_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)

    def extra(path: UpdatePath) -> UpdatePath:
        return dataclasses.replace(path, nodes=(*path.nodes, path.nodes[-1]))

    message = repath(committer, forge_commit(committer, force_path=True), extra)
    rejects(receiver, message, ValidationError, RULE_PATH_LENGTH)


def test_com06_missing_ciphertext_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)

    def fewer(path: UpdatePath) -> UpdatePath:
        last = path.nodes[-1]
        short = dataclasses.replace(last, encrypted_path_secret=last.encrypted_path_secret[1:])
        return dataclasses.replace(path, nodes=(*path.nodes[:-1], short))

    message = repath(committer, forge_commit(committer, force_path=True), fewer)
    rejects(receiver, message, ValidationError, RULE_CIPHERTEXT_COUNT)


def test_com06_ciphertext_for_a_newly_added_leaf_is_rejected(h: GroupHarness) -> None:
    """A ciphertext to the member the Commit adds is one too many (§7.6 excludes it)."""
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(
        committer, [add_proposal(new_identity(1, b"dave").key_package)], force_path=True
    )

    def extra(path: UpdatePath) -> UpdatePath:
        last = path.nodes[-1]
        more = dataclasses.replace(
            last, encrypted_path_secret=(*last.encrypted_path_secret, last.encrypted_path_secret[0])
        )
        return dataclasses.replace(path, nodes=(*path.nodes[:-1], more))

    forged = repath(committer, message, extra, fix_parent_hash=False)
    rejects(receiver, forged, ValidationError, RULE_CIPHERTEXT_COUNT)


def _path_leaf_changed(committer: Group, **changes: Any) -> bytes:
    """A path Commit whose leaf has ``changes``, re-signed; the parent hash is not fixed."""
    state = committer.state

    def change(path: UpdatePath) -> UpdatePath:
        leaf = dataclasses.replace(path.leaf_node, signature=b"", **changes).signed(
            state.suite, state.signature_priv, group_id=state.group_id, leaf_index=state.own_leaf
        )
        return dataclasses.replace(path, leaf_node=leaf)

    message = forge_commit(committer, force_path=True)
    return repath(committer, message, change, fix_parent_hash=False)


def test_com07_path_leaf_with_wrong_source_is_rejected(h: GroupHarness) -> None:
    message = _path_leaf_changed(
        h.group(0), leaf_node_source=LeafNodeSource.UPDATE, parent_hash=None
    )
    rejects(h.group(2), message, ValidationError, RULE_LEAF_SOURCE)


def test_com07_path_leaf_with_wrong_parent_hash_is_rejected(h: GroupHarness) -> None:
    message = _path_leaf_changed(h.group(0), parent_hash=os.urandom(32))
    rejects(h.group(2), message, VerificationError, RULE_LEAF_PARENT_HASH)


def test_com07_path_leaf_rejected_by_the_authentication_service() -> None:
    """COM-07/COM-14: the receiver's AS refuses the committer's new credential."""
    h = GroupHarness(1, 3)
    committer = h.group(0)
    receiver = Group.from_bytes(
        h.group(2).to_bytes(),
        GroupConfig(credential_validator=lambda cred, _key: cred.identity != b"mallory"),
    )
    from mls.credentials import Credential

    leaf = committer.tree.leaf_node(committer.own_leaf)
    assert leaf is not None
    renamed = dataclasses.replace(leaf, credential=Credential.basic(b"mallory"))
    message = forge_commit(committer, force_path=True, leaf_node=renamed)
    rejects(receiver, message, ValidationError, RULE_CREDENTIAL)


def _swap_last_key(committer: Group, key: bytes) -> Any:
    def mutate(path: UpdatePath) -> UpdatePath:
        last = dataclasses.replace(path.nodes[-1], encryption_key=key)
        return dataclasses.replace(path, nodes=(*path.nodes[:-1], last))

    return mutate


def test_com08_path_secret_not_matching_the_path_keys_is_rejected(h: GroupHarness) -> None:
    """The receiver's ciphertext holds another path secret, encrypted correctly to the
    provisional GroupContext: it decrypts, but derives a key that is not the sent one."""
    committer, receiver = h.group(0), h.group(2)
    created = committer.commit(force_path=True)
    committer.clear_pending_commit()
    state = committer.state
    context = dataclasses.replace(
        state.group_context,
        epoch=state.epoch + 1,
        tree_hash=created.staged.state.tree.tree_hash(),
    )
    leaf = state.tree.leaf_node(receiver.own_leaf)
    assert leaf is not None
    kem_output, ciphertext = encrypt_with_label(
        state.suite,
        leaf.encryption_key,
        UPDATE_PATH_NODE_LABEL,
        context.encode(),
        os.urandom(state.suite.hash_length),
    )

    def other_secret(path: UpdatePath) -> UpdatePath:
        last = path.nodes[-1]  # the root: the receiver (leaf 2) decrypts there
        node = dataclasses.replace(
            last, encrypted_path_secret=(HPKECiphertext(kem_output, ciphertext),)
        )
        return dataclasses.replace(path, nodes=(*path.nodes[:-1], node))

    message = repath(committer, created.message.encode(), other_secret)
    rejects(receiver, message, VerificationError, RULE_DERIVED_PUBLIC_KEY)


def test_com09_path_leaf_reusing_the_committer_key_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    state = committer.state
    old = state.tree.leaf_node(state.own_leaf)
    assert old is not None

    def same_key(path: UpdatePath) -> UpdatePath:
        leaf = dataclasses.replace(path.leaf_node, encryption_key=old.encryption_key)
        return dataclasses.replace(path, leaf_node=leaf)

    message = repath(committer, forge_commit(committer, force_path=True), same_key)
    rejects(receiver, message, ValidationError, RULE_UPDATE_KEY)


def test_com10_path_key_already_in_the_tree_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    member = committer.tree.leaf_node(receiver.own_leaf)
    assert member is not None
    message = repath(
        committer,
        forge_commit(committer, force_path=True),
        _swap_last_key(committer, member.encryption_key),
    )
    rejects(receiver, message, ValidationError, RULE_PATH_KEY_UNIQUE)


def test_com11_path_secret_that_does_not_decrypt_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)

    def tamper(path: UpdatePath) -> UpdatePath:
        last = path.nodes[-1]
        cts = list(last.encrypted_path_secret)
        ct = cts[0]
        cts[0] = dataclasses.replace(
            ct, ciphertext=bytes([ct.ciphertext[0] ^ 1]) + ct.ciphertext[1:]
        )
        node = dataclasses.replace(last, encrypted_path_secret=tuple(cts))
        return dataclasses.replace(path, nodes=(*path.nodes[:-1], node))

    message = repath(committer, forge_commit(committer, force_path=True), tamper)
    with unchanged(receiver), pytest.raises(DecryptionError) as info:
        receiver.process(message)
    from mls.crypto.hpke import HPKE_OPEN_RULE

    assert info.value.rule == HPKE_OPEN_RULE


def test_com11_path_secret_encrypted_under_the_old_context_is_rejected(h: GroupHarness) -> None:
    """The committer encrypts to the current GroupContext instead of the provisional one."""
    from unittest import mock

    from mls.crypto.hpke import HPKE_OPEN_RULE

    committer, receiver = h.group(0), h.group(2)
    original = commit_module.create_update_path

    def old_context(tree: Any, leaf: Any, context: Any, *args: Any, **kw: Any) -> Any:
        return original(tree, leaf, committer.state.group_context, *args, **kw)

    with mock.patch.object(commit_module, "create_update_path", old_context):
        created = committer.commit(force_path=True)
    committer.clear_pending_commit()
    with unchanged(receiver), pytest.raises(DecryptionError) as info:
        receiver.process(created.message.encode())
    assert info.value.rule == HPKE_OPEN_RULE


@pytest.mark.parametrize("suite", range(1, 8))
def test_com12_wrong_confirmation_tag_is_rejected(suite: int) -> None:
    h = GroupHarness(suite, 2)
    committer, receiver = h.group(0), h.group(1)
    message = forge_commit(committer, force_path=True)
    tag = public_message(message).auth.confirmation_tag
    assert tag is not None
    forged = reframe(committer, message, confirmation_tag=bytes([tag[0] ^ 1]) + tag[1:])
    rejects(receiver, forged, ValidationError, RULE_CONFIRMATION_TAG)


@pytest.mark.parametrize("suite", [1, 3, 4, 6])
def test_com12_correct_commit_is_accepted_after_reframing(suite: int) -> None:
    """Control for the forging helpers: re-signing and re-tagging alone changes nothing.

    Only the EdDSA suites: an ECDSA re-signature differs, and the signature is part of the
    confirmed transcript, so the old confirmation tag no longer fits (which is why the other
    re-signed Commits here fail at a check that runs before the tag's)."""
    h = GroupHarness(suite, 2)
    committer, receiver = h.group(0), h.group(1)
    created = committer.commit(force_path=True)
    forged = reframe(committer, created.message.encode())
    committer.merge_pending_commit()
    staged = receiver.process(forged)
    assert isinstance(staged, StagedCommit)
    receiver.merge(staged)
    assert receiver.epoch_authenticator == committer.epoch_authenticator


# --------------------------------------------------------------------------------------------
# COM-13..14: PSKs and the resulting tree


def test_com13_psk_the_receiver_does_not_hold_is_rejected() -> None:
    h = GroupHarness(1, 2)
    committer = Group.from_bytes(h.group(0).to_bytes(), PSK_CONFIG)
    receiver = h.group(1)
    message = forge_commit(committer, [ext_psk(committer.suite.hash_length)])
    rejects(receiver, message, ValidationError, RULE_PSK_UNKNOWN)


def test_com14_added_leaf_rejected_by_the_authentication_service(h: GroupHarness) -> None:
    committer = h.group(0)
    receiver = Group.from_bytes(
        h.group(2).to_bytes(),
        GroupConfig(credential_validator=lambda cred, _key: cred.identity != b"mallory"),
    )
    message = forge_commit(committer, [add_proposal(new_identity(1, b"mallory").key_package)])
    with unchanged(receiver), pytest.raises(ValidationError) as info:
        receiver.process(message)
    # the KeyPackage check reports the leaf's rule inside its own
    assert info.value.rule in {RULE_CREDENTIAL, proposals_module.RULE_KEY_PACKAGE}


# --------------------------------------------------------------------------------------------
# COM-15..24: the proposal list (§12.2)


def test_com15_committer_own_update_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, [update_proposal(committer)], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_COMMITTER_UPDATE)


def test_upd03_committer_own_update_is_rejected(h: GroupHarness) -> None:
    test_com15_committer_own_update_is_rejected(h)


def test_com16_committer_removing_itself_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, [Proposal.of(Remove(1))])

    item = ProposalOrRef.by_value(Proposal.of(Remove(int(committer.own_leaf))))
    forged = with_proposals(committer, message, lambda _: (item,))
    rejects(receiver, forged, ValidationError, RULE_COMMITTER_REMOVE)


def test_com17_two_removes_of_one_leaf_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, [Proposal.of(Remove(1))])

    forged = with_proposals(committer, message, lambda items: items * 2)
    rejects(receiver, forged, ValidationError, RULE_SAME_LEAF)


def test_com17_update_and_remove_of_one_leaf_are_rejected() -> None:
    h = GroupHarness(1, 3)
    committer, receiver = h.group(0), h.group(2)
    update = h.group(1).propose_update()
    committer.process(update)
    receiver.process(update)
    message = forge_commit(committer, [Proposal.of(Remove(1))], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_SAME_LEAF)


def test_com18_two_adds_for_one_client_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    dave = new_identity(1, b"dave")
    dave2 = fresh_key_package(dave)
    message = forge_commit(
        committer,
        [add_proposal(dave.key_package), add_proposal(dave2.key_package)],
        relax=[LIST_CHECK, (MemberIndex, "check")],
    )
    rejects(receiver, message, ValidationError, RULE_DUPLICATE_ADD)


def test_add04_two_adds_with_one_init_key_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    dave = new_identity(1, b"dave")
    erin = new_identity(1, b"erin")
    # erin's KeyPackage re-signed with dave's init key
    kp = dataclasses.replace(erin.key_package, init_key=dave.key_package.init_key, signature=b"")
    kp = kp.signed(erin.suite, erin.signature_priv)
    message = forge_commit(
        committer, [add_proposal(dave.key_package), add_proposal(kp)], relax=[LIST_CHECK]
    )
    rejects(receiver, message, ValidationError, RULE_DUPLICATE_ADD)


def test_com18_add_of_a_current_member_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    again = fresh_key_package(h.idents[1])
    message = forge_commit(
        committer, [add_proposal(again.key_package)], relax=[LIST_CHECK, (MemberIndex, "check")]
    )
    rejects(receiver, message, ValidationError, RULE_ADD_MEMBER)


def test_com18_add_of_a_member_removed_in_the_same_commit_is_accepted(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    again = fresh_key_package(h.idents[1])
    created = committer.commit([Proposal.of(Remove(1)), add_proposal(again.key_package)])
    committer.merge_pending_commit()
    staged = receiver.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    receiver.merge(staged)
    assert receiver.epoch_authenticator == committer.epoch_authenticator


def test_com19_same_psk_twice_is_rejected() -> None:
    h = psk_harness()
    committer, receiver = h.group(0), h.group(2)
    psk = ext_psk(committer.suite.hash_length)
    message = forge_commit(committer, [psk, psk], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_DUPLICATE_PSK)


def test_psk03_same_psk_twice_is_rejected() -> None:
    test_com19_same_psk_twice_is_rejected()


def test_com20_two_group_context_extensions_are_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    gce = Proposal.of(GroupContextExtensions(()))
    message = forge_commit(committer, [gce, gce], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_MULTIPLE_GCE)


def _reinit(group: Group) -> Proposal:
    return Proposal.of(ReInit(b"next", ProtocolVersion.MLS10, int(group.suite.id), ()))


def test_com21_reinit_with_another_proposal_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(
        committer, [_reinit(committer), Proposal.of(Remove(1))], relax=[LIST_CHECK]
    )
    rejects(receiver, message, ValidationError, RULE_REINIT_ALONE)


def test_rei02_reinit_with_an_add_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    add = add_proposal(new_identity(1, b"dave").key_package)
    message = forge_commit(committer, [add, _reinit(committer)], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_REINIT_ALONE)


def test_com22_external_init_in_a_member_commit_is_rejected(h: GroupHarness) -> None:
    committer, receiver = h.group(0), h.group(2)
    kem_output = committer.suite.hpke.derive_key_pair(os.urandom(32))[1]
    message = forge_commit(committer, [Proposal.of(ExternalInit(kem_output))], relax=[LIST_CHECK])
    rejects(receiver, message, ValidationError, RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT)


def test_exi01_external_init_in_a_member_commit_is_rejected(h: GroupHarness) -> None:
    test_com22_external_init_in_a_member_commit_is_rejected(h)


def test_com23_unsupported_proposal_type_is_rejected(h: GroupHarness) -> None:
    """An unknown (GREASE) proposal type in a Commit. Our Proposal codec has no variant for
    unknown types, so the Commit is refused while decoding, before any other check."""
    committer, receiver = h.group(0), h.group(2)
    message = forge_commit(committer, [Proposal.of(Remove(1))])
    by_value_remove_1 = b"\x01\x00\x03\x00\x00\x00\x01"
    assert message.count(by_value_remove_1) == 1
    forged = message.replace(by_value_remove_1, b"\x01\x0a\x0a\x00\x00\x00\x01")
    with unchanged(receiver), pytest.raises(DecodeError):
        receiver.process(forged)


CUSTOM_EXTENSION = 0xFF01


def _required(extension_types: tuple[int, ...]) -> Extension:
    return make_extension(
        ExtensionType.REQUIRED_CAPABILITIES, RequiredCapabilities(extension_types, (), ())
    )


def test_com24_add_is_checked_against_the_extensions_of_the_same_commit() -> None:
    """GCE applies first (§12.3): its new required_capabilities govern the Add of the same
    Commit, although the Add would fit the old GroupContext."""
    caps = Capabilities((1,), (1,), (CUSTOM_EXTENSION,), (), (1, 2))
    creator = identity_with(1, b"alice", capabilities=caps)
    from tests.mls.group_harness import create_group, join

    alice = create_group(creator)
    bob_id = identity_with(1, b"bob", capabilities=caps)
    created = alice.commit([add_proposal(bob_id.key_package)])
    alice.merge_pending_commit()
    assert created.welcome is not None
    bob = join(bob_id, MLSMessage.of(created.welcome))
    carol = new_identity(1, b"carol")  # lists no custom extension
    gce = Proposal.of(GroupContextExtensions((_required((CUSTOM_EXTENSION,)),)))
    message = forge_commit(
        alice,
        [add_proposal(carol.key_package), gce],
        relax=[
            (proposals_module, "check_supports_extensions"),
            (proposals_module, "validate_leaf_node"),
        ],
    )
    rejects(bob, message, ValidationError, RULE_LEAF_REQUIRED_CAPABILITIES)
