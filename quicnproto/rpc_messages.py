"""The node's requests and answers as Python values (one frozen dataclass each).

:mod:`quicnproto.wire` encodes them as Cap'n Proto (``schemas/delivery.capnp``) and its request
table (``wire.REQUESTS``) maps each to its handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quicnproto.errors import ErrorCode

# --- requests ---------------------------------------------------------------------------------


class Request:
    """Base of every request dataclass; :data:`REQUESTS` lists the kinds."""


class Response:
    """Base of every successful answer dataclass; :data:`REQUESTS` pairs each with its request."""


@dataclass(frozen=True)
class Ping(Request):
    """Liveness check; needs no authentication."""


@dataclass(frozen=True)
class GetChallenge(Request):
    """Ask for a fresh nonce to sign (see :mod:`quicnproto.node.auth_service`)."""


@dataclass(frozen=True)
class Authenticate(Request):
    """Prove possession of ``identity_key`` for the rest of this connection."""

    identity_key: bytes
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class UploadKeyPackage(Request):
    """Publish a KeyPackage (RFC 9420 §10) for the authenticated ``identity_key``."""

    identity_key: bytes
    package: bytes = field(repr=False)
    last_resort: bool = False


@dataclass(frozen=True)
class FetchKeyPackage(Request):
    """Claim one KeyPackage of ``identity_key`` (single use, RFC 9420 §16.8)."""

    identity_key: bytes


@dataclass(frozen=True)
class CountKeyPackages(Request):
    """How many single-use KeyPackages the authenticated ``identity_key`` has left."""

    identity_key: bytes


@dataclass(frozen=True)
class CommitEpoch:
    """The (group, epoch) a handshake message commits to; first Commit wins (RFC 9420 §14)."""

    group_id: bytes
    epoch: int


@dataclass(frozen=True)
class Enqueue(Request):
    """Store ``payload`` in every recipient's queue, atomically and idempotently."""

    recipients: tuple[bytes, ...]
    payload: bytes = field(repr=False)
    message_id: bytes
    commit: CommitEpoch | None = None
    welcome: bytes | None = field(default=None, repr=False)
    """The Commit's Welcome, routed by the node to the holders of its KeyPackageRefs and
    released only if the Commit wins its epoch (VALIDATION SRV-DEL-06, SRV-KP-06)."""


@dataclass(frozen=True)
class Fetch(Request):
    """Read messages with ``seq > after_seq``; long-poll up to ``wait_ms``.

    With ``ack_up_to`` > 0, messages with ``seq <= ack_up_to`` are deleted first, as by
    :class:`Ack` (the next poll acknowledges the previous batch).
    """

    recipient_key: bytes
    after_seq: int = 0
    limit: int = 100
    wait_ms: int = 0
    ack_up_to: int = 0


@dataclass(frozen=True)
class Ack(Request):
    """Delete every message of the queue with ``seq <= up_to_seq``."""

    recipient_key: bytes
    up_to_seq: int


@dataclass(frozen=True)
class CountQueue(Request):
    """How many messages wait in the authenticated recipient's queue."""

    recipient_key: bytes


# --- responses --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats(Request):
    """The authenticated ``identity_key``'s own holdings: its queue and its KeyPackages."""

    identity_key: bytes


@dataclass(frozen=True)
class Pong(Response):
    version: str
    time_ms: int


@dataclass(frozen=True)
class Challenge(Response):
    nonce: bytes


@dataclass(frozen=True)
class Authenticated(Response):
    identity_key: bytes


@dataclass(frozen=True)
class KeyPackageUploaded(Response):
    fingerprint: bytes


@dataclass(frozen=True)
class KeyPackageFetched(Response):
    package: bytes = field(repr=False)
    last_resort: bool = False


@dataclass(frozen=True)
class KeyPackageCount(Response):
    count: int


@dataclass(frozen=True)
class Enqueued(Response):
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class QueuedMessage:
    seq: int
    message_id: bytes
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Fetched(Response):
    """Messages after the request's ``after_seq``, and the gap of lost ones before the end of
    this answer: ``expired_count`` messages expired (VALIDATION SRV-DEL-07), the highest of
    them being ``expired_up_to_seq`` (both 0 when nothing was lost)."""

    messages: tuple[QueuedMessage, ...]
    expired_count: int = 0
    expired_up_to_seq: int = 0


@dataclass(frozen=True)
class Acked(Response):
    removed: int


@dataclass(frozen=True)
class QueueCount(Response):
    count: int


@dataclass(frozen=True)
class StatsAnswer(Response):
    messages: int
    bytes: int
    key_packages: int


@dataclass(frozen=True)
class ErrorResponse:
    """The node refused or failed the request; ``detail`` is short and secret-free."""

    code: ErrorCode
    detail: str = ""
