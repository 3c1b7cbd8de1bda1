"""The exception hierarchy of the ``quicnproto`` package (node, client and CLI).

Third-party errors are translated at the boundary (``raise ... from exc``): capnp errors become
:class:`ProtocolError`, ``sqlite3.Error`` becomes :class:`StoreError`. Messages never carry
payloads, keys or secrets.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


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


class TransportReason(StrEnum):
    """Why a :class:`TransportError` was raised; tests and callers match on these, not on the
    message text."""

    UNSPECIFIED = "unspecified"
    """Raised without a more precise reason."""
    RESOLVE_FAILED = "resolve_failed"
    """The host name did not resolve."""
    BIND_FAILED = "bind_failed"
    """The server's UDP socket could not be bound."""
    UNREACHABLE = "unreachable"
    """The client's socket could not be connected to the server address."""
    CONNECTION_REFUSED = "connection_refused"
    """Nothing listens at the server address (ICMP port unreachable during the handshake)."""
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    """The QUIC + TLS handshake did not complete in time."""
    ALPN_MISMATCH = "alpn_mismatch"
    """The peer did not negotiate our ALPN protocol."""
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    """The server's certificate is not the pinned one."""
    CONNECTION_CLOSED = "connection_closed"
    """The connection was closed (by either side, a limit, or a QUIC timeout)."""
    INTERNAL = "internal"
    """aioquic raised where it is expected not to; only that connection is lost."""
    STREAM_RESET = "stream_reset"
    """The stream was reset: by the peer, by a limit, or locally."""
    STOP_SENDING = "stop_sending"
    """The peer asked us to stop sending on the stream."""
    STREAM_CLOSED = "stream_closed"
    """The application released the stream."""
    STREAM_FINISHED = "stream_finished"
    """A write after the stream was finished for sending."""
    TIMEOUT = "timeout"
    """No answer arrived in time."""


class TransportError(QuicnprotoError):
    """The QUIC connection failed, closed, or timed out.

    Attributes:
        reason: a :class:`TransportReason` saying which failure it was.
    """

    def __init__(self, message: str, reason: TransportReason = TransportReason.UNSPECIFIED) -> None:
        self.reason = reason
        super().__init__(message)


class StreamResetError(TransportError):
    """The stream was reset (by the peer, by a limit, or locally).

    Attributes:
        error_code: the application error code carried by the reset.
        reason: :attr:`TransportReason.STREAM_RESET` unless a more precise reason applies.
    """

    def __init__(
        self,
        message: str,
        error_code: int,
        reason: TransportReason = TransportReason.STREAM_RESET,
    ) -> None:
        self.error_code = error_code
        super().__init__(message, reason)


class ConnectionClosedError(TransportError):
    """The connection was closed by the peer, or by a QUIC-level failure or timeout.

    Attributes:
        error_code: the QUIC transport or application error code of the close.
        reason: :attr:`TransportReason.CONNECTION_CLOSED`.
    """

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message, TransportReason.CONNECTION_CLOSED)


class PrivateApiError(QuicnprotoError):
    """aioquic's private state no longer has the shape the transport reads (an aioquic upgrade
    renamed or removed it). Raised only in strict mode (``transport.quic._aioquic.strict``, set
    by the liveness tests); otherwise the transport logs it once and falls back.

    Attributes:
        attribute: the private attribute that is missing, e.g. ``"QuicStreamSender._buffer_stop"``.
    """

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute
        super().__init__(f"aioquic private state missing: {attribute}")


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
