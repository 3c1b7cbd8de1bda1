"""The Trio-facing store: the :class:`~quicnproto.node.store.types.Store` interface over one
SQLite :class:`~quicnproto.node.store.database.Database`.

Every method is one logical operation and is atomic. A read (small indexed queries in one WAL
read transaction, which never waits for a writer) runs directly on the event-loop thread. A
write is one operation of a pipelined group commit
(:class:`~quicnproto.node.store.group_commit.GroupCommit`): its statements run in their own
``SAVEPOINT`` on the event-loop thread, the ``COMMIT`` and its fsync in one long-lived thread,
and the caller is answered only after that ``COMMIT``. A crash therefore leaves either all of
an operation or none of it (VALIDATION SRV-CR-01..03).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

import trio

from quicnproto.node.store import key_packages, queues, retention
from quicnproto.node.store.database import Database
from quicnproto.node.store.group_commit import GroupCommit, PendingWrite
from quicnproto.node.store.types import (
    FetchedPage,
    QueueStats,
    StoredMessage,
    StoreLimits,
    StoreTotals,
)

T = TypeVar("T")


class SQLiteStore:
    """The node's store over one SQLite :class:`Database` (see the module docstring).

    Args:
        db: the opened database.
        clock: wall-clock seconds (enqueue times, expiry, KeyPackage lifetimes).

    Calls are not abandoned on cancellation: a transaction that started finishes (committed or
    rolled back) before the caller sees the cancellation, so the database never depends on where
    a cancel landed.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._limits = db.limits
        self._clock = clock
        self._writer = GroupCommit(db)
        self.background_failures = 0
        """Writes queued by :meth:`ack_later` whose group commit failed."""

    @property
    def quarantined(self) -> int:
        """Rows quarantined when the database was opened (VALIDATION SRV-CR-05)."""
        return self.db.quarantined

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in a group commit; returns after the ``COMMIT`` that holds it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        item = PendingWrite(op)
        item.task = trio.lowlevel.current_task()
        self._writer.submit(item)
        # Not abortable: a cancellation is delivered after the transaction ended.
        await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        if item.error is not None:
            raise item.error
        return cast(T, item.result)

    async def enqueue(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None = None,
    ) -> tuple[int, ...]:
        """See :func:`~quicnproto.node.store.queues.enqueue`."""
        limits, now = self._limits, self._clock()
        digest = queues.enqueue_digest(recipients, payload, commit)
        return await self._write(
            lambda conn: queues.enqueue(
                conn, limits, sender, recipients, payload, message_id, commit, digest, now
            )
        )

    async def enqueue_bundle(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        welcome: tuple[bytes, Sequence[bytes]] | None,
    ) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
        """See :func:`~quicnproto.node.store.queues.enqueue_bundle`."""
        limits, now = self._limits, self._clock()
        digest = queues.enqueue_digest(
            recipients, payload, commit, None if welcome is None else welcome[0]
        )
        return await self._write(
            lambda conn: queues.enqueue_bundle(
                conn,
                limits,
                sender,
                recipients,
                payload,
                message_id,
                commit,
                welcome,
                digest,
                now,
            )
        )

    async def fetch(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredMessage]:
        """The messages of :meth:`fetch_page`."""
        return list((await self.fetch_page(recipient, after_seq, limit, max_bytes)).messages)

    async def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> FetchedPage:
        """See :func:`~quicnproto.node.store.queues.fetch_page`."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self.db.read() as conn:
            return queues.fetch_page(
                conn, self._limits, recipient, after_seq, limit, max_bytes, self._clock()
            )

    async def ack(self, recipient: bytes, up_to_seq: int) -> int:
        """Delete ``recipient``'s messages up to ``up_to_seq``; returns how many went."""
        return await self._write(lambda conn: queues.ack(conn, recipient, up_to_seq))

    async def ack_later(
        self, recipient: bytes, up_to_seq: int, on_done: Callable[[], None]
    ) -> None:
        """Queue the deletion of ``recipient``'s messages up to ``up_to_seq`` in the next group
        commit and return without waiting for it; ``on_done`` is called on the event loop once
        that commit ended (so a fetch that piggybacks an acknowledgement answers without an
        fsync in its path, and the caller knows until when reads must skip those messages
        themselves). If the commit fails the messages stay, and the next acknowledgement, which
        is cumulative, removes them; such failures are counted in :attr:`background_failures`.
        ``on_done`` is called exactly once when this returns, never when it raises."""
        await trio.lowlevel.checkpoint_if_cancelled()
        item = PendingWrite(lambda conn: queues.ack(conn, recipient, up_to_seq))
        item.on_done = partial(self._background_done, item, on_done)
        self._writer.submit(item)

    def commit_background_now(self) -> None:
        """Start committing writes queued by :meth:`ack_later` now, rather than after
        :data:`~quicnproto.node.store.group_commit.BACKGROUND_DELAY` (for a caller about to
        wait for them)."""
        self._writer.flush()

    def _background_done(self, item: PendingWrite, on_done: Callable[[], None]) -> None:
        if item.error is not None:
            self.background_failures += 1
        on_done()

    async def count_queue(self, recipient: bytes) -> int:
        """Messages waiting for ``recipient``."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self.db.read() as conn:
            return queues.count_queue(conn, recipient)

    async def stats(self, identity: bytes) -> QueueStats:
        """``identity``'s queue totals and single-use KeyPackages left, read at one instant."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self.db.read() as conn:
            conn.execute("BEGIN")
            try:
                messages, used = queues.queue_totals(conn, identity)
                left = key_packages.count_key_packages(conn, identity, self._clock())
            finally:
                conn.execute("COMMIT")
        return QueueStats(messages, used, left)

    async def totals(self) -> StoreTotals:
        """The whole node's queue totals and KeyPackages left per identity, for metrics (read
        at one instant; scans the per-recipient ``queues`` rows and the KeyPackage directory)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self.db.read() as conn:
            conn.execute("BEGIN")
            try:
                messages, size = queues.all_queue_totals(conn)
                left = key_packages.key_packages_left_histogram(conn, self._clock())
            finally:
                conn.execute("COMMIT")
        return StoreTotals(messages, size, left)

    def observe_commits(self, observer: Callable[[int, float], None] | None) -> None:
        """Call ``observer(batch_size, seconds)`` after every group commit's ``COMMIT`` (from
        the committer thread, so it must be thread-safe and quick); None stops it."""
        self._writer.observer = observer

    async def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        init_key: bytes | None = None,
    ) -> None:
        """See :func:`~quicnproto.node.store.key_packages.add_key_package`."""
        limits, now = self._limits, self._clock()
        await self._write(
            lambda conn: key_packages.add_key_package(
                conn, limits, identity, ref, package, last_resort, not_after, now, init_key
            )
        )

    async def claim_key_package(self, identity: bytes) -> tuple[bytes, bool] | None:
        """See :func:`~quicnproto.node.store.key_packages.claim_key_package`."""
        now = self._clock()
        return await self._write(lambda conn: key_packages.claim_key_package(conn, identity, now))

    async def count_key_packages(self, identity: bytes) -> int:
        """Unexpired single-use KeyPackages left for ``identity``."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self.db.read() as conn:
            return key_packages.count_key_packages(conn, identity, self._clock())

    async def purge(self) -> int:
        """See :func:`~quicnproto.node.store.retention.purge`."""
        limits, now = self._limits, self._clock()
        return await self._write(lambda conn: retention.purge(conn, limits, now))

    async def expire_messages(self) -> int:
        """See :func:`~quicnproto.node.store.queues.expire_messages`."""
        limits, now = self._limits, self._clock()
        return await self._write(lambda conn: queues.expire_messages(conn, limits, now))

    async def aclose(self) -> None:
        """Finish queued writes (their callers hear back), then close the connections."""
        with trio.CancelScope(shield=True):
            self._writer.flush()
            await trio.to_thread.run_sync(self._writer.stop)
        await trio.to_thread.run_sync(self.db.close)


def open_sqlite_store(
    path: Path | str,
    limits: StoreLimits | None = None,
    *,
    clock: Callable[[], float] = time.time,
    key_package_check: Callable[[bytes], bool] | None = None,
) -> SQLiteStore:
    """Open (creating and migrating if needed) a SQLite store for use from Trio.

    Args:
        path: the database file.
        limits: quotas, message TTL and row validation bounds.
        clock: wall-clock seconds (enqueue times, expiry, KeyPackage lifetimes).
        key_package_check: see :class:`~quicnproto.node.store.database.Database`.

    Raises:
        StoreError: the database cannot be opened, is corrupt, or is from a newer version.
    """
    return SQLiteStore(Database(path, limits, key_package_check=key_package_check), clock=clock)
