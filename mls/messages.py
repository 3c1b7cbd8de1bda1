"""Proposals, Commits, GroupInfo and Welcome: the wire structs of group evolution
(RFC 9420 §12.1, §12.4, §12.4.3).

Declarations only, plus the GroupInfo signature helpers. They sit below ``framing`` because
``FramedContent`` carries proposals and commits.

Proposal types form an open registry (§17.4): ``proposal_type`` is a plain integer, but a
:class:`Proposal` of an unknown type cannot be decoded, since its body has no length prefix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any

from .codec import U16, U32, Codec, Empty, Enum, Opaque, Optional, Select, Struct, Vector
from .crypto.ciphersuite import Suite
from .crypto.labels import sign_with_label, verify_with_label
from .errors import UsageError
from .extensions import Extension
from .group_context import VERSION, GroupContext, ProtocolVersion
from .key_package import KeyPackage
from .leaf_node import LeafNode
from .psk_id import PreSharedKeyID
from .treekem import HPKECiphertext, UpdatePath

GROUP_INFO_TBS_LABEL = b"GroupInfoTBS"  # RFC 9420 §12.4.3


class ProposalType(IntEnum):
    """The proposal types RFC 9420 defines (§12.1, §17.4). Fields hold plain integers."""

    ADD = 1
    UPDATE = 2
    REMOVE = 3
    PSK = 4
    REINIT = 5
    EXTERNAL_INIT = 6
    GROUP_CONTEXT_EXTENSIONS = 7


@dataclass(frozen=True)
class Add(Struct):
    """Adds the owner of ``key_package`` (RFC 9420 §12.1.1)."""

    key_package: KeyPackage


@dataclass(frozen=True)
class Update(Struct):
    """Replaces the sender's leaf (RFC 9420 §12.1.2)."""

    leaf_node: LeafNode


@dataclass(frozen=True)
class Remove(Struct):
    """Removes the member at leaf index ``removed`` (RFC 9420 §12.1.3)."""

    removed: Annotated[int, U32]


@dataclass(frozen=True)
class PreSharedKey(Struct):
    """Injects a PSK into the next epoch's key schedule (RFC 9420 §12.1.4)."""

    psk: PreSharedKeyID


@dataclass(frozen=True)
class ReInit(Struct):
    """Closes the group in favour of a new one with these parameters (RFC 9420 §12.1.5)."""

    group_id: Annotated[bytes, Opaque]
    version: Annotated[ProtocolVersion, VERSION]
    cipher_suite: Annotated[int, U16]
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]


@dataclass(frozen=True)
class ExternalInit(Struct):
    """The KEM output an external joiner's init secret comes from (RFC 9420 §12.1.6)."""

    kem_output: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class GroupContextExtensions(Struct):
    """Replaces the group context's extensions (RFC 9420 §12.1.7)."""

    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]


def _variant(tags: type[IntEnum], tag_field: str, chosen: IntEnum, codec: Any) -> Select:
    """A ``Select`` under which only ``chosen`` carries ``codec``; other tags carry nothing."""
    variants: dict[Any, Codec[Any] | type[Struct]] = {t: Empty for t in tags}
    variants[chosen] = codec
    return Select(tag_field, variants)


def _proposal(chosen: ProposalType, codec: Any) -> Select:
    return _variant(ProposalType, "proposal_type", chosen, codec)


@dataclass(frozen=True)
class Proposal(Struct):
    """A proposed change to the group (RFC 9420 §12.1). Exactly the field named by
    ``proposal_type`` is set; build one with :meth:`of`."""

    proposal_type: Annotated[int, U16]
    add: Annotated[Add | None, _proposal(ProposalType.ADD, Add)] = field(default=None, kw_only=True)
    update: Annotated[Update | None, _proposal(ProposalType.UPDATE, Update)] = field(
        default=None, kw_only=True
    )
    remove: Annotated[Remove | None, _proposal(ProposalType.REMOVE, Remove)] = field(
        default=None, kw_only=True
    )
    psk: Annotated[PreSharedKey | None, _proposal(ProposalType.PSK, PreSharedKey)] = field(
        default=None, kw_only=True
    )
    reinit: Annotated[ReInit | None, _proposal(ProposalType.REINIT, ReInit)] = field(
        default=None, kw_only=True
    )
    external_init: Annotated[
        ExternalInit | None, _proposal(ProposalType.EXTERNAL_INIT, ExternalInit)
    ] = field(default=None, kw_only=True)
    group_context_extensions: Annotated[
        GroupContextExtensions | None,
        _proposal(ProposalType.GROUP_CONTEXT_EXTENSIONS, GroupContextExtensions),
    ] = field(default=None, kw_only=True)

    @classmethod
    def of(
        cls,
        body: Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions,
    ) -> Proposal:
        """The proposal carrying ``body``, with the matching type."""
        proposal_type, name = _PROPOSAL_OF[type(body)]
        fields: dict[str, Any] = {name: body}
        return cls(proposal_type, **fields)

    @property
    def body(self) -> Struct:
        """The variant struct this proposal carries."""
        name = _PROPOSAL_FIELD.get(self.proposal_type)
        value: Struct | None = None if name is None else getattr(self, name)
        if value is None:
            raise UsageError(f"Proposal of type {self.proposal_type} has no body")
        return value


_PROPOSAL_BODIES: dict[ProposalType, tuple[str, type[Struct]]] = {
    ProposalType.ADD: ("add", Add),
    ProposalType.UPDATE: ("update", Update),
    ProposalType.REMOVE: ("remove", Remove),
    ProposalType.PSK: ("psk", PreSharedKey),
    ProposalType.REINIT: ("reinit", ReInit),
    ProposalType.EXTERNAL_INIT: ("external_init", ExternalInit),
    ProposalType.GROUP_CONTEXT_EXTENSIONS: ("group_context_extensions", GroupContextExtensions),
}
_PROPOSAL_FIELD: dict[int, str] = {t: name for t, (name, _) in _PROPOSAL_BODIES.items()}
_PROPOSAL_OF: dict[type[Struct], tuple[ProposalType, str]] = {
    cls: (t, name) for t, (name, cls) in _PROPOSAL_BODIES.items()
}


class ProposalOrRefType(IntEnum):
    """How a Commit names a proposal (RFC 9420 §12.4). A closed enum."""

    PROPOSAL = 1
    REFERENCE = 2


@dataclass(frozen=True)
class ProposalOrRef(Struct):
    """A proposal carried in a Commit by value or by its ProposalRef (RFC 9420 §12.4)."""

    type: Annotated[ProposalOrRefType, Enum(ProposalOrRefType, 1)]
    proposal: Annotated[
        Proposal | None,
        Select("type", {ProposalOrRefType.PROPOSAL: Proposal, ProposalOrRefType.REFERENCE: Empty}),
    ] = field(default=None, kw_only=True)
    reference: Annotated[
        bytes | None,
        Select("type", {ProposalOrRefType.PROPOSAL: Empty, ProposalOrRefType.REFERENCE: Opaque}),
    ] = field(default=None, kw_only=True)

    @classmethod
    def by_value(cls, proposal: Proposal) -> ProposalOrRef:
        return cls(ProposalOrRefType.PROPOSAL, proposal=proposal)

    @classmethod
    def by_reference(cls, reference: bytes) -> ProposalOrRef:
        return cls(ProposalOrRefType.REFERENCE, reference=reference)


@dataclass(frozen=True)
class Commit(Struct):
    """Applies proposals and, with ``path``, refreshes the committer's path (RFC 9420 §12.4)."""

    proposals: Annotated[tuple[ProposalOrRef, ...], Vector(ProposalOrRef)]
    path: Annotated[UpdatePath | None, Optional(UpdatePath)]


# --------------------------------------------------------------------------------------------
# Joining: GroupInfo and Welcome (RFC 9420 §12.4.3)


@dataclass(frozen=True)
class GroupInfoTBS(Struct):
    """The content a GroupInfo's signature covers (RFC 9420 §12.4.3)."""

    group_context: GroupContext
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    confirmation_tag: Annotated[bytes, Opaque]
    signer: Annotated[int, U32]


@dataclass(frozen=True)
class GroupInfo(Struct):
    """What a joiner needs to know about the group, signed by the member at leaf ``signer``
    (RFC 9420 §12.4.3)."""

    group_context: GroupContext
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    confirmation_tag: Annotated[bytes, Opaque]
    signer: Annotated[int, U32]
    signature: Annotated[bytes, Opaque]

    def tbs(self) -> GroupInfoTBS:
        return GroupInfoTBS(self.group_context, self.extensions, self.confirmation_tag, self.signer)

    def signed(self, suite: Suite, signature_priv: bytes) -> GroupInfo:
        """A copy carrying a fresh signature by ``signature_priv`` (the signer's key)."""
        signature = sign_with_label(
            suite, signature_priv, GROUP_INFO_TBS_LABEL, self.tbs().encode()
        )
        return dataclasses.replace(self, signature=signature)

    def verify_signature(self, suite: Suite, signature_key: bytes) -> None:
        """Checks the signature with ``signature_key``, the key of leaf ``signer``
        (RFC 9420 §12.4.3.1).

        Raises:
            VerificationError: the signature does not verify.
        """
        verify_with_label(
            suite, signature_key, GROUP_INFO_TBS_LABEL, self.tbs().encode(), self.signature
        )


@dataclass(frozen=True)
class PathSecret(Struct):
    """The path secret a joiner shares with the committer (RFC 9420 §12.4.3)."""

    path_secret: Annotated[bytes, Opaque] = field(repr=False)


@dataclass(frozen=True)
class GroupSecrets(Struct):
    """The secrets a Welcome carries to one new member (RFC 9420 §12.4.3)."""

    joiner_secret: Annotated[bytes, Opaque] = field(repr=False)
    path_secret: Annotated[PathSecret | None, Optional(PathSecret)] = field(repr=False)
    psks: Annotated[tuple[PreSharedKeyID, ...], Vector(PreSharedKeyID)]


@dataclass(frozen=True)
class EncryptedGroupSecrets(Struct):
    """GroupSecrets encrypted to the init key of KeyPackage ``new_member`` (a KeyPackageRef)
    (RFC 9420 §12.4.3)."""

    new_member: Annotated[bytes, Opaque]
    encrypted_group_secrets: HPKECiphertext


@dataclass(frozen=True)
class Welcome(Struct):
    """Invites new members: per-member secrets and the encrypted GroupInfo (RFC 9420 §12.4.3)."""

    cipher_suite: Annotated[int, U16]
    secrets: Annotated[tuple[EncryptedGroupSecrets, ...], Vector(EncryptedGroupSecrets)]
    encrypted_group_info: Annotated[bytes, Opaque]
