"""The store's file: its schema, migrations keyed by ``PRAGMA user_version``, and the checks run
when it is opened (owner, ``quick_check``, WAL mode).

A node database carries ``PRAGMA application_id`` :data:`APPLICATION_ID`, set when the file is
created. Another program's SQLite file (another id, or no id and tables of its own) is refused
with :class:`StoreError` and never migrated; so is a database newer than this code, rather than
misread, and a file SQLite itself reports corrupt, rather than served. These checks only read:
a refused file is left byte for byte as it was.

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
import re
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

APPLICATION_ID = 0x514E5043
"""``PRAGMA application_id`` of a node database (ASCII ``QNPC``), set at creation."""


def node_tables(version: int) -> frozenset[str]:
    """The tables of a node database at schema ``version`` (those its migrations create)."""
    return frozenset(
        name
        for statements in MIGRATIONS[:version]
        for statement in statements
        for name in re.findall(r"CREATE TABLE (\w+)", statement)
    )


def check_owner(conn: sqlite3.Connection) -> bool:
    """Refuse a file that is not a node database this code can serve; only reads.

    A file with :data:`APPLICATION_ID` is ours. A file without an application id is ours
    only when it is empty (a new file: no tables, ``user_version`` 0) or is a node database
    from before the id existed: ``user_version`` in 1..:data:`SCHEMA_VERSION` and exactly the
    tables :func:`node_tables` names for that version. :func:`migrate` sets the id on both;
    nothing else without an id is ever adopted.

    Returns:
        Whether the application id still has to be set (a new file or an older node database).

    Raises:
        StoreError: not a SQLite database, unreadable, another program's database, or a node
            database newer than this code.
    """
    # One read transaction (unless the caller's), so the three reads see one snapshot even
    # while another process migrates the file.
    own_transaction = not conn.in_transaction
    try:
        if own_transaction:
            conn.execute("BEGIN")
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        }
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_NOTADB:
            raise StoreError("not a database: SQLite cannot read it") from exc
        raise StoreError(f"cannot read the database: {exc}") from exc
    finally:
        if own_transaction and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")  # it only read
    ours = app_id == APPLICATION_ID or (
        app_id == 0 and bool(tables) and tables >= node_tables(SCHEMA_VERSION)
    )
    if version > SCHEMA_VERSION and ours:
        raise StoreError(
            f"database schema version {version} is newer than this node ({SCHEMA_VERSION})"
        )
    if app_id == APPLICATION_ID:
        return False
    if app_id == 0 and version == 0 and not tables:
        return True
    if app_id == 0 and 1 <= version <= SCHEMA_VERSION and tables == node_tables(version):
        return True
    if app_id != 0:
        raise StoreError(f"not a node database (application_id {app_id:#x}); refusing it")
    raise StoreError("not a node database (its tables are not the node's); refusing to adopt it")


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
    moment never run a migration twice. The first transaction checks the owner again
    (:func:`check_owner`) and sets :data:`APPLICATION_ID` on a new file or an older node
    database.

    Raises:
        StoreError: the file is not a node database, or its schema is newer than this code.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if check_owner(conn):
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
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
