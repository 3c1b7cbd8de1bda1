"""A pure-Python implementation of Messaging Layer Security, RFC 9420.

Sans-I/O: bytes and values in, bytes and result objects out. Every primitive comes from
``cryptography``; HPKE (RFC 9180) is built in :mod:`mls.crypto.hpke` on those primitives.

The application's face is :class:`GroupMember` (bytes in, bytes out) and, for full control,
:class:`Group`; both live in :mod:`mls.group`. The names below are loaded on first use, so
``import mls.errors`` (or any single module) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    DecodeError,
    DecryptionError,
    EpochError,
    InternalError,
    MLSError,
    StaleGenerationError,
    UnsupportedError,
    UsageError,
    ValidationError,
    VerificationError,
)

if TYPE_CHECKING:
    from .credentials import Credential, CredentialType
    from .crypto.ciphersuite import CipherSuite
    from .group.commit import CreatedCommit
    from .group.config import GroupConfig
    from .group.group import Group
    from .group.member import GroupMember
    from .group.results import ApplicationMessage, OwnMessage, ProposalMessage
    from .group.staged_commit import StagedCommit
    from .group.welcome import JoinKeys
    from .key_package import (
        InMemoryKeyPackageStore,
        KeyPackage,
        KeyPackagePrivateKeys,
        KeyPackageStore,
    )

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ApplicationMessage": ".group.results",
    "CipherSuite": ".crypto.ciphersuite",
    "CreatedCommit": ".group.commit",
    "Credential": ".credentials",
    "CredentialType": ".credentials",
    "Group": ".group.group",
    "GroupConfig": ".group.config",
    "GroupMember": ".group.member",
    "InMemoryKeyPackageStore": ".key_package",
    "JoinKeys": ".group.welcome",
    "KeyPackage": ".key_package",
    "KeyPackagePrivateKeys": ".key_package",
    "KeyPackageStore": ".key_package",
    "OwnMessage": ".group.results",
    "ProposalMessage": ".group.results",
    "StagedCommit": ".group.staged_commit",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mls' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ApplicationMessage",
    "CipherSuite",
    "CreatedCommit",
    "Credential",
    "CredentialType",
    "DecodeError",
    "DecryptionError",
    "EpochError",
    "Group",
    "GroupConfig",
    "GroupMember",
    "InMemoryKeyPackageStore",
    "InternalError",
    "JoinKeys",
    "KeyPackage",
    "KeyPackagePrivateKeys",
    "KeyPackageStore",
    "MLSError",
    "OwnMessage",
    "ProposalMessage",
    "StagedCommit",
    "StaleGenerationError",
    "UnsupportedError",
    "UsageError",
    "ValidationError",
    "VerificationError",
    "__version__",
]
