"""Per-proposal rules (RFC 9420 §12.1; VALIDATION ADD, UPD, REM, PSK, REI, EXI, GCE) and
proposals from external senders (§12.1.8).

A rule is tested where a proposal message arrives and, where it matters, where a Commit
carries the proposal by value. Forged proposals come from our own members with the
validator under test disabled for the sending only.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from mls.credentials import Credential
from mls.crypto.hpke import HPKE_OPEN_RULE
from mls.errors import DecryptionError, UsageError, ValidationError, VerificationError
from mls.extensions import (
    ApplicationId,
    Extension,
    ExtensionType,
    ExternalPub,
    ExternalSender,
    RequiredCapabilities,
    find_extension,
    make_extension,
)
from mls.framing import (
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PublicMessage,
    Sender,
    WireFormat,
)
from mls.group import group as group_module
from mls.group import process as process_module
from mls.group import proposals as proposals_module
from mls.group import staged_commit as staged_module
from mls.group.config import GroupConfig
from mls.group.epoch import RULE_PSK_UNKNOWN, resolve_psks
from mls.group.group import Group, add_proposal
from mls.group.proposals import (
    RULE_EXTERNAL_SENDERS,
    RULE_GCE_DUPLICATE,
    RULE_GCE_SITE,
    RULE_GCE_SUPPORT,
    RULE_KEY_PACKAGE,
    RULE_PSK_NONCE,
    RULE_PSK_USAGE,
    RULE_REINIT_VERSION,
    RULE_REMOVED_LEAF,
    RULE_REQUIRED_CAPABILITIES,
    validate_proposal,
)
from mls.group.results import ProposalMessage
from mls.group.staged_commit import StagedCommit
from mls.group_context import ProtocolVersion
from mls.leaf_node import Capabilities, LeafNodeSource
from mls.message_protection import RULE_SENDER_CONTENT, sign_framed_content
from mls.messages import (
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    ReInit,
    Remove,
)
from mls.psk_id import PreSharedKeyID, ResumptionPSKUsage
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, direct_path, node_of
from mls.tree_validation import (
    RULE_CREDENTIAL,
    RULE_LEAF_SIGNATURE,
    RULE_LEAF_SOURCE,
    RULE_UNIQUE_ENCRYPTION_KEY,
    RULE_UPDATE_KEY,
    MemberIndex,
)
from tests.mls.forge_commit import (
    forge_commit,
    identity_with,
    rejects,
    relaxed,
    update_proposal,
    with_proposals,
)
from tests.mls.group_harness import GroupHarness, create_group, join, new_identity, unchanged

PROPOSE_CHECK = (group_module, "validate_proposal")
"""Disabling §12.1's per-proposal checks for the sender only."""
COMMIT_CHECK = (staged_module, "validate_proposal")
CUSTOM_EXTENSION = 0xFF01


@pytest.fixture
def h() -> GroupHarness:
    return GroupHarness(1, 3)


def forged_proposal(sender: Group, proposal: Proposal) -> bytes:
    """A proposal message ``sender`` would have refused to send."""
    with relaxed(PROPOSE_CHECK):
        return sender._propose(proposal, b"")


def agree(*groups: Group) -> None:
    assert len({g.epoch_authenticator for g in groups}) == 1
    assert len({g.tree.tree_hash() for g in groups}) == 1


def commit_and_deliver(committer: Group, receivers: list[Group], **kw: object) -> StagedCommit:
    created = committer.commit(**kw)  # type: ignore[arg-type]
    committer.merge_pending_commit()
    staged = None
    for r in receivers:
        staged = r.process(created.message.encode())
        assert isinstance(staged, StagedCommit)
        r.merge(staged)
    assert staged is not None
    return staged


# --------------------------------------------------------------------------------------------
# Add (§12.1.1)


def test_add01_key_package_with_bad_signature_is_rejected(h: GroupHarness) -> None:
    dave = new_identity(1, b"dave")
    sig = dave.key_package.signature
    bad = dataclasses.replace(dave.key_package, signature=bytes([sig[0] ^ 1]) + sig[1:])
    message = forged_proposal(h.group(0), add_proposal(bad))
    rejects(h.group(2), message, VerificationError, RULE_KEY_PACKAGE)


def test_add01_key_package_with_init_key_equal_to_leaf_key_is_rejected(h: GroupHarness) -> None:
    dave = new_identity(1, b"dave")
    kp = dataclasses.replace(
        dave.key_package, init_key=dave.key_package.leaf_node.encryption_key, signature=b""
    ).signed(dave.suite, dave.signature_priv)
    message = forge_commit(h.group(0), [add_proposal(kp)], relax=[COMMIT_CHECK])
    rejects(h.group(2), message, ValidationError, RULE_KEY_PACKAGE)


def test_add02_add_not_supporting_a_group_context_extension_is_rejected() -> None:
    caps = Capabilities((1,), (1,), (CUSTOM_EXTENSION,), (), (1, 2))
    custom = Extension(CUSTOM_EXTENSION, b"x")
    alice_id = identity_with(1, b"alice", capabilities=caps)
    alice = Group.create(
        alice_id.key_package,
        alice_id.keys.encryption_priv,
        alice_id.signature_priv,
        b"g",
        extensions=(custom,),
    )
    bob_id = identity_with(1, b"bob", capabilities=caps)
    created = alice.commit([add_proposal(bob_id.key_package)])
    alice.merge_pending_commit()
    assert created.welcome is not None
    bob = join(bob_id, MLSMessage.of(created.welcome))
    carol = new_identity(1, b"carol")
    message = forge_commit(
        alice,
        [add_proposal(carol.key_package)],
        relax=[(proposals_module, "check_supports_extensions")],
    )
    rejects(bob, message, ValidationError, RULE_GCE_SUPPORT)


def test_add03_add_duplicating_a_member_encryption_key_is_rejected(h: GroupHarness) -> None:
    member = h.group(1).tree.leaf_node(LeafIndex(1))
    assert member is not None
    dave = new_identity(1, b"dave")
    leaf = dataclasses.replace(
        dave.key_package.leaf_node, encryption_key=member.encryption_key, signature=b""
    ).signed(dave.suite, dave.signature_priv)
    kp = dataclasses.replace(dave.key_package, leaf_node=leaf, signature=b"").signed(
        dave.suite, dave.signature_priv
    )
    message = forge_commit(h.group(0), [add_proposal(kp)], relax=[(MemberIndex, "check")])
    rejects(h.group(2), message, ValidationError, RULE_UNIQUE_ENCRYPTION_KEY)


def test_add03_add_duplicating_a_member_signature_key_is_rejected(h: GroupHarness) -> None:
    """Another identity reusing member 1's signature key (a distinct client per the AS)."""
    mallory = new_identity(1, b"mallory", signature_priv=h.idents[1].signature_priv)
    message = forge_commit(
        h.group(0),
        [add_proposal(mallory.key_package)],
        relax=[(MemberIndex, "check"), (staged_module, "validate_proposal_list")],
    )
    # §12.2's list rule (an Add for a client already in the group) runs before §7.3's
    # uniqueness check of the new leaf (RULE_UNIQUE_SIGNATURE_KEY)
    rejects(h.group(2), message, ValidationError, proposals_module.RULE_ADD_MEMBER)


def _leaf_path_unmerged(tree: RatchetTree, leaf: int) -> list[bool]:
    out = []
    for x in direct_path(node_of(LeafIndex(leaf)), tree.n_leaves):
        parent = tree.parent_node(x)
        if parent is not None:
            out.append(leaf in parent.unmerged_leaves)
    return out


def test_add05_add_fills_the_leftmost_blank_leaf_and_marks_it_unmerged() -> None:
    h = GroupHarness(1, 4)
    h.update(0)  # fill the parents above leaf 0
    h.deliver_all()
    h.remove(3, 1)
    h.deliver_all()
    created = h.group(0).commit([add_proposal(new_identity(1, b"erin").key_package)])
    h.group(0).merge_pending_commit()
    staged = h.group(2).process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    h.group(2).merge(staged)
    assert staged.added[0][0] == 1
    tree = h.group(2).tree
    marks = _leaf_path_unmerged(tree, 1)
    assert marks and all(marks)
    agree(h.group(0), h.group(2))


def test_add05_add_without_blank_leaf_extends_the_tree(h: GroupHarness) -> None:
    staged = h.group(0).commit([add_proposal(new_identity(1, b"d").key_package)]).staged
    assert staged.added[0][0] == 3
    h.group(0).clear_pending_commit()
    staged = (
        h.group(0)
        .commit([add_proposal(new_identity(1, f"n{i}".encode()).key_package) for i in range(2)])
        .staged
    )
    assert [leaf for leaf, _ in staged.added] == [3, 4]
    assert staged.state.tree.n_leaves == 8


# --------------------------------------------------------------------------------------------
# Update (§12.1.2)


def test_upd01_update_with_source_commit_is_rejected(h: GroupHarness) -> None:
    p = update_proposal(h.group(1), leaf_node_source=LeafNodeSource.COMMIT, parent_hash=b"")
    rejects(h.group(2), forged_proposal(h.group(1), p), ValidationError, RULE_LEAF_SOURCE)


def test_upd01_update_keeping_the_encryption_key_is_rejected(h: GroupHarness) -> None:
    old = h.group(1).tree.leaf_node(LeafIndex(1))
    assert old is not None
    p = update_proposal(h.group(1), encryption_key=old.encryption_key)
    rejects(h.group(2), forged_proposal(h.group(1), p), ValidationError, RULE_UPDATE_KEY)


def test_upd01_update_with_another_member_encryption_key_is_rejected(h: GroupHarness) -> None:
    other = h.group(1).tree.leaf_node(LeafIndex(0))
    assert other is not None
    p = update_proposal(h.group(1), encryption_key=other.encryption_key)
    rejects(h.group(2), forged_proposal(h.group(1), p), ValidationError, RULE_UNIQUE_ENCRYPTION_KEY)


def test_upd01_update_signed_for_another_leaf_index_is_rejected(h: GroupHarness) -> None:
    p = update_proposal(h.group(1), leaf_index=LeafIndex(0))
    rejects(h.group(2), forged_proposal(h.group(1), p), VerificationError, RULE_LEAF_SIGNATURE)


def test_upd01_invalid_update_committed_by_reference_is_rejected(h: GroupHarness) -> None:
    """The Update rule runs again where a Commit carries the proposal: here both the
    committer and the receiver cached it with the check disabled."""
    old = h.group(1).tree.leaf_node(LeafIndex(1))
    assert old is not None
    p = update_proposal(h.group(1), encryption_key=old.encryption_key)
    message = forged_proposal(h.group(1), p)
    with relaxed((process_module, "validate_proposal")):
        h.group(0).process(message)
        h.group(2).process(message)
    commit = forge_commit(h.group(0), relax=[COMMIT_CHECK])
    rejects(h.group(2), commit, ValidationError, RULE_UPDATE_KEY)


def test_upd04_update_with_a_credential_the_as_refuses_is_rejected(h: GroupHarness) -> None:
    receiver = Group.from_bytes(
        h.group(2).to_bytes(),
        GroupConfig(credential_validator=lambda cred, _key: cred.identity != b"mallory"),
    )
    p = update_proposal(h.group(1), credential=Credential.basic(b"mallory"))
    rejects(receiver, forged_proposal(h.group(1), p), ValidationError, RULE_CREDENTIAL)


# --------------------------------------------------------------------------------------------
# Remove (§12.1.3)


@pytest.mark.parametrize("leaf", [3, 4, 2**31, 2**32 - 1])
def test_rem01_remove_out_of_range_is_rejected(h: GroupHarness, leaf: int) -> None:
    """mls-rs#173: 2·index overflowed their tree math; here the range check runs first."""
    message = forged_proposal(h.group(0), Proposal.of(Remove(leaf)))
    rejects(h.group(2), message, ValidationError, RULE_REMOVED_LEAF)


@pytest.mark.parametrize("leaf", [2**31, 2**32 - 1])
def test_rem01_commit_removing_out_of_range_leaf_is_rejected(h: GroupHarness, leaf: int) -> None:
    """Re-signed: the Remove check runs before the confirmation tag's."""
    committer = h.group(0)
    message = forge_commit(committer, [Proposal.of(Remove(1))])

    item = ProposalOrRef.by_value(Proposal.of(Remove(leaf)))
    forged = with_proposals(committer, message, lambda _: (item,))
    rejects(h.group(2), forged, ValidationError, RULE_REMOVED_LEAF)


def test_rem01_remove_of_a_blank_leaf_is_rejected() -> None:
    h = GroupHarness(1, 4)
    h.remove(0, 1)
    h.deliver_all()
    message = forged_proposal(h.group(0), Proposal.of(Remove(1)))
    rejects(h.group(2), message, ValidationError, RULE_REMOVED_LEAF)


def test_rem03_removing_the_rightmost_members_truncates_the_tree() -> None:
    h = GroupHarness(1, 5)
    assert h.group(0).tree.n_leaves == 8
    h.commit(0, [Proposal.of(Remove(4)), Proposal.of(Remove(3))])
    h.deliver_all()
    assert h.group(0).tree.n_leaves == 4
    h.check_agreement()
    h.remove(1, 2)
    h.deliver_all()
    assert h.group(0).tree.n_leaves == 2
    h.check_agreement()


# --------------------------------------------------------------------------------------------
# PreSharedKey (§12.1.4, §8.4)

PSK_A, PSK_B = b"psk-a", b"psk-b"
PSKS = GroupConfig(external_psks={PSK_A: b"\x01" * 32, PSK_B: b"\x02" * 32})


@pytest.mark.parametrize("length", [0, 31, 33])
def test_psk01_nonce_of_wrong_length_is_rejected(h: GroupHarness, length: int) -> None:
    p = Proposal.of(PreSharedKey(PreSharedKeyID.external(PSK_A, bytes(length))))
    rejects(h.group(2), forged_proposal(h.group(0), p), ValidationError, RULE_PSK_NONCE)


@pytest.mark.parametrize("usage", [ResumptionPSKUsage.REINIT, ResumptionPSKUsage.BRANCH])
def test_psk02_reinit_or_branch_psk_in_an_ordinary_commit_is_rejected(
    h: GroupHarness, usage: ResumptionPSKUsage
) -> None:
    g = h.group(0)
    psk = PreSharedKeyID.resumption(usage, g.group_id, g.epoch, os.urandom(32))
    message = forge_commit(g, [Proposal.of(PreSharedKey(psk))], relax=[COMMIT_CHECK])
    rejects(h.group(2), message, ValidationError, RULE_PSK_USAGE)


def test_psk04_resumption_psk_beyond_retention_is_rejected() -> None:
    h = GroupHarness(1, 2)
    h.members[1] = Group.from_bytes(h.group(1).to_bytes(), GroupConfig(resumption_psk_epochs=1))
    for _ in range(3):
        h.update(0)
        h.deliver_all()
    committer, receiver = h.group(0), h.group(1)
    psk = PreSharedKeyID.resumption(
        ResumptionPSKUsage.APPLICATION, committer.group_id, 1, os.urandom(32)
    )
    message = forge_commit(committer, [Proposal.of(PreSharedKey(psk))])
    rejects(receiver, message, ValidationError, RULE_PSK_UNKNOWN)


def test_psk05_psks_enter_the_key_schedule_in_proposal_order() -> None:
    h = GroupHarness(1, 2, PSKS)
    a = PreSharedKeyID.external(PSK_A, os.urandom(32))
    b = PreSharedKeyID.external(PSK_B, os.urandom(32))
    suite = h.group(0).suite
    kw = dict(group_id=b"g", resumption_psks={}, external_psks=PSKS.external_psks)
    assert resolve_psks(suite, [a, b], **kw) != resolve_psks(suite, [b, a], **kw)  # type: ignore[arg-type]
    h.commit(0, [Proposal.of(PreSharedKey(b)), Proposal.of(PreSharedKey(a))])
    h.deliver_all()
    h.check_agreement()


# --------------------------------------------------------------------------------------------
# ReInit (§12.1.5, §11.2)


def test_rei01_reinit_to_a_lower_version_is_rejected(h: GroupHarness) -> None:
    """Only mls10 decodes (a closed enum), so the downgrade is checked on a built value."""
    g = h.group(2)
    reinit = ReInit(b"next", 0, 1, ())  # type: ignore[arg-type]
    with unchanged(g), pytest.raises(ValidationError) as info:
        validate_proposal(g.state, Proposal.of(reinit), Sender.member(0), g.config)
    assert info.value.rule == RULE_REINIT_VERSION


def test_rei03_after_a_reinit_commit_the_old_group_refuses_to_send(h: GroupHarness) -> None:
    reinit = ReInit(b"next", ProtocolVersion.MLS10, 1, ())
    h.commit(0, [Proposal.of(reinit)])
    h.deliver_all()
    for i in (0, 2):
        g = h.group(i)
        assert not g.active
        with unchanged(g):
            with pytest.raises(UsageError):
                g.encrypt_application(b"late")
            with pytest.raises(UsageError):
                g.commit(force_path=True)
            with pytest.raises(UsageError):
                g.propose_remove(1)


# --------------------------------------------------------------------------------------------
# ExternalInit (§12.1.6, §8.3)


def test_exi02_kem_output_that_does_not_decapsulate_is_rejected() -> None:
    h = GroupHarness(2, 2)  # P-256: a point that is not on the curve cannot decapsulate
    member = h.group(0)
    joiner = new_identity(2, b"joiner")
    _, commit_bytes = Group.join_external(
        member.group_info(), joiner.key_package.leaf_node, joiner.signature_priv
    )
    public = MLSMessage.decode(commit_bytes).body
    assert isinstance(public, PublicMessage)
    commit = public.content.commit
    assert commit is not None
    bad = b"\x04" + b"\x01" * 64
    items = tuple(
        dataclasses.replace(item, proposal=Proposal.of(ExternalInit(bad)))
        if item.proposal is not None and item.proposal.external_init is not None
        else item
        for item in commit.proposals
    )
    content = dataclasses.replace(
        public.content, commit=dataclasses.replace(commit, proposals=items)
    )
    suite = member.suite
    signature = sign_framed_content(
        suite,
        joiner.signature_priv,
        WireFormat.MLS_PUBLIC_MESSAGE,
        content,
        member.state.group_context,
    )
    forged = PublicMessage(content, dataclasses.replace(public.auth, signature=signature), None)
    with unchanged(member), pytest.raises(DecryptionError) as info:
        member.process(MLSMessage.of(forged).encode())
    assert info.value.rule == HPKE_OPEN_RULE


# --------------------------------------------------------------------------------------------
# External senders (§12.1.8)


def external_group(suite: int = 1) -> tuple[GroupHarness, bytes]:
    """Three members whose GroupContext lists one external sender; returns its private key."""
    h = GroupHarness(suite, 3)
    g = h.group(0)
    priv, pub = g.suite.generate_signature_key_pair()
    senders = make_extension(
        ExtensionType.EXTERNAL_SENDERS, (ExternalSender(pub, Credential.basic(b"ds")),)
    )
    h.commit(0, [Proposal.of(GroupContextExtensions((senders,)))])
    h.deliver_all()
    return h, priv


def external_proposal(g: Group, sender_priv: bytes, proposal: Proposal) -> bytes:
    state = g.state
    content = FramedContent.with_body(
        state.group_id, state.epoch, Sender.external(0), b"", proposal
    )
    signature = sign_framed_content(
        state.suite, sender_priv, WireFormat.MLS_PUBLIC_MESSAGE, content, state.group_context
    )
    return MLSMessage.of(
        PublicMessage(content, FramedContentAuthData(signature, None), None)
    ).encode()


@pytest.mark.parametrize("suite", [1, 2, 3])
def test_external_sender_add_is_accepted_and_committed(suite: int) -> None:
    h, priv = external_group(suite)
    dave = new_identity(suite, b"dave")
    message = external_proposal(h.group(0), priv, add_proposal(dave.key_package))
    for i in (0, 1, 2):
        result = h.group(i).process(message)
        assert isinstance(result, ProposalMessage) and result.sender == Sender.external(0)
    created = h.group(1).commit()
    h.group(1).merge_pending_commit()
    for i in (0, 2):
        staged = h.group(i).process(created.message.encode())
        assert isinstance(staged, StagedCommit)
        h.group(i).merge(staged)
    assert created.welcome is not None
    joined = join(dave, MLSMessage.of(created.welcome))
    agree(h.group(0), h.group(1), h.group(2), joined)


def test_external_sender_remove_is_accepted_and_committed() -> None:
    h, priv = external_group()
    message = external_proposal(h.group(0), priv, Proposal.of(Remove(2)))
    for i in (0, 1):
        assert isinstance(h.group(i).process(message), ProposalMessage)
    staged = commit_and_deliver(h.group(0), [h.group(1)])
    assert [leaf for leaf, _ in staged.removed] == [2]
    agree(h.group(0), h.group(1))


def test_upd02_update_from_an_external_sender_is_rejected() -> None:
    h, priv = external_group()
    message = external_proposal(h.group(0), priv, update_proposal(h.group(0)))
    rejects(h.group(2), message, ValidationError, RULE_EXTERNAL_SENDERS)


def test_exi03_external_init_from_an_external_sender_is_rejected() -> None:
    h, priv = external_group()
    kem_output = h.group(0).suite.hpke.derive_key_pair(os.urandom(32))[1]
    message = external_proposal(h.group(0), priv, Proposal.of(ExternalInit(kem_output)))
    rejects(h.group(2), message, ValidationError, RULE_EXTERNAL_SENDERS)


def test_upd02_update_from_a_new_member_proposal_sender_is_rejected(h: GroupHarness) -> None:
    g = h.group(0)
    state = g.state
    content = FramedContent.with_body(
        state.group_id, state.epoch, Sender.new_member_proposal(), b"", update_proposal(g)
    )
    signature = sign_framed_content(
        state.suite, state.signature_priv, WireFormat.MLS_PUBLIC_MESSAGE, content, None
    )
    message = MLSMessage.of(
        PublicMessage(content, FramedContentAuthData(signature, None), None)
    ).encode()
    rejects(h.group(2), message, ValidationError, RULE_SENDER_CONTENT)


def test_external_sender_with_unknown_index_is_rejected() -> None:
    h, priv = external_group()
    message = external_proposal(h.group(0), priv, Proposal.of(Remove(2)))
    public = MLSMessage.decode(message).body
    assert isinstance(public, PublicMessage)
    content = dataclasses.replace(public.content, sender=Sender.external(1))
    sig = sign_framed_content(h.group(0).suite, priv, WireFormat.MLS_PUBLIC_MESSAGE, content, None)
    forged = MLSMessage.of(PublicMessage(content, FramedContentAuthData(sig, None), None))
    rejects(h.group(1), forged.encode(), ValidationError, RULE_EXTERNAL_SENDERS)


# --------------------------------------------------------------------------------------------
# GroupContextExtensions (§12.1.7, §11.1, §13.4)


def _required(*extension_types: int) -> Extension:
    return make_extension(
        ExtensionType.REQUIRED_CAPABILITIES, RequiredCapabilities(extension_types, (), ())
    )


def _gce(*extensions: Extension) -> Proposal:
    return Proposal.of(GroupContextExtensions(extensions))


def test_gce01_required_capability_a_member_lacks_is_rejected(h: GroupHarness) -> None:
    message = forge_commit(
        h.group(0),
        [_gce(_required(CUSTOM_EXTENSION))],
        relax=[(proposals_module, "check_supports_extensions")],
    )
    rejects(h.group(2), message, ValidationError, RULE_REQUIRED_CAPABILITIES)


def _custom_group() -> tuple[Group, Group, Group]:
    """alice and bob support CUSTOM_EXTENSION, carol does not."""
    caps = Capabilities((1,), (1,), (CUSTOM_EXTENSION,), (), (1, 2))
    alice_id = identity_with(1, b"alice", capabilities=caps)
    alice = create_group(alice_id)
    bob_id = identity_with(1, b"bob", capabilities=caps)
    carol_id = new_identity(1, b"carol")
    created = alice.commit([add_proposal(bob_id.key_package), add_proposal(carol_id.key_package)])
    alice.merge_pending_commit()
    assert created.welcome is not None
    welcome = MLSMessage.of(created.welcome)
    return alice, join(bob_id, welcome), join(carol_id, welcome)


def test_gce01_required_capability_lacked_only_by_a_removed_member_is_accepted() -> None:
    alice, bob, carol = _custom_group()
    created = alice.commit(
        [Proposal.of(Remove(int(carol.own_leaf))), _gce(_required(CUSTOM_EXTENSION))]
    )
    alice.merge_pending_commit()
    staged = bob.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    bob.merge(staged)
    agree(alice, bob)


def test_gce02_extension_a_member_does_not_list_is_rejected() -> None:
    alice, bob, carol = _custom_group()
    message = forge_commit(
        alice,
        [_gce(Extension(CUSTOM_EXTENSION, b"v"))],
        relax=[(proposals_module, "check_supports_extensions")],
    )
    rejects(bob, message, ValidationError, RULE_GCE_SUPPORT)


def test_gce02_default_extension_types_need_not_be_listed(h: GroupHarness) -> None:
    empty_required = make_extension(
        ExtensionType.REQUIRED_CAPABILITIES, RequiredCapabilities((), (), ())
    )
    h.commit(0, [_gce(empty_required)])
    h.deliver_all()
    h.check_agreement()


def test_gce03_duplicate_extension_type_is_rejected(h: GroupHarness) -> None:
    custom = Extension(CUSTOM_EXTENSION, b"v")
    message = forged_proposal(h.group(0), _gce(custom, custom))
    rejects(h.group(2), message, ValidationError, RULE_GCE_DUPLICATE)


@pytest.mark.parametrize(
    "extension",
    [
        Extension(ExtensionType.RATCHET_TREE, b"\x00"),
        make_extension(ExtensionType.EXTERNAL_PUB, ExternalPub(b"\x01" * 32)),
        make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"app")),
    ],
    ids=["ratchet_tree", "external_pub", "application_id"],
)
def test_gce04_extension_not_allowed_in_group_context_is_rejected(
    h: GroupHarness, extension: Extension
) -> None:
    message = forged_proposal(h.group(0), _gce(extension))
    rejects(h.group(2), message, ValidationError, RULE_GCE_SITE)


def test_gce05_group_context_extensions_replace_the_whole_list() -> None:
    h, _ = external_group()
    before = h.group(1).state.group_context.extensions
    assert find_extension(before, ExtensionType.EXTERNAL_SENDERS) is not None
    required = make_extension(ExtensionType.REQUIRED_CAPABILITIES, RequiredCapabilities((), (), ()))
    h.commit(0, [_gce(required)])
    h.deliver_all()
    for i in (0, 1, 2):
        assert h.group(i).state.group_context.extensions == (required,)
    h.check_agreement()
