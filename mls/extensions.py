"""Extensions and the extension types RFC 9420 defines (RFC 9420 §13, §17.3).

An :class:`Extension` is a type number and opaque data. Extension types form an open registry:
unknown types are carried as plain integers and ignored where the RFC says so (§13). For the
types this package understands, the data has a declared encoding:

=====================  ==================================  ======================
type                   data                                declared here as
=====================  ==================================  ======================
application_id (1)     ``opaque application_id<V>``        :class:`ApplicationId`
ratchet_tree (2)       ``optional<Node> ratchet_tree<V>``  ``mls.ratchet_tree`` (it needs ``Node``)
required_capabilities  three lists of type numbers         :class:`RequiredCapabilities`
external_pub (4)       ``HPKEPublicKey external_pub``      :class:`ExternalPub`
external_senders (5)   ``ExternalSender external_senders<V>``  :data:`EXTERNAL_SENDERS`
=====================  ==================================  ======================

:func:`make_extension` and :func:`extension_value` convert between an :class:`Extension` and
the typed value; :func:`find_extension` looks one up in a list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Annotated, Any

from .codec import U16, Codec, Opaque, Struct, Vector, decode_exact, encode_value
from .credentials import Credential
from .errors import DecodeError


class ExtensionType(IntEnum):
    """The extension types RFC 9420 defines (§17.3). Fields hold plain integers."""

    APPLICATION_ID = 1
    RATCHET_TREE = 2
    REQUIRED_CAPABILITIES = 3
    EXTERNAL_PUB = 4
    EXTERNAL_SENDERS = 5


DEFAULT_EXTENSION_TYPES = frozenset(ExtensionType)
"""Types every client supports, which ``Capabilities.extensions`` need not list (RFC 9420 §7.2)."""


class ExtensionSite(Enum):
    """Where an extension list sits: the "Message(s)" column of the registry (RFC 9420 §17.3)."""

    KEY_PACKAGE = "KP"
    LEAF_NODE = "LN"
    GROUP_CONTEXT = "GC"
    GROUP_INFO = "GI"


ALLOWED_SITES: dict[int, ExtensionSite] = {
    ExtensionType.APPLICATION_ID: ExtensionSite.LEAF_NODE,
    ExtensionType.RATCHET_TREE: ExtensionSite.GROUP_INFO,
    ExtensionType.REQUIRED_CAPABILITIES: ExtensionSite.GROUP_CONTEXT,
    ExtensionType.EXTERNAL_PUB: ExtensionSite.GROUP_INFO,
    ExtensionType.EXTERNAL_SENDERS: ExtensionSite.GROUP_CONTEXT,
}
"""The one place each type RFC 9420 defines may appear (§17.3). Unknown types (GREASE among
them) are not restricted here."""


@dataclass(frozen=True)
class Extension(Struct):
    """One extension: a type number and its opaque data (RFC 9420 §13)."""

    extension_type: Annotated[int, U16]
    extension_data: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class ApplicationId(Struct):
    """Data of the ``application_id`` extension (RFC 9420 §5.3.3)."""

    application_id: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class RequiredCapabilities(Struct):
    """Data of the ``required_capabilities`` extension (RFC 9420 §11.1): the extension,
    proposal and credential types every member must support."""

    extension_types: Annotated[tuple[int, ...], Vector(U16)]
    proposal_types: Annotated[tuple[int, ...], Vector(U16)]
    credential_types: Annotated[tuple[int, ...], Vector(U16)]


@dataclass(frozen=True)
class ExternalPub(Struct):
    """Data of the ``external_pub`` extension (RFC 9420 §12.4.3.2): the HPKE public key
    external joiners encrypt to."""

    external_pub: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class ExternalSender(Struct):
    """One entry of the ``external_senders`` extension (RFC 9420 §12.1.8.1)."""

    signature_key: Annotated[bytes, Opaque]
    credential: Credential


EXTERNAL_SENDERS: Codec[tuple[ExternalSender, ...]] = Vector(ExternalSender)
"""Codec of the ``external_senders`` extension data (``ExternalSender external_senders<V>``)."""

_DATA_CODECS: dict[int, Codec[Any] | type[Struct]] = {
    ExtensionType.APPLICATION_ID: ApplicationId,
    ExtensionType.REQUIRED_CAPABILITIES: RequiredCapabilities,
    ExtensionType.EXTERNAL_PUB: ExternalPub,
    ExtensionType.EXTERNAL_SENDERS: EXTERNAL_SENDERS,
}


def make_extension(extension_type: int, value: Any) -> Extension:
    """Builds an extension of a known type from its typed value.

    ``value`` is an :class:`ApplicationId`, :class:`RequiredCapabilities`, :class:`ExternalPub`,
    or a tuple of :class:`ExternalSender`. For ``ratchet_tree`` use
    ``mls.ratchet_tree.ratchet_tree_extension``.

    Raises:
        KeyError: the type has no declared data encoding here.
    """
    return Extension(extension_type, encode_value(_DATA_CODECS[extension_type], value))


def extension_value(extension: Extension) -> Any:
    """Decodes the data of an extension of a known type (see :func:`make_extension`).

    Raises:
        DecodeError: the data is not exactly one value of the type's encoding, or the type has
            no declared data encoding here.
    """
    codec = _DATA_CODECS.get(extension.extension_type)
    if codec is None:
        raise DecodeError(f"no data encoding known for extension type {extension.extension_type}")
    return decode_exact(codec, extension.extension_data)


def find_extension(extensions: Iterable[Extension], extension_type: int) -> Extension | None:
    """The first extension of ``extension_type`` in ``extensions``, or ``None``."""
    for ext in extensions:
        if ext.extension_type == extension_type:
            return ext
    return None


def misplaced_extension_type(extensions: Iterable[Extension], site: ExtensionSite) -> int | None:
    """A known type in ``extensions`` that the registry does not allow at ``site``
    (RFC 9420 §17.3), or ``None``."""
    for ext in extensions:
        allowed = ALLOWED_SITES.get(ext.extension_type)
        if allowed is not None and allowed is not site:
            return ext.extension_type
    return None


def duplicate_extension_type(extensions: Iterable[Extension]) -> int | None:
    """A type that occurs more than once in ``extensions`` (RFC 9420 §13.4), or ``None``."""
    seen: set[int] = set()
    for ext in extensions:
        if ext.extension_type in seen:
            return ext.extension_type
        seen.add(ext.extension_type)
    return None
