"""What the store hands out and enforces: stored rows, refusals, limits and the :class:`Store`
interface the node's services use.

Contract: every :class:`Store` method raises :class:`StoreError` for SQLite failures (including a
full disk, which callers treat as retryable) and :class:`RequestRefused` for requests the data
forbids (quota, stale commit, reused id); nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from quicnproto.config import StoreLimits
from quicnproto.errors import ErrorCode, QuicnprotoError, StoreError

__all__ = [
    "MAX_SQL_INT",
    "MAX_STORED_ID_SIZE",
    "FetchedPage",
    "QueueStats",
    "RequestRefused",
    "Store",
    "StoreLimits",
    "StoreTotals",
    "StoredMessage",
    "WriteOp",
    "store_error",
]

MAX_SQL_INT = 2**63 - 1
"""SQLite integers are signed 64-bit; larger client values are clamped to this."""

MAX_STORED_ID_SIZE = 255
"""Longest message id or KeyPackageRef a valid row holds (the node accepts far less)."""

WriteOp = Callable[[sqlite3.Connection], Any]
"""One write operation: statements run inside the caller's savepoint, returning its result."""


class RequestRefused(QuicnprotoError):
    """The node refuses a request for a reason it may tell the client (sent as an error response).

    Attributes:
        code: the :class:`ErrorCode` to answer with.
        detail: a short, secret-free reason.
    """

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.name.lower()}: {detail}" if detail else code.name.lower())


def store_error(exc: BaseException) -> StoreError:
    """``exc`` as the :class:`StoreError` callers see, keeping the SQLite error as its cause
    (``sqlite_errorcode`` tells a full disk, ``SQLITE_FULL``, from other failures)."""
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"sqlite: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


@dataclass(frozen=True)
class StoredMessage:
    """One queued message as returned by fetch."""

    seq: int
    message_id: bytes
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class FetchedPage:
    """One fetch answer: live messages in order, and the messages lost before this page's end.

    Attributes:
        messages: live messages with ``seq > after_seq``, oldest first.
        expired_count: messages with ``after_seq < seq <= end`` that expired (or were
            quarantined) and will never be delivered, where ``end`` is the last returned seq
            when the page was cut short, else the queue's last seq.
        expired_up_to: the highest such seq (0 when ``expired_count`` is 0). A reader may move
            its cursor to ``max(messages[-1].seq, expired_up_to)``.
    """

    messages: tuple[StoredMessage, ...]
    expired_count: int = 0
    expired_up_to: int = 0


@dataclass(frozen=True)
class QueueStats:
    """One identity's own holdings.

    Attributes:
        messages: messages in its queue (expired ones not deleted yet included).
        bytes: their payload bytes.
        key_packages: unexpired single-use KeyPackages left (the last resort not counted).
    """

    messages: int
    bytes: int
    key_packages: int


@dataclass(frozen=True)
class StoreTotals:
    """The whole node's holdings, for metrics (counts only, no identities).

    Attributes:
        messages: messages in all queues (expired ones not deleted yet included).
        bytes: their payload bytes.
        key_packages_left: identities by unexpired single-use KeyPackages left: ``{left:
            identities}``, over every identity with a KeyPackage stored or handed out.
    """

    messages: int
    bytes: int
    key_packages_left: dict[int, int]


class Store(Protocol):
    """The async store interface the node's services use (see the module docstring)."""

    async def enqueue(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None = None,
    ) -> tuple[int, ...]: ...

    async def enqueue_bundle(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        welcome: tuple[bytes, Sequence[bytes]] | None,
    ) -> tuple[tuple[int, ...], tuple[bytes, ...]]: ...

    async def fetch(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredMessage]: ...

    async def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> FetchedPage: ...

    async def ack(self, recipient: bytes, up_to_seq: int) -> int: ...

    async def ack_later(
        self, recipient: bytes, up_to_seq: int, on_done: Callable[[], None]
    ) -> None: ...

    def commit_background_now(self) -> None:
        """Start committing writes queued by ``ack_later`` now rather than after their short
        wait for company (for a caller about to wait for them)."""

    async def count_queue(self, recipient: bytes) -> int: ...

    async def stats(self, identity: bytes) -> QueueStats: ...

    async def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        init_key: bytes | None = None,
    ) -> None: ...

    async def claim_key_package(self, identity: bytes) -> tuple[bytes, bool] | None: ...

    async def count_key_packages(self, identity: bytes) -> int: ...

    async def purge(self) -> int: ...

    async def expire_messages(self) -> int: ...

    async def aclose(self) -> None: ...
