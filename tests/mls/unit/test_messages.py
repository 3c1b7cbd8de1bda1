from __future__ import annotations

import dataclasses

import pytest

from mls.errors import DecodeError, VerificationError
from mls.extensions import Extension
from mls.group_context import GroupContext, ProtocolVersion
from mls.messages import (
    Add,
    Commit,
    EncryptedGroupSecrets,
    ExternalInit,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    PathSecret,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    ProposalOrRefType,
    ProposalType,
    ReInit,
    Remove,
    Update,
    Welcome,
)
from mls.psk_id import PreSharedKeyID
from mls.treekem import HPKECiphertext

from ._build import key_package, keys, leaf_node

K = keys()
CONTEXT = GroupContext(ProtocolVersion.MLS10, 1, b"g", 0, b"t", b"c", ())


def test_remove_proposal_bytes() -> None:
    proposal = Proposal.of(Remove(5))
    assert proposal.encode() == bytes.fromhex("000300000005")
    decoded = Proposal.decode(proposal.encode())
    assert decoded == proposal
    assert decoded.remove == Remove(5)
    assert decoded.body == Remove(5)
    assert decoded.add is None


@pytest.mark.parametrize(
    ("body", "proposal_type"),
    [
        (Add(key_package(K)), ProposalType.ADD),
        (Update(leaf_node(K)), ProposalType.UPDATE),
        (Remove(1), ProposalType.REMOVE),
        (PreSharedKey(PreSharedKeyID.external(b"id", b"n")), ProposalType.PSK),
        (ReInit(b"g2", ProtocolVersion.MLS10, 3, ()), ProposalType.REINIT),
        (ExternalInit(b"kem"), ProposalType.EXTERNAL_INIT),
        (GroupContextExtensions((Extension(3, b""),)), ProposalType.GROUP_CONTEXT_EXTENSIONS),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_proposal_variant_roundtrips(body: object, proposal_type: ProposalType) -> None:
    proposal = Proposal.of(body)  # type: ignore[arg-type]
    encoded = proposal.encode()
    assert encoded[:2] == proposal_type.to_bytes(2, "big")
    assert encoded[2:] == body.encode()  # type: ignore[attr-defined]
    decoded = Proposal.decode(encoded)
    assert decoded.proposal_type == proposal_type
    assert decoded.body == body


@pytest.mark.parametrize("proposal_type", [0, 8, 0x0A0A, 0xFFFF])
def test_unknown_proposal_type_does_not_decode(proposal_type: int) -> None:
    with pytest.raises(DecodeError):
        Proposal.decode(proposal_type.to_bytes(2, "big") + b"\x00\x00\x00\x00")


def test_reinit_with_unknown_version_does_not_decode() -> None:
    encoded = ReInit(b"", ProtocolVersion.MLS10, 1, ()).encode()
    with pytest.raises(DecodeError):
        ReInit.decode(encoded[:1] + b"\x00\x02" + encoded[3:])


def test_proposal_or_ref_bytes() -> None:
    by_ref = ProposalOrRef.by_reference(b"\xab" * 32)
    assert by_ref.encode() == b"\x02\x20" + b"\xab" * 32
    by_value = ProposalOrRef.by_value(Proposal.of(Remove(2)))
    assert by_value.encode() == bytes.fromhex("01000300000002")
    assert ProposalOrRef.decode(by_ref.encode()).type == ProposalOrRefType.REFERENCE


@pytest.mark.parametrize("tag", [0, 3, 255])
def test_dec06_unknown_proposal_or_ref_type_does_not_decode(tag: int) -> None:
    with pytest.raises(DecodeError):
        ProposalOrRef.decode(bytes([tag]) + b"\x00")


def test_commit_bytes() -> None:
    commit = Commit((ProposalOrRef.by_reference(b"r"),), None)
    assert commit.encode() == bytes.fromhex("0302017200")
    assert Commit.decode(commit.encode()) == commit


def test_dec03_optional_presence_octet_two_is_rejected() -> None:
    with pytest.raises(DecodeError):
        Commit.decode(bytes.fromhex("0002"))


def test_group_info_signature_verifies_and_detects_tampering() -> None:
    info = GroupInfo(CONTEXT, (), b"tag", 0, b"").signed(K.suite, K.signature_priv)
    info.verify_signature(K.suite, K.signature_pub)
    assert GroupInfo.decode(info.encode()) == info
    assert info.tbs().encode() == info.encode()[: -len(info.signature) - 2]
    with pytest.raises(VerificationError):
        dataclasses.replace(info, signer=1).verify_signature(K.suite, K.signature_pub)


def test_group_secrets_hide_secrets_from_repr() -> None:
    secrets = GroupSecrets(b"joiner-secret", PathSecret(b"path-secret"), ())
    assert "joiner-secret" not in repr(secrets)
    assert "path-secret" not in repr(secrets)
    assert secrets.encode() == b"\x0djoiner-secret\x01\x0bpath-secret\x00"
    assert GroupSecrets.decode(secrets.encode()) == secrets


def test_welcome_bytes() -> None:
    welcome = Welcome(1, (EncryptedGroupSecrets(b"ref", HPKECiphertext(b"k", b"c")),), b"gi")
    assert welcome.encode() == bytes.fromhex("00010803726566016b0163026769")
    assert Welcome.decode(welcome.encode()) == welcome
