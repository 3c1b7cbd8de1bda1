"""Group commit: many concurrent writes share one transaction and one fsync.

A write queues a :class:`PendingWrite` and its Trio task sleeps. While no batch is in flight,
the event-loop thread takes everything queued (up to :data:`MAX_BATCH`) and runs it at once
(:func:`begin_batch`: ``BEGIN IMMEDIATE``, one ``SAVEPOINT`` per operation, so a refused or
failed operation is rolled back alone; small indexed statements, a few hundred microseconds,
never an fsync); the ``COMMIT`` (:func:`commit_batch`), which waits for the disk, runs in one
long-lived committer thread. Only after that ``COMMIT`` returns is the batch handed back to the
event loop, which wakes each caller with its result (or everyone with :class:`StoreError` if the
``COMMIT`` failed) and starts the next batch from whatever queued up meanwhile. So an answer
never leaves before the fsync holding it (VALIDATION SRV-CR-01..03), a busy node shares one
fsync among many writes, and the SQLite work of the event loop and of a thread do not contend
for the GIL statement by statement.

A write nobody waits for (an acknowledgement a fetch piggybacks, :meth:`GroupCommit.submit`
with no task) does not start a batch of its own at once: it waits up to
:data:`BACKGROUND_DELAY` for a write somebody waits for (the next enqueue, as a rule) and joins
its commit, so a lightly loaded node runs one commit per message instead of two. Whoever must
see it committed waits for its ``on_done`` as before.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from quicnproto.errors import StoreError
from quicnproto.node.store.database import Database
from quicnproto.node.store.types import WriteOp, store_error

MAX_BATCH = 256
"""Most write operations one group commit takes."""

BACKGROUND_DELAY = 0.010
"""Seconds a write nobody waits for may wait for company before it is committed alone."""


class PendingWrite:
    """One write operation waiting for (or done by) a group commit."""

    __slots__ = ("op", "result", "error", "done", "task", "on_done")

    def __init__(self, op: WriteOp) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.task: trio.lowlevel.Task | None = None
        """The Trio caller to reschedule once the operation is done."""
        self.on_done: Callable[[], None] | None = None
        """Called on the event loop once the operation is done, when no caller waits for it."""


def begin_batch(db: Database, batch: list[PendingWrite]) -> sqlite3.Connection | None:
    """First half of a group commit: ``BEGIN IMMEDIATE`` and every operation of ``batch``,
    each in its own ``SAVEPOINT``. Returns the connection holding the open transaction for
    :func:`commit_batch`, or None when the batch already ended (every item done, failed with
    :class:`StoreError`, nothing kept)."""
    try:
        conn = db.acquire()
    except (StoreError, sqlite3.Error) as exc:
        # Every item of the batch must end done, or its caller waits forever.
        for item in batch:
            item.error, item.done = store_error(exc), True
        return None
    try:
        conn.execute("BEGIN IMMEDIATE")
        for item in batch:
            conn.execute("SAVEPOINT op")
            try:
                item.result = item.op(conn)
            except sqlite3.Error as exc:
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (SQLITE_FULL, IOERR, ...):
                    # the earlier operations of the batch are gone too.
                    raise
                conn.execute("ROLLBACK TO op")
                item.error = store_error(exc)
            except Exception as exc:  # refusals and bugs alike undo only this operation
                conn.execute("ROLLBACK TO op")
                item.error = exc
            conn.execute("RELEASE op")
    except BaseException as exc:
        fail_batch(db, conn, batch, exc)
        if not isinstance(exc, sqlite3.Error):
            raise
        return None
    return conn


def commit_batch(db: Database, conn: sqlite3.Connection, batch: list[PendingWrite]) -> None:
    """Second half of a group commit: ``COMMIT`` (the fsync) the transaction
    :func:`begin_batch` left open on ``conn``; every item of ``batch`` ends done."""
    try:
        conn.execute("COMMIT")
    except BaseException as exc:
        fail_batch(db, conn, batch, exc)
        if not isinstance(exc, sqlite3.Error):
            raise
        return
    _end_batch(db, conn, batch)


def fail_batch(
    db: Database, conn: sqlite3.Connection, batch: list[PendingWrite], exc: BaseException
) -> None:
    """Roll the batch's transaction back; every item ends done with :class:`StoreError`."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
    for item in batch:
        item.result, item.error = None, store_error(exc)
    _end_batch(db, conn, batch)


def _end_batch(db: Database, conn: sqlite3.Connection, batch: list[PendingWrite]) -> None:
    for item in batch:
        item.done = True
    try:
        poisoned = conn.in_transaction
    except sqlite3.Error:  # closed under us by close()
        poisoned = True
    if poisoned:
        # Not even ROLLBACK worked: never hand this connection to another caller.
        db.discard(conn)
    else:
        db.release(conn)


class _Committer:
    """One long-lived thread that runs the ``COMMIT`` (and so the fsync) of each group commit,
    so the event loop never waits for the disk."""

    def __init__(self) -> None:
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:
                raise StoreError("store is closed")
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="quicnproto-store-commit", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """Run every queued job, then end the thread (blocks; call from a worker thread)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            job()


class GroupCommit:
    """The writes of a :class:`Database` for Trio callers, as pipelined group commits (see the
    module docstring). :meth:`submit` is called on the event-loop thread."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[PendingWrite] = []
        self._in_flight = False
        self._deferred = False
        """A task will start a batch after :data:`BACKGROUND_DELAY` (background writes)."""
        self._committer = _Committer()
        self._token: trio.lowlevel.TrioToken | None = None
        self.observer: Callable[[int, float], None] | None = None
        """Called as ``observer(batch_size, seconds)`` in the committer thread after each
        ``COMMIT`` (metrics); None when nobody watches."""

    def submit(self, item: PendingWrite) -> None:
        """Queue ``item``; its task is rescheduled (or its ``on_done`` called) once it is done."""
        self._token = trio.lowlevel.current_trio_token()
        self._pending.append(item)
        if self._in_flight:
            return  # goes with the next batch, started when this one ends
        if item.task is None:
            # Nobody waits for it: give a write somebody waits for a moment to take it along.
            if not self._deferred:
                self._deferred = True
                trio.lowlevel.spawn_system_task(self._start_deferred)
            return
        self._start_batch()

    async def _start_deferred(self) -> None:
        try:
            await trio.sleep(BACKGROUND_DELAY)
        finally:
            self._deferred = False
        if self._pending and not self._in_flight:
            self._start_batch()

    def flush(self) -> None:
        """Start a batch now for queued writes that wait for company (on the event loop)."""
        if self._pending and not self._in_flight:
            self._start_batch()

    def _start_batch(self) -> None:
        token = self._token
        assert token is not None
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        self._in_flight = True
        try:
            conn = begin_batch(self._db, batch)
        except Exception as exc:  # already failed every item; never leave a caller asleep
            for item in batch:
                if not item.done:
                    item.result, item.error, item.done = None, store_error(exc), True
            conn = None
        if conn is None:
            # Finished without a COMMIT; the callers still hear back from the loop, as their
            # tasks may not be asleep yet.
            token.run_sync_soon(self._finished, batch)
            return
        try:
            self._committer.submit(partial(self._commit, token, conn, batch))
        except StoreError as exc:  # the store is closing
            fail_batch(self._db, conn, batch, exc)
            token.run_sync_soon(self._finished, batch)

    def _commit(
        self, token: trio.lowlevel.TrioToken, conn: sqlite3.Connection, batch: list[PendingWrite]
    ) -> None:
        # In the committer thread.
        started = time.perf_counter()
        try:
            commit_batch(self._db, conn, batch)
        except BaseException as exc:
            for item in batch:
                if not item.done:
                    item.result, item.error, item.done = None, store_error(exc), True
        observer = self.observer
        if observer is not None:
            with contextlib.suppress(Exception):  # metrics never fail a commit
                observer(len(batch), time.perf_counter() - started)
        try:
            token.run_sync_soon(self._finished, batch)
        except trio.RunFinishedError:
            self._in_flight = False  # nobody is left to wake

    def _finished(self, batch: list[PendingWrite]) -> None:
        # On the event-loop thread, after the batch's COMMIT (or its failure).
        self._in_flight = False
        for item in batch:
            if item.task is not None:
                trio.lowlevel.reschedule(item.task)
            elif item.on_done is not None:
                item.on_done()
        if self._pending:
            self._start_batch()

    def stop(self) -> None:
        """Finish every queued batch, then end the committer thread (blocks)."""
        self._committer.stop()
