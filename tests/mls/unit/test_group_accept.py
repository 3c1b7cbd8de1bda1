"""What a receiver must accept (VALIDATION §1.12, ACC-01..07): over-strictness is an
interop bug (RFC 9420 §12.4, §12.4.2, §13.4, §13.5, §15.2)."""

from __future__ import annotations

import pytest

from mls.crypto.ciphersuite import get_suite
from mls.errors import UsageError, ValidationError
from mls.extensions import Extension
from mls.framing import MLSMessage, PublicMessage
from mls.group.group import add_proposal
from mls.group.proposals import RULE_DUPLICATE_ADD
from mls.group.results import ApplicationMessage, ProposalMessage
from mls.group.staged_commit import StagedCommit
from mls.key_package import default_capabilities
from tests.mls.forge_commit import forge_commit, identity_with
from tests.mls.group_harness import GroupHarness, fresh_key_package, join, new_identity, unchanged

GREASE = 0x0A0A
GREASE_LEAF = 0x1A1A


@pytest.mark.parametrize("suite", range(1, 8))
def test_acc01_unknown_and_grease_values_are_ignored(suite: int) -> None:
    caps = default_capabilities(get_suite(suite))
    caps = type(caps)(
        versions=(*caps.versions, GREASE),
        cipher_suites=(*caps.cipher_suites, GREASE),
        extensions=(GREASE_LEAF, GREASE),
        proposals=(GREASE,),
        credentials=(*caps.credentials, GREASE),
    )
    h = GroupHarness(suite, 2)
    dave = identity_with(
        suite,
        b"dave",
        capabilities=caps,
        extensions=(Extension(GREASE, b"kp"),),
        leaf_extensions=(Extension(GREASE_LEAF, b"leaf"),),
    )
    created = h.group(0).commit([add_proposal(dave.key_package)])
    h.group(0).merge_pending_commit()
    staged = h.group(1).process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    h.group(1).merge(staged)
    assert created.welcome is not None
    joined = join(dave, MLSMessage.of(created.welcome))
    assert joined.epoch_authenticator == h.group(0).epoch_authenticator


def test_acc02_a_commit_removing_us_is_processed_and_ends_the_group() -> None:
    h = GroupHarness(1, 3)
    victim = h.group(2)
    h.remove(0, 2)
    staged = victim.process(h.inbox[2].pop())
    assert isinstance(staged, StagedCommit) and staged.self_removed
    victim.merge(staged)
    assert not victim.active
    with pytest.raises(UsageError):
        victim.encrypt_application(b"after removal")
    h.deliver_to(1)
    assert h.group(1).epoch_authenticator == h.group(0).epoch_authenticator


def test_acc03_not_every_proposal_must_be_committed() -> None:
    h = GroupHarness(1, 3)
    proposal = h.group(1).propose_remove(2)
    h.inbox[0].append(proposal)
    h.inbox[2].append(proposal)
    h.deliver_to(0)
    h.commit(0, by_reference=False, force_path=True)  # leaves the Remove out
    h.deliver_to(2)
    h.deliver_to(1)
    h.check_agreement()


def test_acc04_path_node_with_no_ciphertext_for_new_members_only_is_accepted() -> None:
    h = GroupHarness(1, 2)
    new = [new_identity(1, b"c"), new_identity(1, b"d")]
    created = h.group(0).commit([add_proposal(i.key_package) for i in new], force_path=True)
    h.group(0).merge_pending_commit()
    public = created.message.body
    assert isinstance(public, PublicMessage) and public.content.commit is not None
    path = public.content.commit.path
    assert path is not None
    # the root's copath child holds only the two new leaves: no ciphertext (§7.6)
    assert [len(n.encrypted_path_secret) for n in path.nodes] == [1, 0]
    staged = h.group(1).process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    h.group(1).merge(staged)
    assert h.group(1).epoch_authenticator == h.group(0).epoch_authenticator


def test_acc06_application_message_of_a_retained_past_epoch_decrypts() -> None:
    h = GroupHarness(1, 3)
    late = h.group(1).encrypt_application(b"sent in epoch 1")
    h.update(0)
    h.deliver_all()
    result = h.group(2).process(late)
    assert isinstance(result, ApplicationMessage) and result.data == b"sent in epoch 1"


def test_acc07_the_same_proposal_delivered_twice_is_idempotent() -> None:
    h = GroupHarness(1, 3)
    proposal = h.group(1).propose_remove(2)
    first = h.group(0).process(proposal)
    second = h.group(0).process(proposal)
    assert isinstance(first, ProposalMessage) and isinstance(second, ProposalMessage)
    assert second.duplicate and second.ref == first.ref
    assert len(h.group(0).pending_proposals) == 1
    h.commit(0)
    h.deliver_to(1)
    assert h.group(1).epoch_authenticator == h.group(0).epoch_authenticator


def test_acc07_two_different_adds_for_one_client_still_fail() -> None:
    h = GroupHarness(1, 3)
    dave = new_identity(1, b"dave")
    dave2 = fresh_key_package(dave)
    for ident in (dave, dave2):
        message = h.group(1).propose_add(ident.key_package)
        h.group(0).process(message)
        h.group(2).process(message)
    from mls.group import staged_commit as staged_module
    from mls.tree_validation import MemberIndex

    message = forge_commit(
        h.group(0), relax=[(staged_module, "validate_proposal_list"), (MemberIndex, "check")]
    )
    with unchanged(h.group(2)), pytest.raises(ValidationError) as info:
        h.group(2).process(message)
    assert info.value.rule == RULE_DUPLICATE_ADD


def test_acc05_updates_and_commits_replacing_an_expired_leaf_are_accepted() -> None:
    # RFC 9420 §5.3.2: a member whose KeyPackage leaf has expired may still replace it. The
    # receiver's clock runs 200 days ahead, past the 90-day lifetime of bob's leaf.
    import time

    from mls.group.config import GroupConfig
    from mls.tree_validation import LifetimePolicy

    h = GroupHarness(1, 2)
    alice, bob = h.group(0), h.group(1)
    bob_leaf = bob.tree.leaf_node(bob.own_leaf)
    assert bob_leaf is not None and bob_leaf.lifetime is not None
    later = int(time.time()) + 200 * 24 * 3600
    assert later > bob_leaf.lifetime.not_after
    alice.config = GroupConfig(lifetime_policy=LifetimePolicy(clock=lambda: later))
    # an Update proposal from bob, committed by alice
    proposal = bob.propose_update()
    assert isinstance(alice.process(proposal), ProposalMessage)
    created = alice.commit()
    alice.merge_pending_commit()
    staged = bob.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    bob.merge(staged)
    # a self-update Commit from bob, whose path leaf replaces the leaf again
    created = bob.commit(force_path=True)
    bob.merge_pending_commit()
    staged = alice.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    alice.merge(staged)
    assert alice.epoch_authenticator == bob.epoch_authenticator
