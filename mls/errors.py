"""The exception hierarchy of the ``mls`` package.

Contract: every public function of ``mls`` either returns or raises a subclass of
:class:`MLSError`. Decoders raise only :class:`DecodeError`; validators raise only
:class:`ValidationError` subclasses. Any other exception escaping the package is a bug.

Messages never contain secret material: they may name fields, indices, lengths, epochs and
rule identifiers, nothing more.
"""

from __future__ import annotations


class MLSError(Exception):
    """Base of every error raised by ``mls``; never raised directly."""


class DecodeError(MLSError):
    """Malformed bytes: truncation, trailing data, non-minimal varint, unknown closed-enum
    value, a length over a limit, a bad optional marker (RFC 9420 §2.1)."""


class ValidationError(MLSError):
    """Well-formed input that breaks a rule of RFC 9420.

    Attributes:
        rule: the rule identifier, for example ``"§12.2/add-unique-key"``.
    """

    def __init__(self, rule: str, message: str = "") -> None:
        self.rule = rule
        super().__init__(f"{rule}: {message}" if message else rule)


class VerificationError(ValidationError):
    """A signature, MAC, membership or confirmation tag, or a tree/parent hash did not verify."""


class DecryptionError(ValidationError):
    """AEAD or HPKE decryption failed."""


class EpochError(ValidationError):
    """A message for an unknown or expired epoch, or for another group."""


class StaleGenerationError(ValidationError):
    """A secret-tree generation already consumed, or beyond the forward window (RFC 9420 §9.4)."""


class UsageError(MLSError):
    """The caller used the API wrongly (local misuse, not a bad message)."""


class UnsupportedError(MLSError):
    """An unsupported cipher suite, credential type, or required capability."""


class InternalError(MLSError):
    """An internal invariant broke: a bug. Please report it."""
