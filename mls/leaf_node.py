"""Leaf nodes: a member's keys, credential and capabilities (RFC 9420 §7.2).

A :class:`LeafNode` is signed by its owner with the label ``"LeafNodeTBS"`` over a
:class:`LeafNodeTBS`. For leaves sent in an Update or a Commit's UpdatePath the signed content
also names the group and the leaf's index, so a leaf cannot be replayed into another group or
position::

    LeafNode fields (minus signature) ──┐
    key_package source: nothing more    ├─> LeafNodeTBS ─> SignWithLabel(., "LeafNodeTBS", .)
    update/commit: group_id, leaf_index ┘

The checks here are the ones a leaf supports on its own (RFC 9420 §7.2, §7.3): its credential
type and non-default extensions must appear in its own capabilities, its extension types must be
unique, and its lifetime must cover the current time. Checks against a group (required
capabilities, key uniqueness, the Authentication Service) belong to the group logic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any

from .codec import U16, U32, U64, Empty, Enum, Opaque, Select, Struct, Vector
from .credentials import Credential, CredentialType, x509_signature_key
from .crypto.ciphersuite import Suite
from .crypto.labels import sign_with_label, verify_with_label
from .errors import UsageError, ValidationError
from .extensions import (
    DEFAULT_EXTENSION_TYPES,
    Extension,
    ExtensionSite,
    duplicate_extension_type,
    misplaced_extension_type,
)

LEAF_NODE_TBS_LABEL = b"LeafNodeTBS"  # RFC 9420 §7.2


class LeafNodeSource(IntEnum):
    """Why a leaf node was made (RFC 9420 §7.2). A closed enum."""

    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


SOURCE = Enum(LeafNodeSource, 1)


@dataclass(frozen=True)
class Capabilities(Struct):
    """What a client supports (RFC 9420 §7.2). Every list holds plain integers, since unknown
    and GREASE values must be carried (§13.5)."""

    versions: Annotated[tuple[int, ...], Vector(U16)]
    cipher_suites: Annotated[tuple[int, ...], Vector(U16)]
    extensions: Annotated[tuple[int, ...], Vector(U16)]
    proposals: Annotated[tuple[int, ...], Vector(U16)]
    credentials: Annotated[tuple[int, ...], Vector(U16)]


@dataclass(frozen=True)
class Lifetime(Struct):
    """The validity window of a KeyPackage's leaf, in seconds since the Unix epoch, both ends
    included (RFC 9420 §7.2)."""

    not_before: Annotated[int, U64]
    not_after: Annotated[int, U64]

    def covers(self, now: int) -> bool:
        return self.not_before <= now <= self.not_after


def _by_source(key_package: Any, update: Any, commit: Any) -> Select:
    """A ``select`` on ``leaf_node_source`` (RFC 9420 §7.2)."""
    return Select(
        "leaf_node_source",
        {
            LeafNodeSource.KEY_PACKAGE: key_package,
            LeafNodeSource.UPDATE: update,
            LeafNodeSource.COMMIT: commit,
        },
    )


_LIFETIME = _by_source(Lifetime, Empty, Empty)
_PARENT_HASH = _by_source(Empty, Empty, Opaque)
_GROUP_ID = _by_source(Empty, Opaque, Opaque)  # LeafNodeTBS only
_LEAF_INDEX = _by_source(Empty, U32, U32)  # LeafNodeTBS only


@dataclass(frozen=True)
class LeafNode(Struct):
    """RFC 9420 §7.2. ``lifetime`` is set exactly when ``leaf_node_source`` is
    ``key_package``, ``parent_hash`` exactly when it is ``commit``."""

    encryption_key: Annotated[bytes, Opaque]
    signature_key: Annotated[bytes, Opaque]
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: Annotated[LeafNodeSource, SOURCE]
    lifetime: Annotated[Lifetime | None, _LIFETIME] = field(default=None, kw_only=True)
    parent_hash: Annotated[bytes | None, _PARENT_HASH] = field(default=None, kw_only=True)
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    signature: Annotated[bytes, Opaque]

    def tbs(self, *, group_id: bytes | None = None, leaf_index: int | None = None) -> LeafNodeTBS:
        """The signed content. ``group_id`` and ``leaf_index`` are required for ``update`` and
        ``commit`` leaves and ignored for ``key_package`` ones.

        Raises:
            UsageError: an update/commit leaf without ``group_id`` or ``leaf_index``.
        """
        if self.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
            group_id = leaf_index = None
        elif group_id is None or leaf_index is None:
            raise UsageError("an update or commit leaf is signed with its group_id and leaf_index")
        return LeafNodeTBS(
            encryption_key=self.encryption_key,
            signature_key=self.signature_key,
            credential=self.credential,
            capabilities=self.capabilities,
            leaf_node_source=self.leaf_node_source,
            lifetime=self.lifetime,
            parent_hash=self.parent_hash,
            extensions=self.extensions,
            group_id=group_id,
            leaf_index=leaf_index,
        )

    def signed(
        self,
        suite: Suite,
        signature_priv: bytes,
        *,
        group_id: bytes | None = None,
        leaf_index: int | None = None,
    ) -> LeafNode:
        """A copy of this leaf carrying a fresh signature by ``signature_priv``."""
        content = self.tbs(group_id=group_id, leaf_index=leaf_index).encode()
        signature = sign_with_label(suite, signature_priv, LEAF_NODE_TBS_LABEL, content)
        return dataclasses.replace(self, signature=signature)

    def verify_signature(
        self, suite: Suite, *, group_id: bytes | None = None, leaf_index: int | None = None
    ) -> None:
        """Checks the signature with the leaf's own ``signature_key`` (RFC 9420 §7.3).

        Raises:
            VerificationError: the signature does not verify (for update/commit leaves this
                includes a leaf signed for another group or another index).
            UsageError: an update/commit leaf without ``group_id`` or ``leaf_index``.
        """
        content = self.tbs(group_id=group_id, leaf_index=leaf_index).encode()
        verify_with_label(suite, self.signature_key, LEAF_NODE_TBS_LABEL, content, self.signature)


@dataclass(frozen=True)
class LeafNodeTBS(Struct):
    """The content a leaf's signature covers (RFC 9420 §7.2). ``group_id`` and ``leaf_index``
    are set exactly for ``update`` and ``commit`` leaves."""

    encryption_key: Annotated[bytes, Opaque]
    signature_key: Annotated[bytes, Opaque]
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: Annotated[LeafNodeSource, SOURCE]
    lifetime: Annotated[Lifetime | None, _LIFETIME] = field(default=None, kw_only=True)
    parent_hash: Annotated[bytes | None, _PARENT_HASH] = field(default=None, kw_only=True)
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    group_id: Annotated[bytes | None, _GROUP_ID] = field(default=None, kw_only=True)
    leaf_index: Annotated[int | None, _LEAF_INDEX] = field(default=None, kw_only=True)


# --------------------------------------------------------------------------------------------
# Checks a leaf supports on its own (RFC 9420 §7.2, §7.3)


def check_own_capabilities(leaf: LeafNode) -> None:
    """The leaf lists its own credential type and every non-default extension type it carries
    in its capabilities, carries no extension type twice, and carries no known extension type
    the registry does not allow in a LeafNode.

    Raises:
        ValidationError: rule ``"§7.2/credential-in-capabilities"``,
            ``"§7.2/extension-in-capabilities"``, ``"§13.4/duplicate-extension"`` or
            ``"§17.3/leaf-extension-type"``.
    """
    # RFC 9420 §7.2: the credential's own type must be among the supported credentials
    if leaf.credential.credential_type not in leaf.capabilities.credentials:
        raise ValidationError(
            "§7.2/credential-in-capabilities",
            f"credential type {leaf.credential.credential_type} not in the leaf's capabilities",
        )
    # RFC 9420 §7.2: each non-default extension in the leaf must be listed in its capabilities
    for ext in leaf.extensions:
        if (
            ext.extension_type not in DEFAULT_EXTENSION_TYPES
            and ext.extension_type not in leaf.capabilities.extensions
        ):
            raise ValidationError(
                "§7.2/extension-in-capabilities",
                f"extension type {ext.extension_type} not in the leaf's capabilities",
            )
    # RFC 9420 §13.4: an extension type occurs at most once per list
    dup = duplicate_extension_type(leaf.extensions)
    if dup is not None:
        raise ValidationError("§13.4/duplicate-extension", f"leaf extension type {dup} repeated")
    # RFC 9420 §17.3 (VALIDATION.md LN-11): of the known types only application_id may appear
    misplaced = misplaced_extension_type(leaf.extensions, ExtensionSite.LEAF_NODE)
    if misplaced is not None:
        raise ValidationError(
            "§17.3/leaf-extension-type", f"extension type {misplaced} is not allowed in a LeafNode"
        )


def check_credential_key(leaf: LeafNode) -> None:
    """An X.509 credential's end-entity certificate holds the leaf's ``signature_key``
    (RFC 9420 §5.3; VALIDATION.md CRD-03). Basic and unknown credential types pass: whether
    their identity is acceptable is the Authentication Service's call.

    Raises:
        ValidationError: rule ``"§5.3/x509-signature-key"``: no certificate, an end-entity
            certificate that does not parse, or one whose public key differs from the leaf's.
    """
    if leaf.credential.credential_type != CredentialType.X509:
        return
    chain = leaf.credential.certificates or ()
    if not chain:
        raise ValidationError("§5.3/x509-signature-key", "X.509 credential without certificates")
    key = x509_signature_key(chain[0].cert_data)
    if key is None or key != leaf.signature_key:
        raise ValidationError(
            "§5.3/x509-signature-key",
            "the end-entity certificate's public key is not the leaf's signature_key",
        )


def check_lifetime(leaf: LeafNode, now: int) -> None:
    """A ``key_package`` leaf's lifetime covers ``now`` (seconds since the Unix epoch).

    Raises:
        ValidationError: rule ``"§7.3/lifetime"``.
    """
    if leaf.lifetime is not None and not leaf.lifetime.covers(now):
        # RFC 9420 §7.3: the current time must lie within the leaf's lifetime
        raise ValidationError("§7.3/lifetime", "the current time is outside the leaf's lifetime")


def check_lifetime_span(leaf: LeafNode, max_lifetime: int) -> None:
    """A ``key_package`` leaf's lifetime is well-ordered and spans at most ``max_lifetime``
    seconds, the application's maximum (RFC 9420 §7.2; VALIDATION.md LN-07).

    Raises:
        ValidationError: rule ``"§7.2/max-lifetime"``.
    """
    lifetime = leaf.lifetime
    if lifetime is not None and not 0 <= lifetime.not_after - lifetime.not_before <= max_lifetime:
        raise ValidationError(
            "§7.2/max-lifetime",
            f"lifetime of {lifetime.not_after - lifetime.not_before} s, allowed 0..{max_lifetime}",
        )
