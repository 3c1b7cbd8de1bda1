"""DEC-08: GREASE values (RFC 9420 §13.5) take the ordinary path for unknown values.

A GREASE value is never special-cased: where the RFC carries unknown values (extension types,
capability lists) it is kept and re-encoded byte for byte; where an unknown value leaves the
body's length unknowable (proposal and credential types), decoding refuses it like any other
unknown value.
"""

from __future__ import annotations

import pytest

from mls.credentials import Credential
from mls.errors import DecodeError
from mls.extensions import Extension
from mls.group_context import GroupContext, ProtocolVersion
from mls.key_package import validate_key_package
from mls.messages import GroupContextExtensions, Proposal, ProposalType

from ._build import NOW, capabilities, key_package, keys, leaf_node

GREASE = [0x0A0A, 0x1A1A, 0x2A2A, 0xEAEA]  # RFC 9420 §13.5: 0x_A_A values


@pytest.mark.parametrize("value", GREASE)
def test_grease_proposal_type_is_an_unknown_proposal(value: int) -> None:
    body = value.to_bytes(2, "big") + b"\x00"
    with pytest.raises(DecodeError):
        Proposal.decode(body)


@pytest.mark.parametrize("value", GREASE)
def test_grease_credential_type_is_an_unknown_credential(value: int) -> None:
    with pytest.raises(DecodeError):
        Credential.decode(value.to_bytes(2, "big") + b"\x01x")


@pytest.mark.parametrize("value", GREASE)
def test_grease_group_context_extension_is_carried(value: int) -> None:
    context = GroupContext(
        version=ProtocolVersion.MLS10,
        cipher_suite=1,
        group_id=b"group",
        epoch=3,
        tree_hash=b"\x11" * 32,
        confirmed_transcript_hash=b"\x22" * 32,
        extensions=(Extension(value, b"\x01\x02"),),
    )
    encoded = context.encode()
    decoded = GroupContext.decode(encoded)
    assert decoded.extensions == (Extension(value, b"\x01\x02"),)
    assert decoded.encode() == encoded


@pytest.mark.parametrize("value", GREASE)
def test_grease_extension_in_group_context_extensions_proposal_is_carried(value: int) -> None:
    proposal = Proposal(
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
        group_context_extensions=GroupContextExtensions((Extension(value, b""),)),
    )
    encoded = proposal.encode()
    assert encoded[:2] == int(ProposalType.GROUP_CONTEXT_EXTENSIONS).to_bytes(2, "big")
    decoded = Proposal.decode(encoded)
    assert decoded == proposal
    assert decoded.encode() == encoded


def test_grease_values_in_capabilities_are_accepted() -> None:
    k = keys()
    caps = capabilities(
        extensions=(0x0A0A,),
        proposals=(0x1A1A,),
        credentials=(1, 0x2A2A),
        cipher_suites=(1, 0x3A3A),
    )
    kp = key_package(k, leaf=leaf_node(k, capabilities=caps))
    validate_key_package(kp, suite=k.suite, now=NOW)
