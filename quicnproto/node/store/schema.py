"""The store's file: its schema, migrations keyed by ``PRAGMA user_version``, and the checks run
when it is opened (WAL mode, ``quick_check``).

A database newer than this code is refused with :class:`StoreError` rather than misread; a file
SQLite itself reports corrupt is refused rather than served.

Tables::

    queues(recipient, last_seq, count, bytes, acked_up_to)  one row per recipient ever enqueued to
    messages(recipient, seq, message_id, payload)    unacknowledged messages, seq > 0 increasing
    sent(sender, message_id, digest, seqs)           idempotency record of every enqueue
    commits(group_id, epoch, sender, message_id)     first Commit per (group, epoch); each
                                                     group's newest kept for good
    key_packages(identity, ref, init_key, package, ...)  the KeyPackage directory
    consumed_key_packages(ref, init_key, not_after, identity)  handed out, never accepted again
    quarantine(source, source_rowid, reason, ...)     rows moved aside at open (SRV-CR-05)
    quarantine_values(quarantine_id, name, value)     their column values, exactly as stored
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from quicnproto.errors import StoreError

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


def connect(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode, usable from any thread, with
    ``synchronous=FULL`` (a ``COMMIT`` returns after its fsync) and a 30 s busy timeout."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def switch_to_wal(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
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


def quick_check(conn: sqlite3.Connection) -> None:
    """Refuse a file SQLite itself reports corrupt (``PRAGMA quick_check``).

    Raises:
        StoreError: the check failed or reported a problem.
    """
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


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one migration per write transaction.

    The version is read inside each transaction, so processes opening one new file at the same
    moment never run a migration twice.

    Raises:
        StoreError: the file's schema is newer than this code.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this node ({SCHEMA_VERSION})"
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


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's ``user_version``."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
