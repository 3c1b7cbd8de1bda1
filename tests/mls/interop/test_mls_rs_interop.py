"""Our ``mls.GroupMember`` and mls-rs in one group, cipher suite 0x0001 (issue 13).

Every scenario runs in both directions (our side creates the group, or mls-rs does). After
each step all members agree on ``export_secret(b"interop", b"ctx", 32)`` (the bindings do not
expose the epoch authenticator), on the epoch and on the member list.

The module is skipped only while ``mls.GroupMember`` does not exist; the mls-rs bindings are
a dev dependency, so their absence fails the import below.
"""

from __future__ import annotations

from typing import Any

import pytest

import mls

from .mls_rs_peer import MlsRsPeer

if not hasattr(mls, "GroupMember"):
    pytest.skip("mls.GroupMember not present", allow_module_level=True)

from mls import CipherSuite, GroupMember  # noqa: E402

SUITE = CipherSuite(1)
GROUP_ID = b"interop-group"
EXPORT = (b"interop", b"ctx", 32)

OURS = "ours"
MLS_RS = "mls-rs"
KINDS = [OURS, MLS_RS]


def make(kind: str, identity: bytes) -> Any:
    """A member of either implementation; both have the GroupMember verbs."""
    if kind == OURS:
        return GroupMember(identity, suite=SUITE)
    return MlsRsPeer(identity)


def check_agree(*members: Any) -> None:
    """All members are in the same epoch with the same roster and exporter output."""
    secrets = [m.export_secret(*EXPORT) for m in members]
    assert all(s == secrets[0] for s in secrets), "export_secret differs"
    epochs = [m.epoch for m in members]
    assert all(e == epochs[0] for e in epochs), f"epochs differ: {epochs}"
    rosters = [m.members for m in members]
    assert all(r == rosters[0] for r in rosters), f"members differ: {rosters}"
    ours = [m for m in members if not isinstance(m, MlsRsPeer)]
    assert len({m.epoch_authenticator for m in ours}) <= 1


def deliver(handshake: bytes, *receivers: Any) -> None:
    """A commit (or proposal) to each receiver; it is applied and yields no plaintext."""
    for receiver in receivers:
        assert receiver.receive_message(handshake) is None


def exchange(*members: Any) -> None:
    """Each member sends one application message that every other member decrypts."""
    for index, sender in enumerate(members):
        text = b"message from member %d" % index
        data = sender.send_message(text)
        for receiver in members:
            if receiver is not sender:
                assert receiver.receive_message(data) == text


def start(creator_kind: str, joiner_kind: str) -> tuple[Any, Any]:
    """``creator`` makes the group and adds ``joiner`` from its KeyPackage; ``joiner`` joins
    from the Welcome alone (both sides put the ratchet tree in the Welcome)."""
    creator, joiner = make(creator_kind, b"creator"), make(joiner_kind, b"joiner")
    creator.create_group(GROUP_ID)
    check_agree(creator)
    assert creator.members == [b"creator"]
    commit, welcome = creator.add_member(joiner.generate_key_package())
    assert commit
    joiner.join_group(welcome)
    check_agree(creator, joiner)
    assert joiner.members == [b"creator", b"joiner"]
    assert joiner.epoch == 1
    return creator, joiner


def other(kind: str) -> str:
    return MLS_RS if kind == OURS else OURS


# ============================================================================================
# Scenarios


@pytest.mark.parametrize("creator_kind", KINDS)
def test_join_from_welcome_and_message_both_ways(creator_kind: str) -> None:
    creator, joiner = start(creator_kind, other(creator_kind))
    exchange(creator, joiner)
    exchange(joiner, creator)
    check_agree(creator, joiner)


@pytest.mark.parametrize("creator_kind", KINDS)
def test_self_updates_both_ways(creator_kind: str) -> None:
    creator, joiner = start(creator_kind, other(creator_kind))
    for committer, receiver in [(creator, joiner), (joiner, creator), (creator, joiner)]:
        deliver(committer.update(), receiver)
        check_agree(creator, joiner)
        exchange(creator, joiner)
    assert creator.epoch == 4


@pytest.mark.parametrize("third_kind", KINDS)
@pytest.mark.parametrize("creator_kind", KINDS)
def test_third_member_added_then_removed(creator_kind: str, third_kind: str) -> None:
    creator, joiner = start(creator_kind, other(creator_kind))
    third = make(third_kind, b"third")

    # the joiner (the other implementation) adds the third member
    commit, welcome = joiner.add_member(third.generate_key_package())
    deliver(commit, creator)
    third.join_group(welcome)
    check_agree(creator, joiner, third)
    assert third.members == [b"creator", b"joiner", b"third"]
    exchange(creator, joiner, third)

    deliver(third.update(), creator, joiner)
    check_agree(creator, joiner, third)

    # the creator removes it
    commit = creator.remove_member(b"third")
    deliver(commit, joiner, third)
    check_agree(creator, joiner)
    assert creator.members == [b"creator", b"joiner"]
    exchange(creator, joiner)

    deliver(joiner.update(), creator)
    check_agree(creator, joiner)


@pytest.mark.parametrize("creator_kind", KINDS)
def test_add_two_members_in_one_commit(creator_kind: str) -> None:
    creator = make(creator_kind, b"creator")
    creator.create_group(GROUP_ID)
    first, second = make(OURS, b"first"), make(MLS_RS, b"second")
    commit, welcome = creator.add_members(
        [first.generate_key_package(), second.generate_key_package()]
    )
    assert commit
    first.join_group(welcome)
    second.join_group(welcome)
    check_agree(creator, first, second)
    assert second.members == [b"creator", b"first", b"second"]
    exchange(creator, first, second)

    commit = second.remove_member(b"first")
    deliver(commit, creator, first)
    check_agree(creator, second)


def test_mls_rs_welcome_without_tree_takes_it_out_of_band() -> None:
    creator = MlsRsPeer(b"creator", ratchet_tree_extension=False)
    joiner = make(OURS, b"joiner")
    creator.create_group(GROUP_ID)
    _, welcome = creator.add_member(joiner.generate_key_package())
    assert creator.last_ratchet_tree is not None
    joiner.join_group(welcome, ratchet_tree=creator.last_ratchet_tree)
    check_agree(creator, joiner)
    exchange(creator, joiner)


def test_our_external_join_accepted_by_mls_rs() -> None:
    """mls-rs cannot join externally nor export a GroupInfo, but it must accept our external
    commit (RFC 9420 §12.4.3.2) into a group it is in."""
    creator, member = start(OURS, MLS_RS)
    newcomer = make(OURS, b"newcomer")
    commit = newcomer.join_external(creator.group_info())
    deliver(commit, creator, member)
    check_agree(creator, member, newcomer)
    assert member.members == [b"creator", b"joiner", b"newcomer"]
    exchange(creator, member, newcomer)
