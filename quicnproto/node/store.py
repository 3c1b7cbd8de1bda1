"""The node's durable state on SQLite: delivery queues, the commit table and KeyPackages.

Two layers:

* :class:`SQLiteBackend` is synchronous and thread-safe. Every public method is one logical
  operation and is atomic: a read runs in one read transaction; a write runs in its own
  ``SAVEPOINT`` inside a ``BEGIN IMMEDIATE`` transaction that may carry other concurrent writes
  (group commit, see :meth:`SQLiteBackend._transact`), so a crash leaves either all or none of
  it (VALIDATION SRV-CR-01..03). The database runs in WAL mode with ``synchronous=FULL``: a
  write method returns only after the ``COMMIT`` that holds it, so its effect is on disk and
  survives ``kill -9``. Connections come from a small pool, one per call, created with
  ``check_same_thread=False``.
* :class:`ThreadedStore` implements the async :class:`Store` interface the services use. Over a
  :class:`SQLiteBackend`, reads (small indexed queries, each in its own WAL read transaction,
  which never waits for a writer) run directly on the event-loop thread, and writes are
  pipelined group commits (:class:`_GroupCommit`): their statements run on the event-loop thread,
  their ``COMMIT`` and fsync in one long-lived thread, and a caller is woken only after the
  ``COMMIT`` that holds its write. Any other backend runs each call in a Trio worker thread
  (``trio.to_thread.run_sync``, bounded by a ``CapacityLimiter``); it only needs the methods of
  :class:`Backend`.

Schema changes are migrations keyed by ``PRAGMA user_version``: a database newer than this code is
refused with :class:`StoreError` rather than misread.

Opening a store first runs ``PRAGMA quick_check``: a file SQLite itself finds corrupt is refused
with :class:`StoreError` rather than served. Then rows that SQLite can read but that break this
code's invariants (a payload of the wrong type or too large, a sequence number outside its queue,
a KeyPackage that no longer parses, ...) are moved, values intact, into the quarantine tables in
one transaction, and the node starts without them; :attr:`SQLiteBackend.quarantined` counts them
(VALIDATION SRV-CR-05). A quarantined message is reported to its recipient like an expired one.

Queued messages expire ``StoreLimits.message_ttl`` seconds after they were enqueued (VALIDATION
SRV-DEL-07). An expired message is never served, is deleted by :meth:`SQLiteBackend.expire_messages`
(or to make room in a full queue), and its sequence number is never reused. Expiry is not silent:
every sequence number of a queue up to ``last_seq`` was given to exactly one message, and
acknowledgements delete only at or below ``acked_up_to``, so a sequence number above both the
reader's cursor and ``acked_up_to`` with no live message is a lost one; :meth:`SQLiteBackend.fetch_page`
reports how many there are (and the highest) up to where its page reaches.

Tables::

    queues(recipient, last_seq, count, bytes, acked_up_to)  one row per recipient ever enqueued to
    messages(recipient, seq, message_id, payload)    unacknowledged messages, seq > 0 increasing
    sent(sender, message_id, digest, seqs)           idempotency record of every enqueue
    commits(group_id, epoch, sender, message_id)     first Commit per (group, epoch); each
                                                     group's newest kept for good
    key_packages(identity, ref, init_key, package, ...)  the KeyPackage directory
    consumed_key_packages(ref, init_key, not_after)  handed out, never accepted again
    quarantine(source, source_rowid, reason, ...)     rows moved aside at open (SRV-CR-05)
    quarantine_values(quarantine_id, name, value)     their column values, exactly as stored

Contract: methods raise :class:`StoreError` for SQLite failures (including a full disk, which
callers treat as retryable) and :class:`RequestRefused` for requests the data forbids (quota,
stale commit, reused id); nothing else.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import trio

from quicnproto.errors import ErrorCode, QuicnprotoError, StoreError

T = TypeVar("T")

MAX_BATCH = 256
"""Most write operations one group commit takes."""

MAX_SQL_INT = 2**63 - 1
"""SQLite integers are signed 64-bit; larger client values are clamped to this."""

MAX_STORED_ID_SIZE = 255
"""Longest message id or KeyPackageRef a valid row holds (the node accepts far less)."""


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


def _store_error(exc: BaseException) -> StoreError:
    """``exc`` as the :class:`StoreError` callers see, keeping the SQLite error as its cause
    (``sqlite_errorcode`` tells a full disk, ``SQLITE_FULL``, from other failures)."""
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"sqlite: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _switch_to_wal(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another opener holds the lock.

    Two connections switching a new file at once both hold a shared lock and want an exclusive
    one; SQLite breaks that deadlock by answering one of them SQLITE_BUSY at once, without the
    busy handler, so the wait happens here.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(0.005)


class _PendingWrite:
    """One write operation waiting for (or done by) a group commit."""

    __slots__ = ("op", "result", "error", "done", "wake", "task", "on_done")

    def __init__(self, op: Callable[[sqlite3.Connection], Any]) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.wake: threading.Event | None = None
        """Set when the operation is done, or when its caller should try to lead a batch (only
        for the thread-blocking :meth:`SQLiteBackend._transact`; Trio callers use ``task``)."""
        self.task: trio.lowlevel.Task | None = None
        """The Trio caller to reschedule once the operation is done (see :class:`_GroupCommit`)."""
        self.on_done: Callable[[], None] | None = None
        """Called on the event loop once the operation is done, when no caller waits for it."""


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
class StoreLimits:
    """The quotas the store enforces inside its transactions, and what a valid row holds."""

    queue_max_messages: int = 10_000
    queue_max_bytes: int = 100 * 1024 * 1024
    key_packages_per_identity: int = 200
    dedupe_retention: float = 7 * 24 * 3600.0
    message_ttl: float = 31 * 24 * 3600.0
    """Seconds after its enqueue a message expires (VALIDATION SRV-DEL-07)."""
    max_payload_size: int = 4 * 1024 * 1024
    """Largest payload a valid message row holds; larger rows are quarantined at open."""
    max_key_package_size: int = 64 * 1024
    """Largest package a valid KeyPackage row holds; larger rows are quarantined at open."""
    key_package_max_lifetime: float = 90 * 24 * 3600.0
    """Longest KeyPackage lifetime accepted at upload: a consumed package whose own end of
    lifetime is unknown (rows from before schema version 4) is forgotten this long after its
    consumption, as it could no longer be accepted again by then."""


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # user_version 1
    (
        """CREATE TABLE queues (
            recipient BLOB PRIMARY KEY,
            last_seq INTEGER NOT NULL,
            count INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        )""",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            recipient BLOB NOT NULL,
            seq INTEGER NOT NULL,
            message_id BLOB NOT NULL,
            payload BLOB NOT NULL,
            enqueued_at REAL NOT NULL
        )""",
        "CREATE UNIQUE INDEX messages_by_recipient ON messages(recipient, seq)",
        """CREATE TABLE sent (
            sender BLOB NOT NULL,
            message_id BLOB NOT NULL,
            digest BLOB NOT NULL,
            seqs TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (sender, message_id)
        )""",
        "CREATE INDEX sent_by_age ON sent(created_at)",
        """CREATE TABLE commits (
            group_id BLOB NOT NULL,
            epoch INTEGER NOT NULL,
            sender BLOB NOT NULL,
            message_id BLOB NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (group_id, epoch)
        )""",
        """CREATE TABLE key_packages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            identity BLOB NOT NULL,
            ref BLOB NOT NULL UNIQUE,
            package BLOB NOT NULL,
            last_resort INTEGER NOT NULL,
            not_after INTEGER NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX key_packages_by_identity ON key_packages(identity, last_resort, id)",
        """CREATE TABLE consumed_key_packages (
            ref BLOB PRIMARY KEY,
            consumed_at REAL NOT NULL
        )""",
    ),
    # user_version 2: KeyPackages are also deduplicated by HPKE init_key (VALIDATION SRV-KP-01);
    # rows from version 1 keep a NULL init_key, which the unique index does not compare.
    (
        "ALTER TABLE key_packages ADD COLUMN init_key BLOB",
        "CREATE UNIQUE INDEX key_packages_by_init_key ON key_packages(init_key)",
        "ALTER TABLE consumed_key_packages ADD COLUMN init_key BLOB",
        "CREATE INDEX consumed_key_packages_by_init_key ON consumed_key_packages(init_key)",
    ),
    # user_version 3: message expiry reported as a gap (SRV-DEL-07) and quarantine (SRV-CR-05).
    # Up to version 2 only acknowledgements deleted messages, and they delete a prefix, so a
    # queue's acknowledged point is just below its oldest message (or its last seq when empty).
    (
        "ALTER TABLE queues ADD COLUMN acked_up_to INTEGER NOT NULL DEFAULT 0",
        """UPDATE queues SET acked_up_to = COALESCE(
            (SELECT MIN(m.seq) - 1 FROM messages m WHERE m.recipient = queues.recipient),
            last_seq
        )""",
        "CREATE INDEX messages_by_age ON messages(enqueued_at)",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_rowid INTEGER,
            reason TEXT NOT NULL,
            quarantined_at REAL NOT NULL
        )""",
        # ``value`` has no declared type, so SQLite stores each value exactly as it was.
        """CREATE TABLE quarantine_values (
            quarantine_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            value,
            PRIMARY KEY (quarantine_id, name)
        )""",
    ),
    # user_version 4: the purge forgets what no longer protects anything: a consumed
    # KeyPackage once its lifetime is over (re-uploading it is refused as expired anyway),
    # and Commits of an epoch older than the group's newest (only the newest decides STALE).
    (
        "ALTER TABLE consumed_key_packages ADD COLUMN not_after INTEGER",
        "CREATE INDEX consumed_key_packages_by_lifetime"
        " ON consumed_key_packages(not_after, consumed_at)",
        "CREATE INDEX commits_by_age ON commits(created_at)",
        "CREATE INDEX key_packages_by_lifetime ON key_packages(not_after)",
    ),
    # user_version 5: who a consumed KeyPackage belonged to, so a Welcome naming its ref can
    # be routed to them (SRV-KP-06); older rows keep NULL and route nowhere.
    ("ALTER TABLE consumed_key_packages ADD COLUMN identity BLOB",),
)
"""Schema migrations; entry ``i`` takes the database from ``user_version`` i to i + 1."""

SCHEMA_VERSION = len(MIGRATIONS)


def enqueue_digest(
    recipients: Sequence[bytes],
    payload: bytes,
    commit: tuple[bytes, int] | None = None,
    welcome: bytes | None = None,
) -> bytes:
    """What an idempotent retry must repeat exactly: the recipients, the payload, the
    ``(group_id, epoch)`` a Commit claims and its Welcome (absent for other messages)."""
    h = hashlib.sha256()
    h.update(len(recipients).to_bytes(4, "big"))
    for r in recipients:
        h.update(len(r).to_bytes(4, "big") + r)
    h.update(payload)
    if commit is not None:
        group_id, epoch = commit
        h.update(b"commit" + len(group_id).to_bytes(4, "big") + group_id)
        h.update(epoch.to_bytes(8, "big"))
    if welcome is not None:
        h.update(b"welcome" + len(welcome).to_bytes(4, "big") + welcome)
    return h.digest()


class Backend(Protocol):
    """The synchronous operations a store backend provides (each one transaction)."""

    def enqueue(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        now: float,
    ) -> tuple[int, ...]: ...

    def fetch(
        self,
        recipient: bytes,
        after_seq: int,
        limit: int,
        max_bytes: int | None = None,
        now: float | None = None,
    ) -> list[StoredMessage]: ...

    def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None, now: float
    ) -> FetchedPage: ...

    def ack(self, recipient: bytes, up_to_seq: int) -> int: ...

    def count_queue(self, recipient: bytes) -> int: ...

    def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        now: float,
        init_key: bytes | None = None,
    ) -> None: ...

    def claim_key_package(self, identity: bytes, now: float) -> tuple[bytes, bool] | None: ...

    def count_key_packages(self, identity: bytes, now: float) -> int: ...

    def purge(self, now: float) -> int: ...

    def expire_messages(self, now: float) -> int: ...

    def close(self) -> None: ...


class SQLiteBackend:
    """SQLite implementation of :class:`Backend` (see the module docstring).

    Args:
        path: the database file; created with its schema when missing.
        limits: quotas enforced inside transactions.
        key_package_check: whether a stored KeyPackage still parses; rows it rejects are
            quarantined at open (the node passes an ``mls`` decoder; None checks columns only).

    Raises:
        StoreError: the file cannot be opened, SQLite reports it corrupt (``quick_check``), or
            its schema is newer than this code.
    """

    def __init__(
        self,
        path: Path | str,
        limits: StoreLimits | None = None,
        *,
        key_package_check: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or StoreLimits()
        self.quarantined = 0
        """Rows moved to quarantine when this store was opened (VALIDATION SRV-CR-05)."""
        self._pool: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writers queue here rather than in SQLite's busy handler, whose sleeps back off to
        # 100 ms; WAL readers never wait for it. The holder commits everything pending.
        self._write_lock = threading.Lock()
        self._pending: list[_PendingWrite] = []
        self._closed = False
        with self._guard():
            conn = self._acquire()
            try:
                _switch_to_wal(conn)
                self._quick_check(conn)
                self._migrate(conn)
                self.quarantined = self._quarantine_bad_rows(conn, key_package_check)
            finally:
                self._release(conn)

    # -- connections and transactions

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            if self._pool:
                return self._pool.pop()
        conn = self._connect()
        with self._lock:
            self._all.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._pool.append(conn)

    def _discard(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {type(exc).__name__}: {exc}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            conn = self._acquire()
            try:
                yield conn
            finally:
                self._release(conn)

    def _transact(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` as one atomic, durable write and return its result.

        Group commit: concurrent callers append their operation to a queue; whoever holds the
        write lock runs every queued operation in one ``BEGIN IMMEDIATE`` transaction, each
        inside its own ``SAVEPOINT`` (so a refused or failed operation is rolled back alone),
        then commits once, paying one fsync for the whole batch. A caller returns only after
        the ``COMMIT`` that made its operation durable; if that ``COMMIT`` fails, every
        operation of the batch fails with :class:`StoreError` and none is acknowledged.

        Callers that do not lead wait on their own event, not on the write lock: the leader
        wakes each caller of its batch as soon as the batch is done, and whoever releases the
        write lock wakes the oldest waiting caller to lead the next batch. (Waiting on the lock
        made a caller whose operation was already committed sit through the next batch's
        fsync too, or several, as the lock is not fair.)
        """
        item = _PendingWrite(op)
        wake = item.wake = threading.Event()
        with self._lock:
            self._pending.append(item)
        while True:
            wake.clear()
            if item.done:
                break
            if not self._write_lock.acquire(blocking=False):
                wake.wait()
                continue
            batch: list[_PendingWrite] = []
            try:
                if not item.done:
                    with self._lock:
                        batch = self._pending[:MAX_BATCH]
                        del self._pending[:MAX_BATCH]
                    self._run_batch(batch)
            finally:
                self._write_lock.release()
                for done in batch:
                    if done.wake is not None:
                        done.wake.set()
                with self._lock:
                    if self._pending and self._pending[0].wake is not None:
                        self._pending[0].wake.set()
        if item.error is not None:
            raise item.error
        return cast(T, item.result)

    def _run_batch(self, batch: list[_PendingWrite]) -> None:
        conn = self._begin_batch(batch)
        if conn is not None:
            self._commit_batch(conn, batch)

    def _begin_batch(self, batch: list[_PendingWrite]) -> sqlite3.Connection | None:
        """First half of a group commit: ``BEGIN IMMEDIATE`` and every operation of ``batch``,
        each in its own ``SAVEPOINT``. Returns the connection holding the open transaction for
        :meth:`_commit_batch`, or None when the batch already ended (every item done, failed
        with :class:`StoreError`, nothing kept)."""
        try:
            conn = self._acquire()
        except (StoreError, sqlite3.Error) as exc:
            # Every item of the batch must end done, or its caller waits forever.
            for item in batch:
                item.error, item.done = _store_error(exc), True
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
                    item.error = _store_error(exc)
                except Exception as exc:  # refusals and bugs alike undo only this operation
                    conn.execute("ROLLBACK TO op")
                    item.error = exc
                conn.execute("RELEASE op")
        except BaseException as exc:
            self._fail_batch(conn, batch, exc)
            if not isinstance(exc, sqlite3.Error):
                raise
            return None
        return conn

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_PendingWrite]) -> None:
        """Second half of a group commit: ``COMMIT`` (the fsync) the transaction
        :meth:`_begin_batch` left open on ``conn``; every item of ``batch`` ends done."""
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            self._fail_batch(conn, batch, exc)
            if not isinstance(exc, sqlite3.Error):
                raise
            return
        self._end_batch(conn, batch)

    def _fail_batch(
        self, conn: sqlite3.Connection, batch: list[_PendingWrite], exc: BaseException
    ) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        for item in batch:
            item.result, item.error = None, _store_error(exc)
        self._end_batch(conn, batch)

    def _end_batch(self, conn: sqlite3.Connection, batch: list[_PendingWrite]) -> None:
        for item in batch:
            item.done = True
        try:
            poisoned = conn.in_transaction
        except sqlite3.Error:  # closed under us by close()
            poisoned = True
        if poisoned:
            # Not even ROLLBACK worked: never hand this connection to another caller.
            self._discard(conn)
        else:
            self._release(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # One migration per write transaction, and the version is read inside it: processes
        # opening one new file at the same moment never run a migration twice.
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"database schema version {version} is newer than this node"
                        f" ({SCHEMA_VERSION})"
                    )
                if version == SCHEMA_VERSION:
                    conn.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(version) + 1}")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        """Refuse a file SQLite itself reports corrupt (``PRAGMA quick_check``)."""
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"database is corrupt: quick_check failed: {exc}") from exc
        if rows != [("ok",)]:
            problem = str(rows[0][0]) if rows else "no answer"
            raise StoreError(
                f"database is corrupt: quick_check reported {len(rows)} problem(s),"
                f" first: {problem[:200]}"
            )

    def _quarantine_bad_rows(
        self, conn: sqlite3.Connection, key_package_check: Callable[[bytes], bool] | None
    ) -> int:
        """Move rows that break the store's invariants into the quarantine tables; returns how
        many moved. One write transaction; values are copied by SQL, never read into Python
        (a payload is never logged or decoded)."""
        limits = self.limits
        message_rules = (
            ("recipient", "typeof(recipient) != 'blob' OR length(recipient) = 0"),
            (
                "seq",
                "typeof(seq) != 'integer' OR seq < 1 OR seq > COALESCE((SELECT q.last_seq"
                " FROM queues q WHERE q.recipient = messages.recipient), 0)",
            ),
            (
                "message_id",
                "typeof(message_id) != 'blob' OR length(message_id) = 0"
                f" OR length(message_id) > {MAX_STORED_ID_SIZE}",
            ),
            (
                "payload",
                f"typeof(payload) != 'blob' OR length(payload) > {int(limits.max_payload_size)}",
            ),
            ("enqueued_at", "typeof(enqueued_at) NOT IN ('integer', 'real')"),
        )
        key_package_rules = (
            ("identity", "typeof(identity) != 'blob' OR length(identity) = 0"),
            (
                "ref",
                f"typeof(ref) != 'blob' OR length(ref) = 0 OR length(ref) > {MAX_STORED_ID_SIZE}",
            ),
            (
                "package",
                "typeof(package) != 'blob' OR length(package) = 0"
                f" OR length(package) > {int(limits.max_key_package_size)}",
            ),
            ("last_resort", "typeof(last_resort) != 'integer' OR last_resort NOT IN (0, 1)"),
            ("not_after", "typeof(not_after) != 'integer'"),
            ("init_key", "init_key IS NOT NULL AND typeof(init_key) != 'blob'"),
        )
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            bad: dict[tuple[str, int], str] = {}
            checks = (("messages", message_rules), ("key_packages", key_package_rules))
            # Table names, columns and conditions below are this module's constants.
            for table, rules in checks:
                for column, condition in rules:
                    query = f"SELECT rowid FROM {table} WHERE {condition}"  # noqa: S608
                    for (rowid,) in conn.execute(query):
                        bad.setdefault((table, int(rowid)), f"{table}.{column}")
            if key_package_check is not None:
                rows = conn.execute("SELECT rowid, package FROM key_packages").fetchall()
                for rowid, package in rows:
                    key = ("key_packages", int(rowid))
                    if key not in bad and not key_package_check(bytes(package)):
                        bad[key] = "key_packages.package does not parse"
            columns = {
                table: [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]
                for table in ("messages", "key_packages")
            }
            for (table, rowid), reason in sorted(bad.items()):
                qid = conn.execute(
                    "INSERT INTO quarantine (source, source_rowid, reason, quarantined_at)"
                    " VALUES (?, ?, ?, ?)",
                    (table, rowid, reason, now),
                ).lastrowid
                for name in columns[table]:
                    copy = (
                        "INSERT INTO quarantine_values (quarantine_id, name, value) SELECT ?, ?, "
                    )
                    copy += f'"{name}" FROM {table} WHERE rowid = ?'
                    conn.execute(copy, (qid, name, rowid))
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))  # noqa: S608
            if any(table == "messages" for table, _ in bad):
                # Queue totals follow the rows that remain (quota accounting stays exact).
                conn.execute(
                    "UPDATE queues SET"
                    " count = (SELECT COUNT(*) FROM messages m WHERE m.recipient = queues.recipient),"
                    " bytes = (SELECT COALESCE(SUM(LENGTH(m.payload)), 0) FROM messages m"
                    " WHERE m.recipient = queues.recipient)"
                )
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(bad)

    def quarantined_rows(self) -> list[tuple[str, str]]:
        """``(source table, reason)`` of every quarantined row, oldest first (no values)."""
        with self._read() as conn:
            rows = conn.execute("SELECT source, reason FROM quarantine ORDER BY id").fetchall()
        return [(str(source), str(reason)) for source, reason in rows]

    def schema_version(self) -> int:
        """The database's ``user_version``."""
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close every connection; later calls raise :class:`StoreError`."""
        with self._lock:
            self._closed = True
            conns, self._all, self._pool = self._all, [], []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- delivery

    def enqueue(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        now: float,
    ) -> tuple[int, ...]:
        """Store ``payload`` in every recipient's queue, or in none.

        A retry of an earlier (sender, message_id) with the same recipients, payload and commit
        stores nothing and returns the original sequence numbers (VALIDATION SRV-DEL-02). With
        ``commit=(group_id, epoch)``, only the first message for that pair is accepted, and none
        for an epoch older than one already decided (RFC 9420 §14; SRV-DEL-05); the table
        survives restarts (SRV-CR-06).

        Raises:
            RequestRefused: CONFLICT (id reused for different content), STALE (another Commit
                won this epoch or a later one), QUOTA_EXCEEDED (some recipient's queue is full).
            StoreError: SQLite failed; nothing was stored.
        """
        return self._transact(
            self._enqueue_op(sender, recipients, payload, message_id, commit, now)
        )

    def _enqueue_op(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        now: float,
    ) -> Callable[[sqlite3.Connection], tuple[int, ...]]:
        """The write operation of :meth:`enqueue` (run by a group commit)."""
        bundle = self._bundle_op(sender, recipients, payload, message_id, commit, None, now)

        def op(conn: sqlite3.Connection) -> tuple[int, ...]:
            return bundle(conn)[0]

        return op

    def _bundle_op(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        welcome: tuple[bytes, Sequence[bytes]] | None,
        now: float,
    ) -> Callable[[sqlite3.Connection], tuple[tuple[int, ...], tuple[bytes, ...]]]:
        """The write operation of an enqueue, with a Commit's Welcome when ``welcome`` is
        ``(payload, KeyPackageRefs)``: the Welcome goes, in the same transaction and only if
        the Commit wins, to the identity whose KeyPackage the node handed out under each ref
        (VALIDATION SRV-DEL-06, SRV-KP-06). Returns the sequence numbers (the recipients',
        then the Welcome recipients') and every queue written to."""
        digest = enqueue_digest(recipients, payload, commit, None if welcome is None else welcome[0])

        def op(conn: sqlite3.Connection) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
            row = conn.execute(
                "SELECT digest, seqs FROM sent WHERE sender = ? AND message_id = ?",
                (sender, message_id),
            ).fetchone()
            if row is not None:
                if not hmac.compare_digest(row[0], digest):
                    raise RequestRefused(ErrorCode.CONFLICT, "message id reused")
                return tuple(int(s) for s in json.loads(row[1])), ()
            if commit is not None:
                group_id, epoch = commit
                # The first Commit for an epoch wins; one for that epoch or an older one
                # arriving later is stale (the group has already moved past it).
                (decided,) = conn.execute(
                    "SELECT MAX(epoch) FROM commits WHERE group_id = ?", (group_id,)
                ).fetchone()
                if decided is not None and min(epoch, MAX_SQL_INT) <= decided:
                    raise RequestRefused(ErrorCode.STALE, "epoch already committed")
                conn.execute(
                    "INSERT INTO commits (group_id, epoch, sender, message_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (group_id, min(epoch, MAX_SQL_INT), sender, message_id, now),
                )
            seqs: list[int] = []
            size = len(payload)
            for recipient in recipients:
                # The queue's counters, moved for this message in the same statement (a refusal
                # below rolls the savepoint back, counters included).
                seq, count, used = conn.execute(
                    "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 1, ?)"
                    " ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + 1,"
                    " count = count + 1, bytes = bytes + excluded.bytes"
                    " RETURNING last_seq, count, bytes",
                    (recipient, size),
                ).fetchone()
                if self._over_quota(count - 1, used - size, size) and self._expire_queue(
                    conn, recipient, now
                ):
                    # Expired messages no longer count against the quota (SRV-DEL-07).
                    count, used = conn.execute(
                        "SELECT count, bytes FROM queues WHERE recipient = ?", (recipient,)
                    ).fetchone()
                if self._over_quota(count - 1, used - size, size):
                    raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "recipient queue full")
                conn.execute(
                    "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (recipient, seq, message_id, payload, now),
                )
                seqs.append(seq)
            written = list(recipients)
            if welcome is not None:
                data, refs = welcome
                joiners = [self._key_package_holder(conn, ref) for ref in refs]
                for joiner in dict.fromkeys(joiners):
                    seqs.append(self._append(conn, joiner, message_id, data, now))
                    written.append(joiner)
            conn.execute(
                "INSERT INTO sent (sender, message_id, digest, seqs, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (sender, message_id, digest, json.dumps(seqs), now),
            )
            return tuple(seqs), tuple(written)

        return op

    def _key_package_holder(self, conn: sqlite3.Connection, ref: bytes) -> bytes:
        """The identity whose KeyPackage the node handed out (or still holds as last resort)
        under ``ref``.

        Raises:
            RequestRefused: INVALID for a ref the node never handed out (SRV-KP-06).
        """
        row = conn.execute(
            "SELECT identity FROM consumed_key_packages WHERE ref = ? AND identity IS NOT NULL",
            (ref,),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT identity FROM key_packages WHERE ref = ? AND last_resort = 1", (ref,)
            ).fetchone()
        if row is None:
            raise RequestRefused(ErrorCode.INVALID, "Welcome for an unknown KeyPackage")
        return bytes(row[0])

    def _append(
        self, conn: sqlite3.Connection, recipient: bytes, message_id: bytes, data: bytes, now: float
    ) -> int:
        """Appends one message to ``recipient``'s queue (quota checked); returns its seq."""
        size = len(data)
        seq, count, used = conn.execute(
            "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 1, ?)"
            " ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + 1,"
            " count = count + 1, bytes = bytes + excluded.bytes"
            " RETURNING last_seq, count, bytes",
            (recipient, size),
        ).fetchone()
        if self._over_quota(count - 1, used - size, size):
            raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "recipient queue full")
        conn.execute(
            "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (recipient, seq, message_id, data, now),
        )
        return int(seq)

    def _over_quota(self, count: int, used: int, size: int) -> bool:
        return (
            count + 1 > self.limits.queue_max_messages or used + size > self.limits.queue_max_bytes
        )

    def _expire_queue(self, conn: sqlite3.Connection, recipient: bytes, now: float) -> int:
        """Delete ``recipient``'s expired messages inside the caller's transaction."""
        return self._delete_from_queue(
            conn, recipient, "enqueued_at <= ?", now - self.limits.message_ttl
        )

    @staticmethod
    def _delete_from_queue(
        conn: sqlite3.Connection, recipient: bytes, condition: str, value: float
    ) -> int:
        """Delete ``recipient``'s messages matching ``condition`` (an SQL fragment with one
        ``?`` for ``value``) and move the queue's counters; returns how many went."""
        count, used = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages"  # noqa: S608
            f" WHERE recipient = ? AND {condition}",  # ``condition`` is one of our fixed fragments
            (recipient, value),
        ).fetchone()
        if count:
            conn.execute(
                f"DELETE FROM messages WHERE recipient = ? AND {condition}",  # noqa: S608
                (recipient, value),
            )
            conn.execute(
                "UPDATE queues SET count = count - ?, bytes = bytes - ? WHERE recipient = ?",
                (count, used, recipient),
            )
        return int(count)

    def fetch(
        self,
        recipient: bytes,
        after_seq: int,
        limit: int,
        max_bytes: int | None = None,
        now: float | None = None,
    ) -> list[StoredMessage]:
        """The messages of :meth:`fetch_page` (expiry applies only when ``now`` is given)."""
        return list(
            self.fetch_page(
                recipient, after_seq, limit, max_bytes, float("-inf") if now is None else now
            ).messages
        )

    def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None, now: float
    ) -> FetchedPage:
        """Up to ``limit`` live messages with ``seq > after_seq``, oldest first, and the gap of
        expired ones before the page's end (see :class:`FetchedPage`); deletes nothing.

        Messages enqueued ``message_ttl`` or more seconds before ``now`` are never returned
        (VALIDATION SRV-DEL-07). With ``max_bytes``, stops before the payloads would exceed it,
        but always returns the first message there is (so any message can be fetched, and an
        answer stays bounded). One read transaction, so the queue's counters and its messages
        are read at the same instant.
        """
        after = min(after_seq, MAX_SQL_INT)
        cutoff = now - self.limits.message_ttl
        found: list[StoredMessage] = []
        used = 0
        cut_short = False
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                queue = conn.execute(
                    "SELECT last_seq, acked_up_to FROM queues WHERE recipient = ?", (recipient,)
                ).fetchone()
                if queue is None:
                    return FetchedPage(())
                rows = conn.execute(
                    "SELECT seq, message_id, payload FROM messages"
                    " WHERE recipient = ? AND seq > ? AND enqueued_at > ? ORDER BY seq LIMIT ?",
                    (recipient, after, cutoff, limit + 1),
                )
                try:
                    for seq, message_id, payload in rows:
                        used += len(payload)
                        if len(found) >= limit or (
                            found and max_bytes is not None and used > max_bytes
                        ):
                            cut_short = True
                            break
                        found.append(StoredMessage(int(seq), bytes(message_id), bytes(payload)))
                finally:
                    rows.close()  # end the read now, not when the pooled connection is reused
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        last_seq, acked_up_to = int(queue[0]), int(queue[1])
        # Every seq in (low, end] went to one message; one neither returned nor acknowledged
        # is lost (expired, or quarantined as corrupt).
        low = max(after, acked_up_to)
        end = (found[-1].seq if found else low) if cut_short else last_seq
        returned = {m.seq for m in found if m.seq > low}
        missing = max(0, end - low - len(returned))
        highest = 0
        if missing:
            highest = end
            while highest in returned:
                highest -= 1
        return FetchedPage(tuple(found), missing, highest)

    def ack(self, recipient: bytes, up_to_seq: int) -> int:
        """Delete every message with ``seq <= up_to_seq``; returns how many went."""
        return self._transact(self._ack_op(recipient, up_to_seq))

    def _ack_op(self, recipient: bytes, up_to_seq: int) -> Callable[[sqlite3.Connection], int]:
        """The write operation of :meth:`ack` (run by a group commit)."""
        up_to = min(up_to_seq, MAX_SQL_INT)

        def op(conn: sqlite3.Connection) -> int:
            # Remember the acknowledged point (never past the last seq given out), so a gap
            # below it is not reported as lost (SRV-DEL-07).
            conn.execute(
                "UPDATE queues SET acked_up_to = MAX(acked_up_to, MIN(?, last_seq))"
                " WHERE recipient = ?",
                (up_to, recipient),
            )
            return self._delete_from_queue(conn, recipient, "seq <= ?", up_to)

        return op

    def count_queue(self, recipient: bytes) -> int:
        """Messages waiting for ``recipient``."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT count FROM queues WHERE recipient = ?", (recipient,)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- KeyPackages

    def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        now: float,
        init_key: bytes | None = None,
    ) -> None:
        """Add a validated KeyPackage for ``identity``.

        Re-uploading a package still stored is a no-op; one already handed out is refused
        (VALIDATION SRV-KP-04), and so is another package reusing a stored or handed-out
        ``init_key`` (SRV-KP-01). A new last-resort package replaces the previous one.

        Raises:
            RequestRefused: CONFLICT (already consumed, init key reused, or stored for another
                identity), QUOTA_EXCEEDED (too many stored for this identity).
            StoreError: SQLite failed.
        """
        return self._transact(
            self._add_key_package_op(identity, ref, package, last_resort, not_after, now, init_key)
        )

    def _add_key_package_op(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        now: float,
        init_key: bytes | None = None,
    ) -> Callable[[sqlite3.Connection], None]:
        """The write operation of :meth:`add_key_package` (run by a group commit)."""

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM consumed_key_packages WHERE ref = ?", (ref,)).fetchone():
                raise RequestRefused(ErrorCode.CONFLICT, "key package already used")
            existing = conn.execute(
                "SELECT identity FROM key_packages WHERE ref = ?", (ref,)
            ).fetchone()
            if existing is not None:
                if bytes(existing[0]) != identity:
                    raise RequestRefused(ErrorCode.CONFLICT, "key package already stored")
                return
            if init_key is not None and (
                conn.execute(
                    "SELECT 1 FROM consumed_key_packages WHERE init_key = ?", (init_key,)
                ).fetchone()
                or conn.execute(
                    "SELECT 1 FROM key_packages WHERE init_key = ?", (init_key,)
                ).fetchone()
            ):
                raise RequestRefused(ErrorCode.CONFLICT, "init key already used")
            conn.execute(
                "DELETE FROM key_packages WHERE identity = ? AND not_after < ?",
                (identity, int(now)),
            )
            if last_resort:
                conn.execute(
                    "DELETE FROM key_packages WHERE identity = ? AND last_resort = 1", (identity,)
                )
            (stored,) = conn.execute(
                "SELECT COUNT(*) FROM key_packages WHERE identity = ?", (identity,)
            ).fetchone()
            if stored >= self.limits.key_packages_per_identity:
                raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "too many key packages")
            conn.execute(
                "INSERT INTO key_packages"
                " (identity, ref, package, last_resort, not_after, created_at, init_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    identity,
                    ref,
                    package,
                    int(last_resort),
                    min(not_after, MAX_SQL_INT),
                    now,
                    init_key,
                ),
            )

        return op

    def claim_key_package(self, identity: bytes, now: float) -> tuple[bytes, bool] | None:
        """Hand out one unexpired KeyPackage of ``identity`` exactly once.

        The oldest single-use package is deleted in the same transaction that reads it, so
        concurrent claimers never get the same one (VALIDATION SRV-KP-02). When none is left, the
        last-resort package is returned and kept (RFC 9420 §16.8; SRV-KP-03). Expired packages
        are never served (SRV-KP-05).

        Returns:
            ``(package, last_resort)``, or None when nothing is available.
        """
        return self._transact(self._claim_key_package_op(identity, now))

    def _claim_key_package_op(
        self, identity: bytes, now: float
    ) -> Callable[[sqlite3.Connection], tuple[bytes, bool] | None]:
        """The write operation of :meth:`claim_key_package` (run by a group commit)."""

        def op(conn: sqlite3.Connection) -> tuple[bytes, bool] | None:
            conn.execute(
                "DELETE FROM key_packages WHERE identity = ? AND not_after < ?",
                (identity, int(now)),
            )
            row = conn.execute(
                "SELECT id, ref, package, init_key, not_after FROM key_packages"
                " WHERE identity = ? AND last_resort = 0 ORDER BY id LIMIT 1",
                (identity,),
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM key_packages WHERE id = ?", (row[0],))
                conn.execute(
                    "INSERT OR IGNORE INTO consumed_key_packages"
                    " (ref, consumed_at, init_key, not_after, identity) VALUES (?, ?, ?, ?, ?)",
                    (row[1], now, row[3], row[4], identity),
                )
                return bytes(row[2]), False
            row = conn.execute(
                "SELECT package FROM key_packages WHERE identity = ? AND last_resort = 1",
                (identity,),
            ).fetchone()
            if row is not None:
                return bytes(row[0]), True
            return None

        return op

    def count_key_packages(self, identity: bytes, now: float) -> int:
        """Unexpired single-use KeyPackages left for ``identity``."""
        with self._read() as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM key_packages"
                " WHERE identity = ? AND last_resort = 0 AND not_after >= ?",
                (identity, int(now)),
            ).fetchone()
        return int(count)

    def purge(self, now: float) -> int:
        """Forget what no longer protects anything; returns how many rows went.

        Idempotency records older than ``dedupe_retention``; expired KeyPackages (never served
        anyway); consumed KeyPackages whose lifetime is over (an upload of one again is refused
        as expired); and Commit records older than ``dedupe_retention`` for an epoch below
        their group's newest (first-Commit-wins compares with the newest only, RFC 9420 §14).
        """
        return self._transact(self._purge_op(now))

    def _purge_op(self, now: float) -> Callable[[sqlite3.Connection], int]:
        """The write operation of :meth:`purge` (run by a group commit)."""

        def op(conn: sqlite3.Connection) -> int:
            old = now - self.limits.dedupe_retention
            removed = conn.execute("DELETE FROM sent WHERE created_at < ?", (old,)).rowcount
            removed += conn.execute(
                "DELETE FROM key_packages WHERE not_after < ?", (int(now),)
            ).rowcount
            removed += conn.execute(
                "DELETE FROM consumed_key_packages WHERE not_after < ?"
                " OR (not_after IS NULL AND consumed_at < ?)",
                (int(now), now - self.limits.key_package_max_lifetime),
            ).rowcount
            removed += conn.execute(
                "DELETE FROM commits WHERE created_at < ? AND epoch <"
                " (SELECT MAX(newest.epoch) FROM commits AS newest"
                " WHERE newest.group_id = commits.group_id)",
                (old,),
            ).rowcount
            return int(removed)

        return op

    def expire_messages(self, now: float) -> int:
        """Delete every message enqueued ``message_ttl`` or more seconds before ``now``;
        returns how many went (VALIDATION SRV-DEL-07). Queues keep their ``last_seq``, so
        sequence numbers are never reused, and the loss shows in later fetches."""
        return self._transact(self._expire_messages_op(now))

    def _expire_messages_op(self, now: float) -> Callable[[sqlite3.Connection], int]:
        """The write operation of :meth:`expire_messages` (run by a group commit)."""
        cutoff = now - self.limits.message_ttl

        def op(conn: sqlite3.Connection) -> int:
            per_queue = conn.execute(
                "SELECT recipient, COUNT(*), COALESCE(SUM(LENGTH(payload)), 0)"
                " FROM messages INDEXED BY messages_by_age"
                " WHERE enqueued_at <= ? GROUP BY recipient",
                (cutoff,),
            ).fetchall()
            if not per_queue:
                return 0
            conn.execute("DELETE FROM messages WHERE enqueued_at <= ?", (cutoff,))
            for recipient, count, used in per_queue:
                conn.execute(
                    "UPDATE queues SET count = count - ?, bytes = bytes - ? WHERE recipient = ?",
                    (count, used, recipient),
                )
            return sum(int(count) for _, count, _ in per_queue)

        return op


class Store(Protocol):
    """The async store interface the node's services use."""

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

    async def count_queue(self, recipient: bytes) -> int: ...

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


class _GroupCommit:
    """The writes of a :class:`SQLiteBackend` for Trio callers, as pipelined group commits.

    A write queues a :class:`_PendingWrite` and its task sleeps. While no batch is in flight,
    the event-loop thread takes everything queued (up to :data:`MAX_BATCH`) and runs it at once
    (:meth:`SQLiteBackend._begin_batch`: ``BEGIN IMMEDIATE``, one ``SAVEPOINT`` per operation;
    small indexed statements, a few hundred microseconds, never an fsync); the ``COMMIT``, which
    waits for the disk, runs in the committer thread. Only after that ``COMMIT`` returns is the
    batch handed back to the event loop, which wakes each caller with its result (or everyone
    with :class:`StoreError` if the ``COMMIT`` failed) and starts the next batch from whatever
    queued up meanwhile. So an answer never leaves before the fsync holding it, a busy node
    shares one fsync among many writes, and the SQLite work of the event loop and of a thread
    no longer contend for the GIL statement by statement.
    """

    def __init__(self, backend: SQLiteBackend) -> None:
        self._backend = backend
        self._pending: list[_PendingWrite] = []
        self._in_flight = False
        self._committer = _Committer()
        self._token: trio.lowlevel.TrioToken | None = None

    def submit(self, item: _PendingWrite) -> None:
        """Queue ``item`` (on the event-loop thread); its task is rescheduled once it is done."""
        self._token = trio.lowlevel.current_trio_token()
        self._pending.append(item)
        if not self._in_flight:
            self._start_batch()

    def _start_batch(self) -> None:
        token = self._token
        assert token is not None
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        self._in_flight = True
        backend = self._backend
        try:
            conn = backend._begin_batch(batch)
        except Exception as exc:  # already failed every item; never leave a caller asleep
            for item in batch:
                if not item.done:
                    item.result, item.error, item.done = None, _store_error(exc), True
            conn = None
        if conn is None:
            # Finished without a COMMIT; the callers still hear back from the loop, as their
            # tasks may not be asleep yet.
            token.run_sync_soon(self._finished, batch)
            return
        try:
            self._committer.submit(partial(self._commit, token, conn, batch))
        except StoreError as exc:  # the store is closing
            backend._fail_batch(conn, batch, exc)
            token.run_sync_soon(self._finished, batch)

    def _commit(
        self, token: trio.lowlevel.TrioToken, conn: sqlite3.Connection, batch: list[_PendingWrite]
    ) -> None:
        # In the committer thread.
        try:
            self._backend._commit_batch(conn, batch)
        except BaseException as exc:
            for item in batch:
                if not item.done:
                    item.result, item.error, item.done = None, _store_error(exc), True
        try:
            token.run_sync_soon(self._finished, batch)
        except trio.RunFinishedError:
            self._in_flight = False  # nobody is left to wake

    def _finished(self, batch: list[_PendingWrite]) -> None:
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
        self._committer.stop()


class ThreadedStore:
    """:class:`Store` over any synchronous :class:`Backend`, used from Trio.

    Over a :class:`SQLiteBackend`, writes are pipelined group commits whose statements run on
    the event-loop thread and whose ``COMMIT`` runs in one long-lived thread
    (:class:`_GroupCommit`), and reads, which are small indexed queries on their own WAL read
    transaction, run directly on the event-loop thread. Any other backend runs each call
    in a Trio worker thread (``trio.to_thread.run_sync``, bounded by ``threads``).

    Calls are not abandoned on cancellation: a transaction that started finishes (committed or
    rolled back) before the caller sees the cancellation, so the database never depends on where
    a cancel landed.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        threads: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self._limiter = trio.CapacityLimiter(threads)
        self._clock = clock
        self._sqlite = backend if isinstance(backend, SQLiteBackend) else None
        self._writer = _GroupCommit(self._sqlite) if self._sqlite is not None else None
        self.background_failures = 0
        """Writes queued by :meth:`ack_later` whose group commit failed."""

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(partial(fn, *args), limiter=self._limiter)

    async def _write(self, writer: _GroupCommit, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in a group commit; returns after the ``COMMIT`` that holds it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        item = _PendingWrite(op)
        item.task = trio.lowlevel.current_task()
        writer.submit(item)
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
        if self._sqlite is not None and self._writer is not None:
            op = self._sqlite._enqueue_op(
                sender, recipients, payload, message_id, commit, self._clock()
            )
            return await self._write(self._writer, op)
        return await self._run(
            self.backend.enqueue, sender, recipients, payload, message_id, commit, self._clock()
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
        """An enqueue with a Commit's Welcome (see ``SQLiteBackend._bundle_op``); returns the
        sequence numbers and the queues written to."""
        if self._sqlite is None or self._writer is None:
            raise StoreError("Commit bundles need the SQLite backend")
        op = self._sqlite._bundle_op(
            sender, recipients, payload, message_id, commit, welcome, self._clock()
        )
        return await self._write(self._writer, op)

    @property
    def quarantined(self) -> int:
        """Rows the backend quarantined when it was opened (0 when it does not say)."""
        return int(getattr(self.backend, "quarantined", 0))

    async def fetch(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredMessage]:
        return list((await self.fetch_page(recipient, after_seq, limit, max_bytes)).messages)

    async def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None = None
    ) -> FetchedPage:
        if self._sqlite is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            return self._sqlite.fetch_page(recipient, after_seq, limit, max_bytes, self._clock())
        return await self._run(
            self.backend.fetch_page, recipient, after_seq, limit, max_bytes, self._clock()
        )

    async def ack(self, recipient: bytes, up_to_seq: int) -> int:
        if self._sqlite is not None and self._writer is not None:
            return await self._write(self._writer, self._sqlite._ack_op(recipient, up_to_seq))
        return await self._run(self.backend.ack, recipient, up_to_seq)

    async def ack_later(
        self, recipient: bytes, up_to_seq: int, on_done: Callable[[], None]
    ) -> None:
        """Queue the deletion of ``recipient``'s messages up to ``up_to_seq`` in the next group
        commit and return without waiting for it; ``on_done`` is called on the event loop once
        that commit ended (so a fetch that piggybacks an acknowledgement answers without an
        fsync in its path, and the caller knows until when reads must skip those messages
        themselves). If the commit fails the messages stay, and the next acknowledgement, which
        is cumulative, removes them; such failures are counted in :attr:`background_failures`.
        Backends without group commit run :meth:`ack` and call ``on_done`` before returning.
        ``on_done`` is called exactly once when this returns, never when it raises."""
        if self._sqlite is None or self._writer is None:
            await self.ack(recipient, up_to_seq)
            on_done()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        item = _PendingWrite(self._sqlite._ack_op(recipient, up_to_seq))
        item.on_done = partial(self._background_done, item, on_done)
        self._writer.submit(item)

    def _background_done(self, item: _PendingWrite, on_done: Callable[[], None]) -> None:
        if item.error is not None:
            self.background_failures += 1
        on_done()

    async def count_queue(self, recipient: bytes) -> int:
        if self._sqlite is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            return self._sqlite.count_queue(recipient)
        return await self._run(self.backend.count_queue, recipient)

    async def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        init_key: bytes | None = None,
    ) -> None:
        if self._sqlite is not None and self._writer is not None:
            op = self._sqlite._add_key_package_op(
                identity, ref, package, last_resort, not_after, self._clock(), init_key
            )
            await self._write(self._writer, op)
            return
        await self._run(
            self.backend.add_key_package,
            identity,
            ref,
            package,
            last_resort,
            not_after,
            self._clock(),
            init_key,
        )

    async def claim_key_package(self, identity: bytes) -> tuple[bytes, bool] | None:
        if self._sqlite is not None and self._writer is not None:
            op = self._sqlite._claim_key_package_op(identity, self._clock())
            return await self._write(self._writer, op)
        return await self._run(self.backend.claim_key_package, identity, self._clock())

    async def count_key_packages(self, identity: bytes) -> int:
        if self._sqlite is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            return self._sqlite.count_key_packages(identity, self._clock())
        return await self._run(self.backend.count_key_packages, identity, self._clock())

    async def purge(self) -> int:
        if self._sqlite is not None and self._writer is not None:
            return await self._write(self._writer, self._sqlite._purge_op(self._clock()))
        return await self._run(self.backend.purge, self._clock())

    async def expire_messages(self) -> int:
        if self._sqlite is not None and self._writer is not None:
            op = self._sqlite._expire_messages_op(self._clock())
            return await self._write(self._writer, op)
        return await self._run(self.backend.expire_messages, self._clock())

    async def aclose(self) -> None:
        if self._writer is not None:
            # Queued writes finish (and their callers hear back) before the connections close.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._writer.stop)
        await self._run(self.backend.close)


def open_sqlite_store(
    path: Path | str,
    limits: StoreLimits | None = None,
    *,
    threads: int = 8,
    clock: Callable[[], float] = time.time,
    key_package_check: Callable[[bytes], bool] | None = None,
) -> ThreadedStore:
    """Open (creating and migrating if needed) a SQLite store for use from Trio.

    Args:
        path: the database file.
        limits: quotas, message TTL and row validation bounds.
        threads: worker threads the store may use at once.
        clock: wall-clock seconds (enqueue times, expiry, KeyPackage lifetimes).
        key_package_check: see :class:`SQLiteBackend`.

    Raises:
        StoreError: the database cannot be opened, is corrupt, or is from a newer version.
    """
    backend = SQLiteBackend(path, limits, key_package_check=key_package_check)
    return ThreadedStore(backend, threads=threads, clock=clock)
