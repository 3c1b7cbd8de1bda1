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
from typing import Annotated

from .codec import U16, U32, U64, Empty, Enum, Opaque, Select, Struct, Vector
from .credentials import Credential
from .crypto.ciphersuite import Suite
from .crypto.labels import sign_with_label, verify_with_label
from .errors import UsageError, ValidationError
from .extensions import DEFAULT_EXTENSION_TYPES, Extension, duplicate_extension_type

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


@dataclass(frozen=True)
class LeafNode(Struct):
    """RFC 9420 §7.2. ``lifetime`` is set exactly when ``leaf_node_source`` is
    ``key_package``, ``parent_hash`` exactly when it is ``commit``."""

    encryption_key: Annotated[bytes, Opaque]
    signature_key: Annotated[bytes, Opaque]
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: Annotated[LeafNodeSource, SOURCE]
    lifetime: Annotated[
        Lifetime | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Lifetime,
                LeafNodeSource.UPDATE: Empty,
                LeafNodeSource.COMMIT: Empty,
            },
        ),
    ] = field(default=None, kw_only=True)
    parent_hash: Annotated[
        bytes | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Empty,
                LeafNodeSource.UPDATE: Empty,
                LeafNodeSource.COMMIT: Opaque,
            },
        ),
    ] = field(default=None, kw_only=True)
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
    lifetime: Annotated[
        Lifetime | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Lifetime,
                LeafNodeSource.UPDATE: Empty,
                LeafNodeSource.COMMIT: Empty,
            },
        ),
    ] = field(default=None, kw_only=True)
    parent_hash: Annotated[
        bytes | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Empty,
                LeafNodeSource.UPDATE: Empty,
                LeafNodeSource.COMMIT: Opaque,
            },
        ),
    ] = field(default=None, kw_only=True)
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    group_id: Annotated[
        bytes | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Empty,
                LeafNodeSource.UPDATE: Opaque,
                LeafNodeSource.COMMIT: Opaque,
            },
        ),
    ] = field(default=None, kw_only=True)
    leaf_index: Annotated[
        int | None,
        Select(
            "leaf_node_source",
            {
                LeafNodeSource.KEY_PACKAGE: Empty,
                LeafNodeSource.UPDATE: U32,
                LeafNodeSource.COMMIT: U32,
            },
        ),
    ] = field(default=None, kw_only=True)


# --------------------------------------------------------------------------------------------
# Checks a leaf supports on its own (RFC 9420 §7.2, §7.3)


def check_own_capabilities(leaf: LeafNode) -> None:
    """The leaf lists its own credential type and every non-default extension type it carries
    in its capabilities, and carries no extension type twice.

    Raises:
        ValidationError: rule ``"§7.2/credential-in-capabilities"``,
            ``"§7.2/extension-in-capabilities"`` or ``"§13.4/duplicate-extension"``.
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


def check_lifetime(leaf: LeafNode, now: int) -> None:
    """A ``key_package`` leaf's lifetime covers ``now`` (seconds since the Unix epoch).

    Raises:
        ValidationError: rule ``"§7.3/lifetime"``.
    """
    if leaf.lifetime is not None and not leaf.lifetime.covers(now):
        # RFC 9420 §7.3: the current time must lie within the leaf's lifetime
        raise ValidationError("§7.3/lifetime", "the current time is outside the leaf's lifetime")
