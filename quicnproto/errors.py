"""The exception hierarchy of the ``quicnproto`` package (node, client and CLI).

Third-party errors are translated at the boundary (``raise ... from exc``): capnp errors become
:class:`ProtocolError`, ``sqlite3.Error`` becomes :class:`StoreError`. Messages never carry
payloads, keys or secrets.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes carried in error responses and on stream/connection resets."""

    NO_ERROR = 0
    INTERNAL = 1
    MALFORMED = 2
    FRAME_TOO_LARGE = 3
    UNSUPPORTED = 4
    UNAUTHENTICATED = 5
    NOT_FOUND = 6
    CONFLICT = 7
    RATE_LIMITED = 8
    QUOTA_EXCEEDED = 9
    INVALID = 10
    STALE = 11
    TIMEOUT = 12
    UNAVAILABLE = 13


class QuicnprotoError(Exception):
    """Base of every error raised by ``quicnproto``; never raised directly."""


class ProtocolError(QuicnprotoError):
    """The peer sent bad framing or a bad Cap'n Proto message.

    Attributes:
        code: the :class:`ErrorCode` sent on the error response or stream reset.
    """

    def __init__(self, message: str, code: ErrorCode = ErrorCode.MALFORMED) -> None:
        self.code = code
        super().__init__(message)


class RemoteError(QuicnprotoError):
    """The node answered a request with an error response.

    Attributes:
        code: the :class:`ErrorCode` the node sent.
        detail: the node's short, secret-free explanation.
    """

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.name.lower()}: {detail}" if detail else code.name.lower())


class NotFoundError(RemoteError):
    """The node has nothing for this request (no KeyPackage, no such message)."""


class ConflictError(RemoteError):
    """The request conflicts with the node's state (a Commit for an epoch already decided)."""


class TransportError(QuicnprotoError):
    """The QUIC connection failed, closed, or timed out."""


class StoreError(QuicnprotoError):
    """A SQLite failure, or a store whose schema version this code does not know."""


class ClientStateError(QuicnprotoError):
    """A missing, corrupt, foreign, too-permissive or locked client state file, or a wrong
    passphrase.

    Attributes:
        reason: machine-readable: ``"missing"``, ``"exists"``, ``"not-a-database"``,
            ``"corrupt"``, ``"foreign"``, ``"newer-version"``, ``"permissions"``,
            ``"passphrase-required"``, ``"wrong-passphrase"``, ``"no-identity"``,
            ``"io"``.
    """

    def __init__(self, message: str, *, reason: str = "corrupt") -> None:
        self.reason = reason
        super().__init__(message)


class ConfigError(QuicnprotoError):
    """Bad configuration or command-line arguments."""


def sole_exception(exc: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups of one member each, else ``exc``.

    A Trio nursery wraps what its tasks raise in an :class:`ExceptionGroup`; a start-up failure
    arrives as such a group around its one cause, which is what callers report.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
