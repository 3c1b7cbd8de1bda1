"""External commits, both sides: VALIDATION §1.11 (EXT-01..08).

Invalid external Commits are built by our own joiner with one thing changed inside
``mls.group.external`` (a "frankenstein" Commit): the changed proposal list or signing key
is then signed, tagged and framed by the real code, so only the check under test can fire.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

import mls.group.external as external_module
from mls.errors import ValidationError, VerificationError
from mls.extensions import Extension, ExtensionType, ExternalPub, make_extension
from mls.framing import MLSMessage, PublicMessage, Sender
from mls.group.config import GroupConfig
from mls.group.external import RULE_EXTERNAL_PUB
from mls.group.group import Group, add_proposal
from mls.group.process import RULE_SENDER_LEAF
from mls.group.proposals import (
    RULE_EXTERNAL_BY_REFERENCE,
    RULE_EXTERNAL_INIT_COUNT,
    RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT,
    RULE_EXTERNAL_PROPOSAL_TYPE,
    RULE_EXTERNAL_REMOVES,
    RULE_UPDATE_SENDER,
)
from mls.group.staged_commit import RULE_PATH_REQUIRED, RULE_RESYNC_IDENTITY, StagedCommit
from mls.group.welcome import RULE_GROUP_INFO_SIGNATURE, RULE_SIGNER
from mls.message_protection import RULE_SIGNATURE
from mls.messages import (
    Commit,
    GroupContextExtensions,
    GroupInfo,
    Proposal,
    ProposalOrRef,
    ReInit,
    Remove,
    Update,
)
from mls.psk_id import PreSharedKeyID
from mls.tree_math import LeafIndex
from mls.tree_validation import RULE_TREE_HASH
from tests.mls.forge import public_message, resign_group_info
from tests.mls.group_harness import GroupHarness, Identity, new_identity, unchanged

ALL_SUITES = [1, 2, 3, 4, 5, 6, 7]

Mutation = Callable[[tuple[ProposalOrRef, ...]], tuple[ProposalOrRef, ...]]


def group_info(group: Group, **kw: bool) -> GroupInfo:
    body = MLSMessage.decode(group.group_info(**kw)).body
    assert isinstance(body, GroupInfo)
    return body


def external_join(
    h: GroupHarness, joiner: Identity, *, via: int = 0, **kw: object
) -> tuple[Group, bytes]:
    return Group.join_external(
        group_info(h.group(via)),
        joiner.key_package.leaf_node,
        joiner.signature_priv,
        config=h.config,
        **kw,  # type: ignore[arg-type]
    )


@contextmanager
def commits_with(
    monkeypatch: pytest.MonkeyPatch,
    mutate: Mutation | None = None,
    *,
    drop_path: bool = False,
) -> Iterator[None]:
    """Inside the block, the external joiner's Commit has its proposal list mutated (and/or
    its path dropped) before it is signed and tagged."""

    def fake(proposals: tuple[ProposalOrRef, ...], path: object) -> Commit:
        if mutate is not None:
            proposals = mutate(tuple(proposals))
        return Commit(proposals, None if drop_path else path)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(external_module, "Commit", fake)
        yield


def by_value(*proposals: Proposal) -> Mutation:
    return lambda ps: ps + tuple(ProposalOrRef.by_value(p) for p in proposals)


def rejected_by_members(h: GroupHarness, message: bytes, error: type[Exception], rule: str) -> None:
    for i in h.active():
        with unchanged(h.group(i)), pytest.raises(error) as info:
            h.group(i).process(message)
        assert info.value.rule == rule  # type: ignore[attr-defined]


def accepted_by_members(h: GroupHarness, message: bytes) -> None:
    for i in h.active():
        staged = h.group(i).process(message)
        assert isinstance(staged, StagedCommit)
        h.group(i).merge(staged)


# --------------------------------------------------------------------------------------------
# Acceptance, EXT-08


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_ext08_external_join_agrees_with_the_members(suite_id: int) -> None:
    h = GroupHarness(suite_id, n=2)
    carol = new_identity(suite_id, b"carol")
    group, message = external_join(h, carol)
    accepted_by_members(h, message)
    assert group.own_leaf == 2
    assert {h.group(i).epoch_authenticator for i in h.active()} == {group.epoch_authenticator}
    text = group.encrypt_application(b"hi")
    assert h.group(0).process(text).data == b"hi"  # type: ignore[union-attr]


def test_ext08_joiner_takes_the_leftmost_blank_leaf() -> None:
    h = GroupHarness(n=4)
    h.deliver_all()
    h.remove(0, 1)
    h.deliver_all()
    group, message = external_join(h, new_identity(1, b"carol"))
    assert group.own_leaf == 1
    accepted_by_members(h, message)
    assert h.group(0).epoch_authenticator == group.epoch_authenticator


@pytest.mark.parametrize("suite_id", [1, 3])
def test_ext08_resync_lands_in_the_leaf_its_remove_freed(suite_id: int) -> None:
    h = GroupHarness(suite_id, n=3)
    # Bob (leaf 1) lost his state; same identity, same signature key
    bob = h.idents[1]
    group, message = Group.join_external(
        group_info(h.group(0)),
        bob.key_package.leaf_node,
        bob.signature_priv,
        resync_leaf=1,
    )
    assert group.own_leaf == 1
    h.members[1] = None
    accepted_by_members(h, message)
    assert h.group(0).epoch_authenticator == group.epoch_authenticator
    assert h.group(2).epoch_authenticator == group.epoch_authenticator


def test_ext06_resync_with_a_new_signature_key_same_identity_is_accepted() -> None:
    # OpenMLS#1799: the identity (credential) decides, not the signature key
    h = GroupHarness(n=3)
    fresh = new_identity(1, h.idents[1].name)  # new keys, same basic credential
    group, message = Group.join_external(
        group_info(h.group(0)), fresh.key_package.leaf_node, fresh.signature_priv, resync_leaf=1
    )
    h.members[1] = None
    accepted_by_members(h, message)
    assert h.group(2).epoch_authenticator == group.epoch_authenticator


def test_ext_external_psk_in_an_external_commit_is_accepted() -> None:
    secret = os.urandom(32)
    h = GroupHarness(n=2, config=GroupConfig(external_psks={b"psk": secret}))
    psk = PreSharedKeyID.external(b"psk", os.urandom(32))
    group, message = external_join(h, new_identity(1, b"carol"), psks=[psk])
    accepted_by_members(h, message)
    assert h.group(0).epoch_authenticator == group.epoch_authenticator


# --------------------------------------------------------------------------------------------
# EXT-01..03: the proposal list


def test_ext01_no_external_init_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    h = GroupHarness(n=2)
    with commits_with(monkeypatch, lambda ps: ps[1:]):
        _, message = external_join(h, new_identity(1, b"carol"))
    rejected_by_members(h, message, ValidationError, RULE_EXTERNAL_INIT_COUNT)


def test_ext01_two_external_inits_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    h = GroupHarness(n=2)
    with commits_with(monkeypatch, lambda ps: (ps[0], *ps)):
        _, message = external_join(h, new_identity(1, b"carol"))
    rejected_by_members(h, message, ValidationError, RULE_EXTERNAL_INIT_COUNT)


def test_ext02_two_removes_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    h = GroupHarness(n=3)
    bob = h.idents[1]
    with commits_with(monkeypatch, by_value(Proposal.of(Remove(2)))):
        _, message = Group.join_external(
            group_info(h.group(0)), bob.key_package.leaf_node, bob.signature_priv, resync_leaf=1
        )
    h.members[1] = None
    rejected_by_members(h, message, ValidationError, RULE_EXTERNAL_REMOVES)


def _forbidden_proposals(h: GroupHarness) -> list[tuple[str, Proposal, str]]:
    dave = new_identity(1, b"dave")
    leaf = h.group(1).tree.leaf_node(LeafIndex(1))
    assert leaf is not None
    return [
        ("add", add_proposal(dave.key_package), RULE_EXTERNAL_PROPOSAL_TYPE),
        # an Update is refused first for its sender (only members update, UPD-02)
        ("update", Proposal.of(Update(leaf)), RULE_UPDATE_SENDER),
        ("gce", Proposal.of(GroupContextExtensions(())), RULE_EXTERNAL_PROPOSAL_TYPE),
        ("reinit", Proposal.of(ReInit(b"new", 1, 1, ())), RULE_EXTERNAL_PROPOSAL_TYPE),
    ]


@pytest.mark.parametrize("kind", ["add", "update", "gce", "reinit"])
def test_ext02_forbidden_proposal_type_is_rejected(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    h = GroupHarness(n=2)
    (proposal, rule) = next((p, r) for k, p, r in _forbidden_proposals(h) if k == kind)
    with commits_with(monkeypatch, by_value(proposal)):
        _, message = external_join(h, new_identity(1, b"carol"))
    rejected_by_members(h, message, ValidationError, rule)


def test_ext03_proposal_by_reference_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = os.urandom(32)
    h = GroupHarness(n=2, config=GroupConfig(external_psks={b"psk": secret}))
    psk = PreSharedKeyID.external(b"psk", os.urandom(32))
    proposal_message = h.group(1).propose_psk(psk)
    result = h.group(0).process(proposal_message)
    ref = result.ref  # type: ignore[union-attr]
    with commits_with(monkeypatch, lambda ps: (*ps, ProposalOrRef.by_reference(ref))):
        _, message = external_join(h, new_identity(1, b"carol"))
    rejected_by_members(h, message, ValidationError, RULE_EXTERNAL_BY_REFERENCE)


# --------------------------------------------------------------------------------------------
# EXT-04, EXT-05, EXT-06


def test_ext04_external_commit_without_path_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    h = GroupHarness(n=2)
    with commits_with(monkeypatch, drop_path=True):
        _, message = external_join(h, new_identity(1, b"carol"))
    rejected_by_members(h, message, ValidationError, RULE_PATH_REQUIRED)


def test_ext05_signature_not_by_the_path_leaf_key_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = GroupHarness(n=2)
    mallory = new_identity(1, b"mallory")
    real = external_module.sign_framed_content

    def sign_as_mallory(suite, _priv, *args):  # type: ignore[no-untyped-def]
        return real(suite, mallory.signature_priv, *args)

    monkeypatch.setattr(external_module, "sign_framed_content", sign_as_mallory)
    _, message = external_join(h, new_identity(1, b"carol"))
    monkeypatch.undo()
    rejected_by_members(h, message, VerificationError, RULE_SIGNATURE)


def reframed_as_member(h: GroupHarness, leaf: int) -> bytes:
    """A genuine external Commit re-framed as sent by member ``leaf``: signed with Alice's
    key and tagged with the epoch's membership key."""
    _, message = external_join(h, new_identity(1, b"carol"))
    body = MLSMessage.decode(message).body
    assert isinstance(body, PublicMessage)
    content = dataclasses.replace(body.content, sender=Sender.member(leaf))
    return public_message(h.group(0).state, content, confirmation_tag=body.auth.confirmation_tag)


def test_ext05_external_commit_from_a_member_sender_is_rejected() -> None:
    # The external Commit re-framed as a member's (Alice's key, membership tag): a member
    # Commit may not carry ExternalInit
    h = GroupHarness(n=2)
    forged = reframed_as_member(h, 0)
    bob = h.group(1)
    with unchanged(bob), pytest.raises(ValidationError) as info:
        bob.process(forged)
    assert info.value.rule == RULE_EXTERNAL_INIT_IN_MEMBER_COMMIT


@pytest.mark.parametrize("leaf", [2**31, 2**32 - 1])
def test_ext05_member_sender_leaf_out_of_range_is_rejected(leaf: int) -> None:
    h = GroupHarness(n=2)
    forged = reframed_as_member(h, leaf)
    rejected_by_members(h, forged, ValidationError, RULE_SENDER_LEAF)


def test_ext06_resync_by_another_identity_is_rejected() -> None:
    h = GroupHarness(n=3)
    carol = new_identity(1, b"not-member-1")
    _, message = Group.join_external(
        group_info(h.group(0)), carol.key_package.leaf_node, carol.signature_priv, resync_leaf=1
    )
    rejected_by_members(h, message, ValidationError, RULE_RESYNC_IDENTITY)


# --------------------------------------------------------------------------------------------
# EXT-07: the joiner's side


def joiner_refuses(info: GroupInfo, error: type[Exception], rule: str) -> None:
    carol = new_identity(1, b"carol")
    with pytest.raises(error) as err:
        Group.join_external(info, carol.key_package.leaf_node, carol.signature_priv)
    assert err.value.rule == rule  # type: ignore[attr-defined]


def test_ext07_group_info_without_external_pub_cannot_be_joined() -> None:
    h = GroupHarness(n=2)
    info = group_info(h.group(0), with_external_pub=False)
    joiner_refuses(info, ValidationError, RULE_EXTERNAL_PUB)


def test_ext07_malformed_external_pub_cannot_be_joined() -> None:
    h = GroupHarness(n=2)
    info = group_info(h.group(0))
    bad = make_extension(ExtensionType.EXTERNAL_PUB, ExternalPub(b"\x01" * 5))
    extensions = tuple(
        bad if e.extension_type == ExtensionType.EXTERNAL_PUB else e for e in info.extensions
    )
    forged = resign_group_info(
        h.group(0).suite, info, h.idents[0].signature_priv, extensions=extensions
    )
    joiner_refuses(forged, ValidationError, RULE_EXTERNAL_PUB)


def test_ext07_tree_failing_validation_cannot_be_joined() -> None:
    h = GroupHarness(n=3)
    info = group_info(h.group(0))
    tree = h.group(0).tree.copy()
    tree.set_leaf(LeafIndex(1), None)
    forged = resign_group_info(
        h.group(0).suite,
        info,
        h.idents[0].signature_priv,
        extensions=tuple(
            tree.extension() if e.extension_type == ExtensionType.RATCHET_TREE else e
            for e in info.extensions
        ),
    )
    joiner_refuses(forged, ValidationError, RULE_TREE_HASH)


@pytest.mark.parametrize("signer", [3, 2**31, 2**32 - 1])
def test_ext07_group_info_signer_out_of_range_cannot_be_joined(signer: int) -> None:
    # mls-rs#173: the signer index is range-checked before any tree math
    h = GroupHarness(n=3)
    info = group_info(h.group(0))
    forged = resign_group_info(h.group(0).suite, info, h.idents[0].signature_priv, signer=signer)
    joiner_refuses(forged, ValidationError, RULE_SIGNER)


def test_ext07_group_info_with_a_bad_signature_cannot_be_joined() -> None:
    h = GroupHarness(n=2)
    info = group_info(h.group(0))
    forged = resign_group_info(h.group(0).suite, info, h.idents[1].signature_priv)  # not leaf 0
    joiner_refuses(forged, VerificationError, RULE_GROUP_INFO_SIGNATURE)


def test_ext07_unknown_group_info_extension_is_ignored() -> None:
    h = GroupHarness(n=2)
    info = group_info(h.group(0))
    forged = resign_group_info(
        h.group(0).suite,
        info,
        h.idents[0].signature_priv,
        extensions=(*info.extensions, Extension(0xF0A0, b"?")),
    )
    carol = new_identity(1, b"carol")
    group, message = Group.join_external(forged, carol.key_package.leaf_node, carol.signature_priv)
    accepted_by_members(h, message)
    assert h.group(1).epoch_authenticator == group.epoch_authenticator
