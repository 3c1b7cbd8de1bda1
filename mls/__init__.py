"""A pure-Python implementation of Messaging Layer Security, RFC 9420.

Sans-I/O: bytes and values in, bytes and result objects out. Every primitive comes from
``cryptography``; HPKE (RFC 9180) is built in :mod:`mls.crypto.hpke` on those primitives.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
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
