"""A pure-Python implementation of Messaging Layer Security, RFC 9420.

Sans-I/O: bytes and values in, bytes and result objects out. Every primitive comes from
``cryptography``; HPKE (RFC 9180) is built in :mod:`mls.crypto.hpke` on those primitives.
"""

from __future__ import annotations

from .credentials import Credential, CredentialType
from .crypto.ciphersuite import CipherSuite
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

__all__ = [
    "ApplicationMessage",
    "CipherSuite",
    "CreatedCommit",
    "Credential",
    "CredentialType",
    "Group",
    "GroupConfig",
    "GroupMember",
    "InMemoryKeyPackageStore",
    "JoinKeys",
    "KeyPackage",
    "KeyPackagePrivateKeys",
    "KeyPackageStore",
    "OwnMessage",
    "ProposalMessage",
    "StagedCommit",
    "DecodeError",
    "DecryptionError",
    "EpochError",
    "InternalError",
    "MLSError",
    "StaleGenerationError",
    "UnsupportedError",
    "UsageError",
    "ValidationError",
    "VerificationError",
    "__version__",
]
