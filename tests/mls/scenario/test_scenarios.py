"""Group lifecycles over every cipher suite (ts-mls ``test/scenario`` style).

Each scenario drives real members through :class:`GroupHarness` and ends with the same two
checks: every member agrees on epoch, tree hash and ``epoch_authenticator``, and every member
can message every other.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable, Sequence

import pytest

from mls.errors import EpochError, StaleGenerationError, UsageError
from mls.framing import MLSMessage
from mls.group.commit import CreatedCommit
from mls.group.config import GroupConfig
from mls.group.group import Group, add_proposal
from mls.group.results import ApplicationMessage
from mls.group.staged_commit import StagedCommit
from mls.group_context import ProtocolVersion
from mls.messages import PreSharedKey, Proposal, ReInit, Remove
from mls.psk_id import PreSharedKeyID, ResumptionPSKUsage
from tests.mls.group_harness import (
    GroupHarness,
    Identity,
    create_group,
    fresh_key_package,
    join,
    new_identity,
    unchanged,
)

SUITES = pytest.mark.parametrize("suite", range(1, 8), ids=lambda s: f"cs{s}")


def settle(h: GroupHarness) -> None:
    """Delivers everything, then checks agreement and that everyone can talk."""
    h.deliver_all()
    h.check_agreement()
    h.everyone_can_message_everyone()


def opens_to(group: Group, message: bytes, data: bytes) -> None:
    result = group.process(message)
    assert isinstance(result, ApplicationMessage)
    assert result.data == data


def resume(
    old: Sequence[Group],
    fresh: Sequence[Identity],
    start: Callable[..., tuple[Group, CreatedCommit]],
) -> GroupHarness:
    """``fresh[0]`` starts a new group from ``old[0]`` with ``start`` (``reinit_successor``
    or ``branch``) adding the other ``fresh`` identities, who join from its Welcome with
    ``resumed_from`` their group in ``old``."""
    new, created = start(
        fresh[0].key_package,
        fresh[0].keys.encryption_priv,
        fresh[0].signature_priv,
        [f.key_package for f in fresh[1:]],
    )
    assert created.welcome is not None
    welcome = MLSMessage.of(created.welcome)
    joined = [join(f, welcome, resumed_from=g) for f, g in zip(fresh[1:], old[1:], strict=True)]
    return GroupHarness.of(fresh, [new, *joined])


@SUITES
def test_three_party_join(suite: int) -> None:
    alice, bob, charlie = (new_identity(suite, name) for name in (b"alice", b"bob", b"charlie"))
    a = create_group(alice)

    created = a.commit([add_proposal(bob.key_package)])
    a.merge_pending_commit()
    assert created.welcome is not None
    b = join(bob, MLSMessage.of(created.welcome))

    created = a.commit([add_proposal(charlie.key_package)])
    a.merge_pending_commit()
    assert created.welcome is not None
    staged = b.process(created.message.encode())
    assert isinstance(staged, StagedCommit)
    b.merge(staged)
    c = join(charlie, MLSMessage.of(created.welcome))

    h = GroupHarness.of([alice, bob, charlie], [a, b, c])
    h.check_agreement()
    assert a.epoch == 2
    assert [cred.identity for _, cred, _ in c.members()] == [b"alice", b"bob", b"charlie"]
    exported = {g.export_secret(b"scenario", b"ctx", 32) for g in (a, b, c)}
    assert len(exported) == 1
    h.everyone_can_message_everyone()


@SUITES
def test_external_join_then_resync(suite: int) -> None:
    h = GroupHarness(suite, 2)
    joiner = h.join_external(via=0)
    settle(h)
    assert len(h.group(0).members()) == 3

    # member 1 lost its state: it rejoins with the same signer, removing its old leaf
    old_leaf = h.group(1).own_leaf
    h.join_external(via=joiner, resync=1)
    settle(h)
    assert h.group(1).own_leaf == old_leaf  # the freed leaf is the leftmost blank one
    assert len(h.group(0).members()) == 3


@SUITES
def test_external_psk_committed(suite: int) -> None:
    psk_id, secret = b"shared-psk", os.urandom(32)
    h = GroupHarness(suite, 3, GroupConfig(external_psks={psk_id: secret}))
    psk = PreSharedKeyID.external(psk_id, os.urandom(h.group(0).suite.hash_length))
    h.propose(1, h.group(1).propose_psk(psk))
    h.deliver_all()
    h.commit(0)
    settle(h)


@SUITES
def test_resumption_psk_of_an_earlier_epoch_committed(suite: int) -> None:
    h = GroupHarness(suite, 3)
    earlier = h.group(0).epoch
    h.update(1)
    h.deliver_all()
    h.update(2)
    h.deliver_all()
    psk = PreSharedKeyID.resumption(
        ResumptionPSKUsage.APPLICATION,
        h.group(0).group_id,
        earlier,
        os.urandom(h.group(0).suite.hash_length),
    )
    h.commit(2, [Proposal.of(PreSharedKey(psk))])
    settle(h)


@SUITES
def test_reinit_into_the_next_suite(suite: int) -> None:
    h = GroupHarness(suite, 3)
    new_suite = suite % 7 + 1
    reinit = ReInit(b"reinit-group", ProtocolVersion.MLS10, new_suite, ())
    h.propose(0, h.group(0).propose_reinit(reinit))
    h.deliver_all()
    h.commit(1)
    h.deliver_all()
    old = [h.group(i) for i in range(3)]  # every member has merged the ReInit
    for g in old:
        assert not g.active
        with unchanged(g), pytest.raises(UsageError):
            g.encrypt_application(b"too late")

    # member 1 starts the successor; the others join it from its Welcome
    order = (1, 0, 2)
    fresh = [new_identity(new_suite, h.idents[i].name) for i in order]
    successor = resume([old[i] for i in order], fresh, old[1].reinit_successor)
    new = successor.group(0)
    assert new.group_id == b"reinit-group"
    assert int(new.suite.id) == new_suite
    settle(successor)


@SUITES
def test_branch_with_a_subset(suite: int) -> None:
    h = GroupHarness(suite, 4)
    subset = (0, 2, 3)
    fresh = [fresh_key_package(h.idents[i]) for i in subset]
    branch = resume(
        [h.group(i) for i in subset], fresh, functools.partial(h.group(0).branch, b"branch")
    )
    new = branch.group(0)
    settle(branch)
    assert len(new.members()) == 3
    settle(h)  # the parent group goes on


@SUITES
def test_add_and_remove_in_one_commit(suite: int) -> None:
    h = GroupHarness(suite, 3)
    victim_leaf = h.group(2).own_leaf
    (newcomer,) = h.add(0, 1, also=[Proposal.of(Remove(int(victim_leaf)))])
    h.deliver_all()
    assert h.members[2] is None  # the victim merged its removal
    assert h.group(newcomer).own_leaf == victim_leaf  # removes apply before adds (§12.3)
    settle(h)
    assert len(h.group(0).members()) == 3


@SUITES
def test_out_of_order_generations(suite: int) -> None:
    h = GroupHarness(suite, 3)
    sent = {h.send(0, f"message {k}".encode()): f"message {k}".encode() for k in range(12)}
    order = list(sent)
    random.Random(suite).shuffle(order)
    for message in order:
        opens_to(h.group(1), message, sent[message])
    for message in reversed(order):
        opens_to(h.group(2), message, sent[message])
    h.inbox[1].clear()
    h.inbox[2].clear()
    g = h.group(1)
    with unchanged(g), pytest.raises(StaleGenerationError):
        g.process(order[3])
    settle(h)


@SUITES
def test_epoch_retention(suite: int) -> None:
    h = GroupHarness(suite, 3)
    assert h.config.past_epochs == 2
    late = []
    for _ in range(3):
        late.append(h.group(2).encrypt_application(b"epoch %d" % h.group(2).epoch))
        h.update(0)
        h.deliver_all()
    # member 1 is now 3 epochs past the first message, 2 past the second, 1 past the third
    g = h.group(1)
    with unchanged(g), pytest.raises(EpochError):
        g.process(late[0])
    opens_to(g, late[1], b"epoch %d" % (g.epoch - 2))
    opens_to(g, late[2], b"epoch %d" % (g.epoch - 1))
    settle(h)


@pytest.mark.slow
@SUITES
def test_hundred_member_lifecycle(suite: int) -> None:
    h = GroupHarness(suite, 1)
    h.add(0, 49)
    h.deliver_all()
    h.add(25, 50)
    h.deliver_all()
    h.check_agreement()
    assert len(h.group(0).members()) == 100
    for committer, victim in ((99, 10), (3, 60), (50, 0)):
        h.update(committer)
        h.deliver_all()
        h.remove(committer, victim)
        h.deliver_all()
    h.check_agreement()
    assert len(h.active()) == 97
    for sender in (1, 42, 99):
        data = os.urandom(16)
        message = h.send(sender, data)
        for i in h.active():
            if i != sender:
                opens_to(h.group(i), message, data)
                h.inbox[i].clear()
