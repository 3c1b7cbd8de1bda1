"""Joining from a Welcome: every rule of VALIDATION §1.6 (WEL-01..16) and KP-08.

Each negative test forges a Welcome that is correct but for one field (``tests/mls/forge.py``
re-signs, re-tags and re-encrypts the rest), checks the typed error and its rule, and then
shows that nothing was consumed: the genuine Welcome still joins with the same keys.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import pytest

from mls.errors import DecryptionError, UsageError, ValidationError, VerificationError
from mls.extensions import Extension, ExtensionType
from mls.framing import MLSMessage
from mls.group.commit import CreatedCommit
from mls.group.config import GroupConfig
from mls.group.epoch import RULE_PSK_UNKNOWN, resolve_psks
from mls.group.group import Group, add_proposal
from mls.group.member import GroupMember
from mls.group.welcome import (
    RULE_BRANCH,
    RULE_CONFIRMATION_TAG,
    RULE_EXTENSION_SUPPORT,
    RULE_GROUP_INFO,
    RULE_GROUP_INFO_EXTENSIONS,
    RULE_GROUP_INFO_SIGNATURE,
    RULE_GROUP_SECRETS,
    RULE_NO_KEY_PACKAGE,
    RULE_OWN_LEAF,
    RULE_REINIT,
    RULE_RESUMPTION,
    RULE_SIGNER,
    RULE_SUITE,
)
from mls.key_package import KeyPackage
from mls.messages import GroupInfo, GroupSecrets, PathSecret, Proposal, ReInit, Remove, Welcome
from mls.psk_id import PreSharedKeyID, ResumptionPSKUsage
from mls.tree_math import LeafIndex
from mls.tree_validation import RULE_TREE_HASH
from mls.treekem import RULE_DERIVED_PUBLIC_KEY, RULE_SENDER
from tests.mls.forge import (
    forge_welcome,
    open_group_secrets,
    open_welcome,
    resign_group_info,
    seal_welcome,
)
from tests.mls.group_harness import (
    Identity,
    create_group,
    fresh_key_package,
    join,
    new_identity,
    unchanged,
)

ALL_SUITES = [1, 2, 3, 4, 5, 6, 7]
UNKNOWN_EXTENSION = 0xF0A0  # no registry entry (RFC 9420 §17.3)


@dataclass
class Invite:
    """Alice's group after a Commit adding Bob, and the Welcome Bob was sent."""

    alice: Identity
    group: Group
    bob: Identity
    created: CreatedCommit

    @property
    def welcome(self) -> Welcome:
        assert self.created.welcome is not None
        return self.created.welcome

    @property
    def signer_priv(self) -> bytes:
        return self.alice.signature_priv

    def forge(self, **kw: object) -> Welcome:
        return forge_welcome(self.welcome, self.bob.keys, self.bob.suite, self.signer_priv, **kw)  # type: ignore[arg-type]

    def open(self) -> tuple[GroupInfo, GroupSecrets]:
        return open_welcome(self.welcome, self.bob.keys, self.bob.suite)


def invite(
    suite_id: int = 1,
    *,
    force_path: bool = False,
    others: int = 0,
    config: GroupConfig | None = None,
) -> Invite:
    alice = new_identity(suite_id, b"alice")
    group = create_group(alice, config=config)
    if others:
        extra = [new_identity(suite_id, f"other-{i}".encode()) for i in range(others)]
        group.commit([add_proposal(i.key_package) for i in extra])
        group.merge_pending_commit()
    bob = new_identity(suite_id, b"bob")
    created = group.commit([add_proposal(bob.key_package)], force_path=force_path)
    group.merge_pending_commit()
    return Invite(alice, group, bob, created)


def rejected(
    inv: Invite,
    welcome: Welcome,
    error: type[Exception],
    rule: str,
    *,
    ident: Identity | None = None,
    config: GroupConfig | None = None,
) -> None:
    """``welcome`` is refused with ``error``/``rule``; the genuine Welcome still joins with
    the same keys afterwards (the failed join consumed nothing)."""
    ident = inv.bob if ident is None else ident
    with pytest.raises(error) as info:
        join(ident, MLSMessage.of(welcome), config)
    assert info.value.rule == rule  # type: ignore[attr-defined]
    joined = join(
        inv.bob, MLSMessage.of(inv.welcome), config, ratchet_tree=inv.group.ratchet_tree()
    )
    assert joined.epoch_authenticator == inv.group.epoch_authenticator


# --------------------------------------------------------------------------------------------
# Acceptance: the forge itself produces Welcomes that join


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_forged_welcome_without_changes_joins(suite_id: int) -> None:
    inv = invite(suite_id, force_path=True)
    joined = join(inv.bob, MLSMessage.of(inv.forge()))
    assert joined.epoch_authenticator == inv.group.epoch_authenticator


# --------------------------------------------------------------------------------------------
# WEL-01, KP-08


def test_wel01_welcome_for_another_key_package_is_rejected() -> None:
    inv = invite()
    info, secrets = inv.open()
    stranger = new_identity(1, b"carol").key_package
    welcome = seal_welcome(inv.bob.suite, info, secrets, stranger)
    rejected(inv, welcome, ValidationError, RULE_NO_KEY_PACKAGE)


def test_wel01_ref_computed_with_the_hash_of_the_welcome_suite() -> None:
    # A Welcome claiming suite 3 (SHA-256 like suite 1) with Bob's suite-1 entry: the entry
    # is his, but his KeyPackage is not of the Welcome's suite (KP-05).
    inv = invite()
    welcome = dataclasses.replace(inv.welcome, cipher_suite=3)
    with pytest.raises(ValidationError) as info:
        join(inv.bob, MLSMessage.of(welcome))
    assert info.value.rule == RULE_SUITE


def test_kp08_second_welcome_to_consumed_key_package_fails() -> None:
    alice = GroupMember(b"alice")
    bob = GroupMember(b"bob")
    alice.create_group(b"g1")
    kp = bob.generate_key_package()
    ref = KeyPackage.decode(MLSMessage.decode(kp).body.encode()).ref(bob.suite)  # type: ignore[union-attr]
    _, welcome = alice.add_member(kp)
    bob.join_group(welcome)
    assert bob.key_store.get(ref) is None
    # A second group invites the same KeyPackage: its keys are gone.
    carol = GroupMember(b"carol")
    carol.create_group(b"g2")
    _, welcome2 = carol.add_member(kp)
    bob.group = None  # leave, so only the key store decides
    with pytest.raises(ValidationError) as info:
        bob.join_group(welcome2)
    assert info.value.rule == RULE_NO_KEY_PACKAGE
    assert bob.group is None


def test_kp08_group_join_from_welcome_with_key_store_deletes_nothing_on_failure() -> None:
    inv = invite()
    stored = {inv.bob.key_package.ref(inv.bob.suite): inv.bob.keys}
    bad = inv.forge(confirmation_tag=os.urandom(32))
    with pytest.raises(ValidationError):
        Group.join_from_welcome(MLSMessage.of(bad), stored.get)
    group, ref = Group.join_from_welcome(MLSMessage.of(inv.welcome), stored.get)
    del stored[ref]
    with pytest.raises(ValidationError) as info:
        Group.join_from_welcome(MLSMessage.of(inv.welcome), stored.get)
    assert info.value.rule == RULE_NO_KEY_PACKAGE
    assert group.epoch == inv.group.epoch


# --------------------------------------------------------------------------------------------
# WEL-02, WEL-03, WEL-04


def test_wel02_group_secrets_sealed_to_another_init_key() -> None:
    inv = invite()
    info, secrets = inv.open()
    other = new_identity(1, b"carol").key_package
    welcome = seal_welcome(
        inv.bob.suite, info, secrets, other, new_member=inv.bob.key_package.ref(inv.bob.suite)
    )
    rejected(inv, welcome, DecryptionError, RULE_GROUP_SECRETS)


def test_wel02_tampered_encrypted_group_info_breaks_the_hpke_context() -> None:
    inv = invite()
    data = bytearray(inv.welcome.encrypted_group_info)
    data[-1] ^= 1
    welcome = dataclasses.replace(inv.welcome, encrypted_group_info=bytes(data))
    rejected(inv, welcome, DecryptionError, RULE_GROUP_SECRETS)


@pytest.mark.parametrize("kem_output", [b"", b"\x01" * 7, b"\x04" + b"\xff" * 64])
def test_wel02_malformed_kem_output_is_a_decryption_error(kem_output: bytes) -> None:
    inv = invite()
    entry = inv.welcome.secrets[0]
    bad = dataclasses.replace(
        entry,
        encrypted_group_secrets=dataclasses.replace(
            entry.encrypted_group_secrets, kem_output=kem_output
        ),
    )
    welcome = dataclasses.replace(inv.welcome, secrets=(bad,))
    rejected(inv, welcome, DecryptionError, RULE_GROUP_SECRETS)


def test_wel03_unknown_external_psk_is_rejected() -> None:
    inv = invite()
    psk = PreSharedKeyID.external(b"never-shared", os.urandom(32))
    welcome = inv.forge(secrets_changes={"psks": (psk,)})
    rejected(inv, welcome, ValidationError, RULE_PSK_UNKNOWN)


@pytest.mark.parametrize(
    "usages",
    [
        (ResumptionPSKUsage.REINIT, ResumptionPSKUsage.REINIT),
        (ResumptionPSKUsage.BRANCH, ResumptionPSKUsage.REINIT),
    ],
)
def test_wel03_two_reinit_or_branch_psks_are_rejected(usages: tuple[int, int]) -> None:
    inv = invite()
    psks = tuple(
        PreSharedKeyID.resumption(ResumptionPSKUsage(u), b"old", 3, os.urandom(32)) for u in usages
    )
    welcome = inv.forge(secrets_changes={"psks": psks})
    rejected(inv, welcome, ValidationError, RULE_RESUMPTION)


def test_wel04_group_info_under_another_welcome_key_is_rejected() -> None:
    inv = invite()
    info, secrets = inv.open()
    welcome = seal_welcome(
        inv.bob.suite, info, secrets, inv.bob.key_package, joiner_secret=os.urandom(32)
    )
    rejected(inv, welcome, DecryptionError, RULE_GROUP_INFO)


# --------------------------------------------------------------------------------------------
# WEL-05, WEL-06 (mls-rs#173: the signer index is checked before any tree math)


@pytest.mark.parametrize("signer", [2, 5, 2**31, 2**32 - 1])
def test_wel05_signer_out_of_range_is_rejected(signer: int) -> None:
    inv = invite()
    rejected(inv, inv.forge(signer=signer), ValidationError, RULE_SIGNER)


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_wel05_signer_index_2_pow_31_every_suite(suite_id: int) -> None:
    inv = invite(suite_id)
    rejected(inv, inv.forge(signer=2**31), ValidationError, RULE_SIGNER)


def test_wel05_signer_at_blank_leaf_is_rejected() -> None:
    # leaves 0..3, then one Commit removes 1 and 2 and adds Bob (at 1): leaf 2 is blank
    alice = new_identity(1, b"alice")
    group = create_group(alice)
    extra = [new_identity(1, f"x{i}".encode()) for i in range(3)]
    group.commit([add_proposal(i.key_package) for i in extra])
    group.merge_pending_commit()
    bob = new_identity(1, b"bob")
    proposals = [Proposal.of(Remove(1)), Proposal.of(Remove(2)), add_proposal(bob.key_package)]
    created = group.commit(proposals)
    group.merge_pending_commit()
    assert group.tree.leaf_node(2) is None and group.tree.n_leaves == 4  # type: ignore[arg-type]
    inv = Invite(alice, group, bob, created)
    rejected(inv, inv.forge(signer=2), ValidationError, RULE_SIGNER)


def test_wel05_signer_at_our_own_leaf_is_rejected() -> None:
    # signed by Bob himself, naming his own leaf: the signature verifies, but a joiner is
    # never the committer whose path it joins through (§12.4.3.1)
    inv = invite(force_path=True)
    welcome = forge_welcome(
        inv.welcome, inv.bob.keys, inv.bob.suite, inv.bob.signature_priv, signer=1
    )
    rejected(inv, welcome, ValidationError, RULE_SENDER)


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_wel06_group_info_signed_by_another_key_is_rejected(suite_id: int) -> None:
    inv = invite(suite_id)
    info, secrets = inv.open()
    bad = resign_group_info(inv.bob.suite, info, inv.bob.signature_priv)  # Bob is not leaf 0
    welcome = seal_welcome(inv.bob.suite, bad, secrets, inv.bob.key_package)
    rejected(inv, welcome, VerificationError, RULE_GROUP_INFO_SIGNATURE)


def test_wel06_signature_covers_the_ratchet_tree_extension() -> None:
    # Signed without the tree, the tree added afterwards: a verifier that strips extensions
    # before checking (OpenMLS PR #212) would accept it.
    inv = invite()
    info, secrets = inv.open()
    without = resign_group_info(inv.bob.suite, info, inv.signer_priv, extensions=())
    added = dataclasses.replace(without, extensions=info.extensions)
    welcome = seal_welcome(inv.bob.suite, added, secrets, inv.bob.key_package)
    rejected(inv, welcome, VerificationError, RULE_GROUP_INFO_SIGNATURE)


# --------------------------------------------------------------------------------------------
# WEL-07, WEL-08


def test_wel07_member_already_in_a_group_cannot_join_again() -> None:
    alice = GroupMember(b"alice")
    bob = GroupMember(b"bob")
    alice.create_group(b"g")
    _, welcome = alice.add_member(bob.generate_key_package())
    bob.join_group(welcome)
    # the same group_id again, from another creator
    carol = GroupMember(b"carol")
    carol.create_group(b"g")
    _, welcome2 = carol.add_member(bob.generate_key_package())
    assert bob.group is not None
    with unchanged(bob.group), pytest.raises(UsageError):
        bob.join_group(welcome2)
    assert bob.group.epoch == alice.epoch


def test_wel08_group_info_suite_differs_from_key_package_suite() -> None:
    inv = invite()
    rejected(inv, inv.forge(context_changes={"cipher_suite": 2}), ValidationError, RULE_SUITE)


def test_wel08_welcome_suite_differs_from_key_package_suite() -> None:
    # KP-05: the Welcome names suite 2 while our KeyPackage is suite 1 (same hash: the ref
    # still matches, so the suite check itself must fire)
    inv = invite()
    info, secrets = inv.open()
    welcome = seal_welcome(inv.bob.suite, info, secrets, inv.bob.key_package, cipher_suite=3)
    with pytest.raises(ValidationError) as err:
        join(inv.bob, MLSMessage.of(welcome))
    assert err.value.rule in (RULE_SUITE, RULE_NO_KEY_PACKAGE)
    welcome = seal_welcome(
        inv.bob.suite,
        info,
        secrets,
        inv.bob.key_package,
        cipher_suite=2,
        new_member=inv.bob.key_package.ref(inv.bob.suite),
    )
    rejected(inv, welcome, ValidationError, RULE_SUITE)


# --------------------------------------------------------------------------------------------
# WEL-09 (TREE-*), WEL-10


def test_wel09_tree_hash_mismatch_is_rejected() -> None:
    inv = invite()
    bad = inv.forge(context_changes={"tree_hash": os.urandom(32)})
    rejected(inv, bad, ValidationError, RULE_TREE_HASH)


def test_wel09_out_of_band_tree_goes_through_the_same_validator() -> None:
    # TREE-11: a tree with one member blanked fails alike in the extension and out of band
    config = GroupConfig(ratchet_tree_in_welcome=False)
    inv = invite(config=config, others=1)
    tree = inv.group.tree.copy()
    tree.set_leaf(LeafIndex(1), None)
    with pytest.raises(ValidationError) as err:
        Group.join_from_welcome(
            MLSMessage.of(inv.welcome), inv.bob.lookup, ratchet_tree=tree.encode()
        )
    assert err.value.rule == RULE_TREE_HASH
    rejected(inv, inv.forge(extensions=(tree.extension(),)), ValidationError, RULE_TREE_HASH)


def test_wel10_our_leaf_missing_from_the_tree_is_rejected() -> None:
    # A correct Welcome, sealed to a KeyPackage of Bob's that was never added
    inv = invite()
    info, secrets = inv.open()
    other = fresh_key_package(inv.bob)
    welcome = seal_welcome(other.suite, info, secrets, other.key_package)
    rejected(inv, welcome, ValidationError, RULE_OWN_LEAF, ident=other)


# --------------------------------------------------------------------------------------------
# WEL-11, WEL-16


def test_wel11_unsupported_group_context_extension_is_rejected() -> None:
    inv = invite()
    ext = (Extension(UNKNOWN_EXTENSION, b"x"),)
    rejected(
        inv, inv.forge(context_changes={"extensions": ext}), ValidationError, RULE_EXTENSION_SUPPORT
    )


@pytest.mark.parametrize("ext_type", [ExtensionType.RATCHET_TREE, ExtensionType.EXTERNAL_PUB])
def test_wel11_known_extension_not_allowed_in_group_context(ext_type: int) -> None:
    inv = invite()
    ext = (Extension(ext_type, b""),)
    rejected(
        inv, inv.forge(context_changes={"extensions": ext}), ValidationError, RULE_EXTENSION_SUPPORT
    )


def test_wel16_unknown_group_info_extension_is_ignored() -> None:
    inv = invite()
    info, _ = inv.open()
    extensions = (*info.extensions, Extension(UNKNOWN_EXTENSION, b"grease"), Extension(0x0A0A, b""))
    joined = join(inv.bob, MLSMessage.of(inv.forge(extensions=extensions)))
    assert joined.epoch_authenticator == inv.group.epoch_authenticator


def test_wel16_duplicate_group_info_extension_is_rejected() -> None:
    inv = invite()
    info, _ = inv.open()
    dup = Extension(UNKNOWN_EXTENSION, b"a")
    welcome = inv.forge(extensions=(*info.extensions, dup, dup))
    rejected(inv, welcome, ValidationError, RULE_GROUP_INFO_EXTENSIONS)


# --------------------------------------------------------------------------------------------
# WEL-12, WEL-13


def test_wel12_path_secret_not_matching_the_tree_is_rejected() -> None:
    inv = invite(force_path=True)
    _, secrets = inv.open()
    assert secrets.path_secret is not None
    welcome = inv.forge(secrets_changes={"path_secret": PathSecret(os.urandom(32))})
    rejected(inv, welcome, ValidationError, RULE_DERIVED_PUBLIC_KEY)


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_wel13_wrong_confirmation_tag_is_rejected(suite_id: int) -> None:
    inv = invite(suite_id)
    info, _ = inv.open()
    tag = bytes(b ^ 1 for b in info.confirmation_tag)
    rejected(inv, inv.forge(confirmation_tag=tag), ValidationError, RULE_CONFIRMATION_TAG)


def test_wel13_group_secrets_psks_differ_from_the_commit() -> None:
    # §8.4: the Welcome adds a PSK the Commit did not use; the joiner holds it, so the
    # GroupInfo opens (it is sealed with the PSK's welcome key) but the key schedule differs.
    psk_id, secret = b"shared", os.urandom(32)
    config = GroupConfig(external_psks={psk_id: secret})
    inv = invite()
    info, secrets = inv.open()
    psk = PreSharedKeyID.external(psk_id, os.urandom(32))
    psk_value = resolve_psks(
        inv.bob.suite, [psk], group_id=b"", resumption_psks={}, external_psks={psk_id: secret}
    )
    forged_secrets = dataclasses.replace(secrets, psks=(psk,))
    resigned = resign_group_info(inv.bob.suite, info, inv.signer_priv)  # the Commit's tag
    welcome = seal_welcome(
        inv.bob.suite, resigned, forged_secrets, inv.bob.key_package, psk_value=psk_value
    )
    rejected(inv, welcome, ValidationError, RULE_CONFIRMATION_TAG, config=config)


# --------------------------------------------------------------------------------------------
# WEL-14, WEL-15 (ReInit and branch Welcomes)


@dataclass
class Resumed:
    old_bob: Group
    bob: Identity
    welcome: Welcome
    signer_priv: bytes
    psk_value: bytes | None
    new_epoch_authenticator: bytes

    def forge(self, **kw: object) -> Welcome:
        return forge_welcome(
            self.welcome,
            self.bob.keys,
            self.bob.suite,
            self.signer_priv,
            psk_value=self.psk_value,
            **kw,  # type: ignore[arg-type]
        )

    def rejected(self, welcome: Welcome, rule: str) -> None:
        with unchanged(self.old_bob), pytest.raises(ValidationError) as info:
            join(self.bob, MLSMessage.of(welcome), resumed_from=self.old_bob)
        assert info.value.rule == rule
        joined = join(self.bob, MLSMessage.of(self.welcome), resumed_from=self.old_bob)
        assert joined.epoch_authenticator == self.new_epoch_authenticator


def _resumption_psk_value(welcome: Welcome, bob: Identity, old: Group) -> bytes | None:
    # GroupSecrets opens without the PSK (it is HPKE to the init key)
    secrets = open_group_secrets(welcome, bob.keys, bob.suite)
    other = {(old.group_id, e): v for e, v in old.state.resumption_psks.items()}
    return resolve_psks(
        bob.suite,
        secrets.psks,
        group_id=b"",
        resumption_psks={},
        external_psks={},
        other_groups=other,
    )


def _two_member_group() -> tuple[Identity, Group, Identity, Group]:
    alice = new_identity(1, b"alice")
    a = create_group(alice, b"old")
    bob = new_identity(1, b"bob")
    created = a.commit([add_proposal(bob.key_package)])
    a.merge_pending_commit()
    assert created.welcome is not None
    b = join(bob, MLSMessage.of(created.welcome))
    return alice, a, bob, b


def reinit() -> Resumed:
    alice, a, bob, b = _two_member_group()
    message = a.propose_reinit(ReInit(b"new", 1, 1, ()))
    b.process(message)
    staged = b.process(a.commit().message.encode())
    a.merge_pending_commit()
    b.merge(staged)  # type: ignore[arg-type]
    alice2, bob2 = fresh_key_package(alice), fresh_key_package(bob)
    new, created = a.reinit_successor(
        alice2.key_package, alice2.keys.encryption_priv, alice2.signature_priv, [bob2.key_package]
    )
    assert created.welcome is not None
    psk = _resumption_psk_value(created.welcome, bob2, b)
    return Resumed(b, bob2, created.welcome, alice2.signature_priv, psk, new.epoch_authenticator)


def branch(extra: Identity | None = None) -> Resumed:
    alice, a, bob, b = _two_member_group()
    alice2, bob2 = fresh_key_package(alice), fresh_key_package(bob)
    kps = [bob2.key_package] + ([] if extra is None else [extra.key_package])
    new, created = a.branch(
        b"branch", alice2.key_package, alice2.keys.encryption_priv, alice2.signature_priv, kps
    )
    assert created.welcome is not None
    psk = _resumption_psk_value(created.welcome, bob2, b)
    return Resumed(b, bob2, created.welcome, alice2.signature_priv, psk, new.epoch_authenticator)


def test_wel14_reinit_welcome_joins() -> None:
    r = reinit()
    joined = join(r.bob, MLSMessage.of(r.forge()), resumed_from=r.old_bob)
    assert joined.epoch == 1 and joined.group_id == b"new"


def test_wel14_reinit_welcome_at_epoch_2_is_rejected() -> None:
    r = reinit()
    r.rejected(r.forge(context_changes={"epoch": 2}), RULE_REINIT)


def test_wel14_reinit_welcome_with_other_group_id_is_rejected() -> None:
    r = reinit()
    r.rejected(r.forge(context_changes={"group_id": b"not-new"}), RULE_REINIT)


def test_wel14_reinit_welcome_with_other_extensions_is_rejected() -> None:
    r = reinit()
    # an empty external_senders list: allowed in the GroupContext, supported by default
    ext = (Extension(ExtensionType.EXTERNAL_SENDERS, b"\x00"),)
    r.rejected(r.forge(context_changes={"extensions": ext}), RULE_REINIT)


def test_wel14_reinit_welcome_without_the_old_group_is_rejected() -> None:
    r = reinit()
    # without the old group the resumption PSK is not held
    with pytest.raises(ValidationError) as info:
        join(r.bob, MLSMessage.of(r.welcome))
    assert info.value.rule == RULE_PSK_UNKNOWN


def test_wel15_branch_welcome_joins() -> None:
    r = branch()
    joined = join(r.bob, MLSMessage.of(r.forge()), resumed_from=r.old_bob)
    assert joined.epoch == 1 and joined.group_id == b"branch"


def test_wel15_branch_welcome_at_epoch_2_is_rejected() -> None:
    r = branch()
    r.rejected(r.forge(context_changes={"epoch": 2}), RULE_BRANCH)


def test_wel15_branch_with_a_member_not_in_the_old_group_is_rejected() -> None:
    r = branch(extra=new_identity(1, b"mallory"))
    with unchanged(r.old_bob), pytest.raises(ValidationError) as info:
        join(r.bob, MLSMessage.of(r.welcome), resumed_from=r.old_bob)
    assert info.value.rule == RULE_BRANCH
