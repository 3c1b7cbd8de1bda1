"""Delivery Service: per-recipient store-and-forward queues (RFC 9420 §14 for commit ordering).

Semantics (VALIDATION §5.5):

* **enqueue** needs an authenticated sender. It stores one payload in up to
  ``max_recipients`` queues in one transaction (all or none), returns a per-recipient sequence
  number, is idempotent by the client-chosen message id (a retry returns the first answer and
  stores nothing), and, for a handshake message carrying ``(group_id, epoch)``, accepts only
  the first Commit for that epoch (later ones, and any for an older epoch, get ``STALE``).
* **fetch** returns messages with ``seq > after_seq`` in order, deleting nothing, so a dropped
  answer loses nothing; with ``wait_ms`` it long-polls: it sleeps on a per-recipient
  :class:`trio.Event` that every enqueue to that recipient sets. The enqueue that wakes it
  hands over its message (committed, with its seq), and the fetch answers with that message
  without reading the store again when it is exactly what the store would return first: the
  fetch's read found the queue empty and no gap after ``after_seq`` (so the queue's last seq
  was at most ``after_seq``), the handed seq is ``after_seq + 1``, and no acknowledgement moved
  ``after_seq`` meanwhile. Otherwise (a retried enqueue, enqueues woken out of order, fan-out
  with a Welcome) it reads the store as before.
* **ack** deletes everything up to a sequence number. A fetch may carry one
  (``ack_up_to``) for the batch its predecessor returned: that deletion joins the next group
  commit and the fetch answers without waiting for its fsync; until it is committed, every
  later fetch of the queue skips what it covers, and ``ack``/``count_queue`` wait for it, so
  each request sees the acknowledgements made before it. If that commit fails, the messages
  stay (nothing is lost) and the next, cumulative, acknowledgement removes them.
* **expiry**: messages older than ``message_ttl`` are never served; a fetch answer counts the
  ones lost after ``after_seq`` (``expired_count``, ``expired_up_to_seq``) so the recipient
  sees the gap (VALIDATION SRV-DEL-07). A long-poll still waits for a message when the gap is
  all there is to report (it reports the gap when it answers): a client that does not move
  its cursor past the gap must not be answered at once forever, which would make it spin.

Only a connection authenticated as the recipient may fetch, ack or count a queue. Any other
caller gets ``NOT_FOUND "no such queue"`` without the store being consulted, which is exactly what
it would get for a queue that never existed: errors reveal nothing about queues
(VALIDATION SRV-AU-01).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

import trio

from mls.errors import MLSError
from mls.framing import MLSMessage
from mls.messages import Welcome
from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode
from quicnproto.node.auth_service import (
    IDENTITY_KEY_SIZE,
    is_authenticated,
    require_identity,
)
from quicnproto.node.rate_limiter import RateLimiter
from quicnproto.node.store import RequestRefused, Store
from quicnproto.wire import (
    Ack,
    Acked,
    CountQueue,
    Enqueue,
    Enqueued,
    Fetch,
    Fetched,
    QueueCount,
    QueuedMessage,
    Stats,
    StatsAnswer,
)

MAX_GROUP_ID_SIZE = 255  # RFC 9420 §8.1 puts no bound; the node picks one
MAX_U32 = 2**32 - 1  # FetchResponse.expiredCount is a UInt32


class _Waiters:
    __slots__ = ("event", "count", "handed")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.count = 0
        self.handed: QueuedMessage | None = None
        """The committed message whose enqueue set :attr:`event` (None if it handed none)."""


class _AcksInFlight:
    """Acknowledgements of one queue queued by fetches and not yet committed."""

    __slots__ = ("up_to", "count", "done")

    def __init__(self) -> None:
        self.up_to = 0
        self.count = 0
        self.done = trio.Event()


class DeliveryService:
    """Queues, fan-out, long-poll and first-commit-wins on top of a :class:`Store`.

    Args:
        store: the durable queues.
        config: limits (sizes, rates, page size, long-poll cap).
        clock: monotonic seconds (rate limits).
    """

    def __init__(
        self, store: Store, config: NodeConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.config = config
        self._senders = RateLimiter(config.enqueue_burst, config.enqueue_rate, clock)
        self._waiters: dict[bytes, _Waiters] = {}
        self._acks: dict[bytes, _AcksInFlight] = {}

    # -- acknowledgements piggybacked on fetches

    async def _ack_in_background(self, recipient: bytes, up_to_seq: int) -> None:
        """Queue the acknowledgement; until it is committed, reads of this queue skip what it
        covers themselves (:meth:`_acked_in_flight`), so every later request sees it."""
        acks = self._acks.get(recipient)
        if acks is None:
            acks = self._acks[recipient] = _AcksInFlight()
        acks.count += 1

        def done() -> None:
            acks.count -= 1
            if acks.count == 0:
                acks.done.set()
                if self._acks.get(recipient) is acks:
                    del self._acks[recipient]

        try:
            await self.store.ack_later(recipient, up_to_seq, done)
        except BaseException:
            done()  # never queued (e.g. cancelled first): nothing to wait for or to skip
            raise
        acks.up_to = max(acks.up_to, up_to_seq)

    def _acked_in_flight(self, recipient: bytes) -> int:
        acks = self._acks.get(recipient)
        return acks.up_to if acks is not None else 0

    async def _settle_acks(self, recipient: bytes) -> None:
        """Wait until the acknowledgements in flight for ``recipient`` are committed."""
        acks = self._acks.get(recipient)
        if acks is not None:
            self.store.commit_background_now()  # rather than let it wait for company
            await acks.done.wait()

    # -- long-poll wake-ups

    def _wake(self, recipient: bytes, seq: int = 0, request: Enqueue | None = None) -> None:
        """Wake the fetches long-polling ``recipient``, handing them the message ``request``
        just stored there as ``seq`` (when given)."""
        waiters = self._waiters.pop(recipient, None)
        if waiters is not None:
            if request is not None:
                waiters.handed = QueuedMessage(
                    seq=seq, message_id=request.message_id, payload=request.payload
                )
            waiters.event.set()

    def waiting(self, recipient: bytes) -> int:
        """How many fetches are long-polling ``recipient`` right now (for tests and metrics)."""
        waiters = self._waiters.get(recipient)
        return waiters.count if waiters else 0

    # -- requests

    def _check_enqueue(self, request: Enqueue) -> None:
        cfg = self.config
        # A Commit with a Welcome may have no other recipient (a one-member group inviting).
        least = 0 if request.welcome is not None else 1
        if not least <= len(request.recipients) <= cfg.max_recipients:
            raise RequestRefused(ErrorCode.INVALID, "bad recipient count")
        if any(len(r) != IDENTITY_KEY_SIZE for r in request.recipients):
            raise RequestRefused(ErrorCode.INVALID, "bad recipient key")
        if len(set(request.recipients)) != len(request.recipients):
            raise RequestRefused(ErrorCode.INVALID, "duplicate recipient")
        if not 0 < len(request.message_id) <= cfg.max_message_id_size:
            raise RequestRefused(ErrorCode.INVALID, "bad message id")
        if len(request.payload) > cfg.max_payload_size:
            raise RequestRefused(ErrorCode.INVALID, "payload too large")
        if len(request.payload) * len(request.recipients) > cfg.max_fanout_bytes:
            # One copy per recipient, all in one transaction: bound what one request writes.
            raise RequestRefused(ErrorCode.INVALID, "fan-out too large")
        if request.commit is not None and not (
            0 < len(request.commit.group_id) <= MAX_GROUP_ID_SIZE
        ):
            raise RequestRefused(ErrorCode.INVALID, "bad group id")
        if request.welcome is not None:
            if request.commit is None:
                raise RequestRefused(ErrorCode.INVALID, "a Welcome travels with its Commit")
            if len(request.welcome) > cfg.max_payload_size:
                raise RequestRefused(ErrorCode.INVALID, "Welcome too large")

    def _welcome_refs(self, welcome: bytes) -> tuple[bytes, ...]:
        """The KeyPackageRefs a Welcome is for (RFC 9420 §12.4.3): the node reads only this
        much of it, to route it (VALIDATION SRV-KP-06)."""
        try:
            body = MLSMessage.decode(welcome).body
        except MLSError:
            raise RequestRefused(ErrorCode.INVALID, "Welcome does not decode") from None
        if not isinstance(body, Welcome):
            raise RequestRefused(ErrorCode.INVALID, "not an MLSMessage(Welcome)")
        refs = tuple(entry.new_member for entry in body.secrets)
        if not refs or len(set(refs)) != len(refs):
            raise RequestRefused(ErrorCode.INVALID, "Welcome names no or repeated members")
        if len(refs) > self.config.max_recipients:
            raise RequestRefused(ErrorCode.INVALID, "Welcome names too many members")
        if len(welcome) * len(refs) > self.config.max_fanout_bytes:
            raise RequestRefused(ErrorCode.INVALID, "Welcome fan-out too large")
        return refs

    async def enqueue(self, state: MutableMapping[str, Any], request: Enqueue) -> Enqueued:
        """Store a message for its recipients, then wake their long-polls.

        A Commit may carry its Welcome: the node stores both in one transaction, the Welcome
        for the holder of each KeyPackageRef it names (INVALID if one is unknown), and only if
        the Commit wins its epoch (VALIDATION SRV-DEL-06, SRV-KP-06).

        Raises:
            RequestRefused: UNAUTHENTICATED, INVALID, RATE_LIMITED, CONFLICT, STALE,
                QUOTA_EXCEEDED.
            StoreError: the store failed; nothing was stored.
        """
        sender = require_identity(state)
        self._check_enqueue(request)
        if not self._senders.try_take(sender):
            raise RequestRefused(ErrorCode.RATE_LIMITED, "sender rate limit")
        commit = None if request.commit is None else (request.commit.group_id, request.commit.epoch)
        welcome = None
        if request.welcome is not None:
            welcome = (request.welcome, self._welcome_refs(request.welcome))
        if welcome is None:
            seqs = await self.store.enqueue(
                sender, request.recipients, request.payload, request.message_id, commit
            )
            for recipient, seq in zip(request.recipients, seqs, strict=True):
                self._wake(recipient, seq, request)
        else:
            seqs, woken = await self.store.enqueue_bundle(
                sender, request.recipients, request.payload, request.message_id, commit, welcome
            )
            for recipient in woken:
                self._wake(recipient)
        return Enqueued(seqs=seqs)

    def _require_owner(self, state: MutableMapping[str, Any], recipient: bytes) -> None:
        # SRV-AU-01: the same answer whether or not the queue exists or holds anything.
        if not is_authenticated(state, recipient):
            raise RequestRefused(ErrorCode.NOT_FOUND, "no such queue")

    async def fetch(self, state: MutableMapping[str, Any], request: Fetch) -> Fetched:
        """Messages after ``after_seq``, waiting up to ``wait_ms`` for one. With ``ack_up_to``
        set, those up to it are deleted in the next group commit (the answer does not wait for
        that fsync) and are not returned even when ``after_seq`` is lower.

        Raises:
            RequestRefused: NOT_FOUND when the connection does not own the queue.
        """
        self._require_owner(state, request.recipient_key)
        if request.ack_up_to:
            # Durable in the next group commit; the answer does not wait for that fsync (nothing
            # in it depends on the deletion), and what it acknowledges is never served again.
            await self._ack_in_background(request.recipient_key, request.ack_up_to)
        limit = max(
            1, min(request.limit or self.config.fetch_max_messages, self.config.fetch_max_messages)
        )
        wait = min(request.wait_ms, self.config.max_wait_ms) / 1000.0
        deadline = trio.current_time() + wait
        while True:
            # Register before reading, so an enqueue landing between the read and the wait
            # still wakes us.
            waiters = self._waiters.get(request.recipient_key)
            if waiters is None:
                waiters = self._waiters[request.recipient_key] = _Waiters()
            waiters.count += 1
            try:
                # Acknowledged but not yet committed: skipped here as they will be in the store.
                after_seq = max(request.after_seq, self._acked_in_flight(request.recipient_key))
                page = await self.store.fetch_page(
                    request.recipient_key, after_seq, limit, self.config.fetch_max_bytes
                )
                if page.messages or trio.current_time() >= deadline:
                    break
                with trio.move_on_at(deadline):
                    await waiters.event.wait()
                handed = waiters.handed
                if (
                    handed is not None
                    and not page.expired_count
                    and handed.seq == after_seq + 1
                    and after_seq
                    == max(request.after_seq, self._acked_in_flight(request.recipient_key))
                ):
                    # The queue held nothing after ``after_seq`` (no gap either) and this is
                    # the next seq it gave out: the store would answer with it first.
                    return Fetched(messages=(handed,))
            finally:
                waiters.count -= 1
                if waiters.count == 0 and self._waiters.get(request.recipient_key) is waiters:
                    del self._waiters[request.recipient_key]
        return Fetched(
            messages=tuple(
                QueuedMessage(seq=m.seq, message_id=m.message_id, payload=m.payload)
                for m in page.messages
            ),
            expired_count=min(page.expired_count, MAX_U32),
            expired_up_to_seq=page.expired_up_to,
        )

    async def ack(self, state: MutableMapping[str, Any], request: Ack) -> Acked:
        """Delete every message with ``seq <= up_to_seq``.

        Raises:
            RequestRefused: NOT_FOUND when the connection does not own the queue.
        """
        self._require_owner(state, request.recipient_key)
        # Acknowledgements queued by earlier fetches land first, so ``removed`` counts only what
        # this one deleted.
        await self._settle_acks(request.recipient_key)
        return Acked(removed=await self.store.ack(request.recipient_key, request.up_to_seq))

    async def stats(self, state: MutableMapping[str, Any], request: Stats) -> StatsAnswer:
        """The caller's own queue totals and single-use KeyPackages left."""
        self._require_owner(state, request.identity_key)
        await self._settle_acks(request.identity_key)
        found = await self.store.stats(request.identity_key)
        return StatsAnswer(found.messages, found.bytes, found.key_packages)

    async def count_queue(self, state: MutableMapping[str, Any], request: CountQueue) -> QueueCount:
        """Messages waiting in the caller's own queue."""
        self._require_owner(state, request.recipient_key)
        await self._settle_acks(request.recipient_key)
        return QueueCount(count=await self.store.count_queue(request.recipient_key))
