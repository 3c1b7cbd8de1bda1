"""Local invariants of the group state (VALIDATION §1.13, ST-01..05; RFC 9420 §9.2, §12.4,
§14, §15.2) and the persisted form: ``from_bytes(to_bytes(g))`` continues identically, and
``GroupState.from_bytes`` raises only ``DecodeError`` on arbitrary or mutated bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.errors import DecodeError, StaleGenerationError, UsageError, ValidationError
from mls.group.group import Group, add_proposal
from mls.group.results import ApplicationMessage
from mls.group.staged_commit import RULE_CONFIRMATION_TAG, StagedCommit
from mls.group.state import GroupState
from mls.secret_tree import RULE_CONSUMED
from tests.mls.forge_commit import forge_commit, public_message, reframe
from tests.mls.group_harness import GroupHarness, new_identity, unchanged


def test_st01_a_rejected_commit_leaves_the_group_able_to_take_the_valid_one() -> None:
    h = GroupHarness(1, 3)
    committer, receiver = h.group(0), h.group(2)
    created = committer.commit(force_path=True)
    message = created.message.encode()
    tag = public_message(message).auth.confirmation_tag
    assert tag is not None
    bad = reframe(committer, message, confirmation_tag=bytes([tag[0] ^ 1]) + tag[1:])
    committer.merge_pending_commit()
    with unchanged(receiver), pytest.raises(ValidationError) as info:
        receiver.process(bad)
    assert info.value.rule == RULE_CONFIRMATION_TAG
    staged = receiver.process(message)
    assert isinstance(staged, StagedCommit)
    receiver.merge(staged)
    assert receiver.epoch_authenticator == committer.epoch_authenticator


@pytest.mark.parametrize("suite", range(1, 8))
def test_st02_creating_a_commit_does_not_change_the_group(suite: int) -> None:
    h = GroupHarness(suite, 2)
    g = h.group(0)
    with unchanged(g):
        g.commit([add_proposal(new_identity(suite, b"dave").key_package)], force_path=True)
        g.clear_pending_commit()
    with unchanged(g):
        forge_commit(g, force_path=True)


def test_st02_processing_a_commit_changes_nothing_until_merged() -> None:
    h = GroupHarness(1, 3)
    h.update(0)
    with unchanged(h.group(1)):
        staged = h.group(1).process(h.inbox[1][0])
    assert isinstance(staged, StagedCommit)


def test_st03_sending_with_uncommitted_proposals_is_refused() -> None:
    h = GroupHarness(1, 3)
    g = h.group(0)
    g.process(h.group(1).propose_remove(2))
    with unchanged(g), pytest.raises(UsageError):
        g.encrypt_application(b"too early")


def test_st03_after_a_merge_application_data_uses_the_new_epoch() -> None:
    h = GroupHarness(1, 2)
    old_epoch = h.group(0).epoch
    h.update(0)
    h.deliver_all()
    message = h.group(0).encrypt_application(b"x")
    result = h.group(1).process(message)
    assert isinstance(result, ApplicationMessage) and result.epoch == old_epoch + 1


def test_st04_the_same_private_message_twice_fails() -> None:
    h = GroupHarness(1, 2)
    message = h.group(0).encrypt_application(b"once")
    assert isinstance(h.group(1).process(message), ApplicationMessage)
    with unchanged(h.group(1)), pytest.raises(StaleGenerationError) as info:
        h.group(1).process(message)
    assert info.value.rule == RULE_CONSUMED


def test_st04_previous_init_secret_and_path_secrets_are_gone_after_a_commit() -> None:
    h = GroupHarness(1, 3)
    g = h.group(1)
    old_init = g.state.secrets.init_secret
    h.update(1)
    h.deliver_all()
    old_paths = dict(g.state.private_key.path_secrets)
    assert old_paths
    h.update(0)
    h.deliver_all()
    data = g.to_bytes()
    assert old_init not in data
    replaced = [s for x, s in old_paths.items() if x in g.state.private_key.path_secrets]
    for secret in old_paths.values():
        if secret not in replaced:
            assert secret not in data


@pytest.mark.parametrize("suite", range(1, 8))
def test_st05_reloaded_state_continues_identically(suite: int) -> None:
    h = GroupHarness(suite, 3)
    h.update(1)
    h.deliver_all()
    reloaded = Group.from_bytes(h.group(2).to_bytes(), h.config)
    assert reloaded.to_bytes() == h.group(2).to_bytes()
    assert reloaded.epoch_authenticator == h.group(2).epoch_authenticator
    h.members[2] = reloaded
    h.update(0)
    h.deliver_all()
    h.check_agreement()
    h.everyone_can_message_everyone()


def test_st05_resending_from_a_stale_snapshot_does_not_repeat_the_ciphertext() -> None:
    """A crash after sending but before persisting: the reuse guard is random (§6.3.1)."""
    h = GroupHarness(1, 2)
    snapshot = h.group(0).to_bytes()
    first = h.group(0).encrypt_application(b"same")
    again = Group.from_bytes(snapshot, h.config).encrypt_application(b"same")
    assert first != again


# --------------------------------------------------------------------------------------------
# GroupState.from_bytes: DecodeError only


def _state_bytes() -> bytes:
    h = GroupHarness(1, 3)
    h.group(0).process(h.group(1).propose_remove(2))
    return h.group(0).to_bytes()


STATE = _state_bytes()


def _decodes_or_decode_error(data: bytes) -> None:
    try:
        GroupState.from_bytes(data)
    except DecodeError:
        pass


@given(st.binary(max_size=512))
def test_from_bytes_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    _decodes_or_decode_error(data)


@given(st.data())
def test_from_bytes_mutated_state_raises_only_decode_error(data: st.DataObject) -> None:
    blob = bytearray(STATE)
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "set"]))
    at = data.draw(st.integers(0, len(blob) - 1))
    if kind == "flip":
        blob[at] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        del blob[at:]
    elif kind == "insert":
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        blob[at] = data.draw(st.sampled_from([0x00, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF]))
    _decodes_or_decode_error(bytes(blob))


def test_from_bytes_roundtrip_is_exact() -> None:
    assert GroupState.from_bytes(STATE).to_bytes() == STATE
    with pytest.raises(DecodeError):
        GroupState.from_bytes(STATE + b"\x00")
