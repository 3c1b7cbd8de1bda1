"""Hypothesis over the group engine as a state machine (h2 ``test_state_machines.py`` style).

Up to 8 members of one group (one machine per cipher suite) under random sequences of Adds,
Removes, self-update Commits, Update and Remove proposals committed by another member,
application messages, deliveries (whole inboxes or one message picked out of order),
reloads from ``to_bytes`` and rejected input (replays, garbage, mutated messages).

The model beside the harness knows the latest epoch, the roster, the pending proposals and
each member's join epoch; from those it predicts what every delivery must do:

* a handshake message opens only when it is the first handshake in its inbox; one of
  another epoch is an :class:`EpochError` and stays queued;
* application data opens to its plaintext at every other member if its epoch is the
  member's current one or a retained one (``past_epochs``, not before the member joined);
  a future epoch is an :class:`EpochError` and stays queued, an expired one an
  :class:`EpochError` and is dropped.

Invariants: members that processed every handshake message agree on epoch, tree hash,
``epoch_authenticator`` and an exported secret; rejected input raises only
:class:`~mls.errors.MLSError` subclasses and leaves ``to_bytes()`` byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mls.errors import EpochError, MLSError
from mls.framing import ContentType, MLSMessage, PrivateMessage, PublicMessage
from mls.group.config import GroupConfig
from mls.group.results import ApplicationMessage, OwnMessage, ProposalMessage
from tests.mls.group_harness import GroupHarness, unchanged

MAX_MEMBERS = 8
SUITES = range(1, 8)
EXAMPLES = 10  # per suite; with STEPS the file takes about 15 s on one busy core
STEPS = 30


def message_epoch(message: bytes) -> tuple[int, bool]:
    """``(epoch, is_handshake)`` of a PublicMessage or PrivateMessage."""
    body = MLSMessage.decode(message).body
    if isinstance(body, PublicMessage):
        return body.content.epoch, True
    assert isinstance(body, PrivateMessage)
    return body.epoch, body.content_type != ContentType.APPLICATION


class GroupMachine(RuleBasedStateMachine):
    suite_id = 1

    def __init__(self) -> None:
        super().__init__()
        self.h: GroupHarness
        self.roster: set[int] = set()  # members in the latest epoch
        self.joined: dict[int, int] = {}  # member -> epoch it joined in
        self.epoch = 0
        self.update_proposers: set[int] = set()
        self.remove_targets: set[int] = set()
        self.plaintexts: dict[bytes, bytes] = {}
        self.processed: dict[int, list[bytes]] = {}  # accepted messages, for replays

    # ----------------------------------------------------------------------------------------
    # The model

    @initialize(handshake_private=st.booleans(), n=st.integers(1, 3))
    def start(self, handshake_private: bool, n: int) -> None:
        self.h = GroupHarness(self.suite_id, 1, GroupConfig(handshake_private=handshake_private))
        self.roster = {0}
        self.joined = {0: 0}
        self.processed = {0: []}
        if n > 1:
            self._committed(0, self.h.add(0, n - 1))

    def _up_to_date(self, i: int) -> bool:
        return not any(message_epoch(m)[1] for m in self.h.inbox[i])

    def _affected(self) -> set[int]:
        return self.update_proposers | self.remove_targets

    def _committers(self) -> list[int]:
        # RFC 9420 §12.4: a committer has every proposal of the epoch, commits none of its
        # own Updates and does not remove itself
        return sorted(i for i in self.roster - self._affected() if self._up_to_date(i))

    def _proposers(self) -> list[int]:
        return sorted(i for i in self.roster if self._up_to_date(i))

    def _senders(self) -> list[int]:
        return [i for i in self.h.active() if not self.h.group(i).pending_proposals]

    def _receivers(self) -> list[int]:
        return [i for i in self.h.active() if self.h.inbox[i]]

    def _committed(
        self, committer: int, added: Sequence[int] = (), removed: Sequence[int] = ()
    ) -> None:
        self.epoch += 1
        assert self.h.group(committer).epoch == self.epoch
        self.roster -= self.remove_targets | set(removed)
        self.update_proposers.clear()
        self.remove_targets.clear()
        for i in added:
            self.roster.add(i)
            self.joined[i] = self.epoch
            self.processed[i] = []

    # ----------------------------------------------------------------------------------------
    # Commits and proposals

    @precondition(lambda self: len(self.roster) < MAX_MEMBERS and self._committers())
    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        committer = data.draw(st.sampled_from(self._committers()), "committer")
        count = data.draw(st.integers(1, min(3, MAX_MEMBERS - len(self.roster))), "count")
        self._committed(committer, self.h.add(committer, count))

    @precondition(lambda self: len(self.roster - self._affected()) > 1 and self._committers())
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        committer = data.draw(st.sampled_from(self._committers()), "committer")
        victims = sorted(self.roster - self._affected() - {committer})
        victim = data.draw(st.sampled_from(victims), "victim")
        self.h.remove(committer, victim)
        self._committed(committer, removed=[victim])

    @precondition(lambda self: self._committers())
    @rule(data=st.data())
    def self_update(self, data: st.DataObject) -> None:
        committer = data.draw(st.sampled_from(self._committers()), "committer")
        self.h.update(committer)
        self._committed(committer)

    @precondition(lambda self: self._committers() and self._affected())
    @rule(data=st.data())
    def commit_pending(self, data: st.DataObject) -> None:
        committer = data.draw(st.sampled_from(self._committers()), "committer")
        self.h.commit(committer)
        self._committed(committer)

    @precondition(lambda self: len(self._committers()) > 1)
    @rule(data=st.data())
    def propose_update(self, data: st.DataObject) -> None:
        # someone else must remain able to commit it
        proposer = data.draw(st.sampled_from(self._committers()), "proposer")
        self.h.propose(proposer, self.h.group(proposer).propose_update())
        self.update_proposers.add(proposer)

    @precondition(lambda self: len(self._committers()) > 1)
    @rule(data=st.data())
    def propose_remove(self, data: st.DataObject) -> None:
        proposer = data.draw(st.sampled_from(self._proposers()), "proposer")
        victim = data.draw(st.sampled_from(sorted(self.roster - self._affected())), "victim")
        leaf = int(self.h.group(victim).own_leaf)
        self.h.propose(proposer, self.h.group(proposer).propose_remove(leaf))
        self.remove_targets.add(victim)

    # ----------------------------------------------------------------------------------------
    # Traffic

    @precondition(lambda self: self._senders())
    @rule(data=st.data(), plaintext=st.binary(max_size=40))
    def send(self, data: st.DataObject, plaintext: bytes) -> None:
        sender = data.draw(st.sampled_from(self._senders()), "sender")
        message = self.h.send(sender, plaintext)
        self.plaintexts[message] = plaintext
        if data.draw(st.booleans(), "echo"):
            # PRIV-09: the sender's own message comes back; its key is gone, nothing changes
            g = self.h.group(sender)
            with unchanged(g):
                assert isinstance(g.process(message), OwnMessage)

    def _deliver(self, i: int, index: int) -> None:
        """Delivers ``inbox[i][index]`` and checks the outcome the model predicts."""
        g = self.h.group(i)
        message = self.h.inbox[i][index]
        epoch, handshake = message_epoch(message)
        if handshake:
            first = next(k for k, m in enumerate(self.h.inbox[i]) if message_epoch(m)[1])
            if index != first:
                if epoch != g.epoch:
                    with unchanged(g), pytest.raises(EpochError):
                        g.process(message)
                return  # a handshake of this epoch behind another: not yet
            assert epoch == g.epoch
            if not isinstance(self.h.deliver_one(i, index), ProposalMessage):
                self.processed[i].append(message)  # a proposal replayed is a duplicate
            return
        readable = epoch == g.epoch or (
            self.joined[i] <= epoch < g.epoch and g.epoch - epoch <= self.h.config.past_epochs
        )
        if not readable:
            with unchanged(g), pytest.raises(EpochError):
                g.process(message)
            if epoch < g.epoch:
                del self.h.inbox[i][index]  # expired: it will never open
            return
        result = self.h.deliver_one(i, index)
        assert isinstance(result, ApplicationMessage)
        assert result.data == self.plaintexts[message]
        assert result.epoch == epoch
        self.processed[i].append(message)

    @precondition(lambda self: self._receivers())
    @rule(data=st.data())
    def deliver_one(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._receivers()), "receiver")
        index = data.draw(st.integers(0, len(self.h.inbox[i]) - 1), "index")
        self._deliver(i, index)

    @precondition(lambda self: self._receivers())
    @rule(data=st.data())
    def deliver_all(self, data: st.DataObject) -> None:
        receivers = data.draw(
            st.lists(st.sampled_from(self._receivers()), min_size=1, unique=True), "receivers"
        )
        for i in receivers:
            while self.h.members[i] is not None and self.h.inbox[i]:
                self._deliver(i, 0)

    # ----------------------------------------------------------------------------------------
    # Rejected input and reloads

    @precondition(lambda self: any(self.processed[i] for i in self.h.active()))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from([i for i in self.h.active() if self.processed[i]]))
        message = data.draw(st.sampled_from(self.processed[i]), "message")
        g = self.h.group(i)
        with unchanged(g), pytest.raises(MLSError):
            g.process(message)

    @rule(data=st.data(), garbage=st.binary(max_size=120))
    def garbage(self, data: st.DataObject, garbage: bytes) -> None:
        i = data.draw(st.sampled_from(self.h.active()), "receiver")
        g = self.h.group(i)
        with unchanged(g), pytest.raises(MLSError):
            g.process(garbage)

    @precondition(lambda self: self._receivers())
    @rule(data=st.data())
    def mutated(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._receivers()), "receiver")
        message = bytearray(data.draw(st.sampled_from(self.h.inbox[i]), "message"))
        # message lengths vary from run to run (ECDSA signatures): draw the offset blind
        at = data.draw(st.integers(0, 1 << 16), "at") % len(message)
        message[at] ^= data.draw(st.integers(1, 255), "xor")
        g = self.h.group(i)
        with unchanged(g), pytest.raises(MLSError):
            g.process(bytes(message))

    @rule(data=st.data())
    def reload(self, data: st.DataObject) -> None:
        self.h.reload(data.draw(st.sampled_from(self.h.active()), "member"))

    # ----------------------------------------------------------------------------------------
    # Invariants

    @invariant()
    def members_in_sync_agree(self) -> None:
        synced = [self.h.group(i) for i in sorted(self.roster) if self._up_to_date(i)]
        assert synced, "someone always has every handshake message"
        first = synced[0]
        for g in synced:
            assert g.epoch == self.epoch
            assert g.tree.tree_hash() == first.tree.tree_hash()
            assert g.epoch_authenticator == first.epoch_authenticator
            assert g.export_secret(b"machine", b"", 16) == first.export_secret(b"machine", b"", 16)
            assert {int(leaf) for leaf, _, _ in g.members()} == {
                int(self.h.group(i).own_leaf) for i in self.roster
            }

    @invariant()
    def removed_members_are_gone(self) -> None:
        assert set(self.h.active()) >= self.roster

    def teardown(self) -> None:
        if not hasattr(self, "h"):
            return
        # flush every inbox, commit what is pending, and check everyone can talk
        for _ in range(2):
            for i in list(self.h.active()):
                while self.h.members[i] is not None and self.h.inbox[i]:
                    self._deliver(i, 0)
            if not self._affected():
                break
            committer = self._committers()[0]
            self.h.commit(committer)
            self._committed(committer)
        assert set(self.h.active()) == self.roster
        self.members_in_sync_agree()
        self.h.everyone_can_message_everyone()


def machine_test(suite_id: int) -> type:
    """The unittest case running :class:`GroupMachine` over cipher suite ``suite_id``."""
    machine = type(f"GroupMachineCs{suite_id}", (GroupMachine,), {"suite_id": suite_id})
    case = machine.TestCase
    case.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS)
    return case


for _suite in SUITES:
    globals()[f"TestGroupMachineCs{_suite}"] = machine_test(_suite)
