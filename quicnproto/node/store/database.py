"""The store's SQLite file and its connections.

:class:`Database` opens the file (owner and ``quick_check`` first, which only read, then WAL
mode, migrations, quarantine of bad rows; VALIDATION SRV-CR-05) and keeps a small pool of connections, one per use, created with
``check_same_thread=False`` so the group commit's thread may finish what the event loop began.
The database runs with ``synchronous=FULL``: a ``COMMIT`` returns after its fsync, so a write is
on disk when its caller hears back and survives ``kill -9``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from quicnproto.errors import StoreError
from quicnproto.node.store import quarantine, schema
from quicnproto.node.store.types import StoreLimits


class Database:
    """One SQLite store file and its connection pool; thread-safe.

    Args:
        path: the database file; created with its schema when missing.
        limits: quotas enforced inside transactions, and what a valid row holds.
        key_package_check: whether a stored KeyPackage still parses; rows it rejects are
            quarantined at open (the node passes an ``mls`` decoder; None checks columns only).

    A file that is refused (another program's, corrupt, newer) is only read, never written
    (:func:`~quicnproto.node.store.schema.check_owner`): a node database from before
    ``application_id`` existed gets it set here, nothing else without it is adopted.

    Raises:
        StoreError: the file cannot be opened, is not a SQLite database, is another program's
            database, SQLite reports it corrupt (``quick_check``), or its schema is newer than
            this code.
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
        self._closed = False
        try:
            with self._guard():
                conn = self.acquire()
                try:
                    # Read-only checks first, so a refused file is left exactly as it was.
                    schema.check_owner(conn)
                    schema.quick_check(conn)
                    schema.switch_to_wal(conn)
                    schema.migrate(conn)
                    self.quarantined = quarantine.quarantine_bad_rows(
                        conn, self.limits, key_package_check, time.time()
                    )
                finally:
                    self.release(conn)
        except BaseException:
            # Closed now, not when the collector gets to them: SQLite removes its -wal and
            # -shm files when the last connection closes.
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        return schema.connect(self.path)

    def acquire(self) -> sqlite3.Connection:
        """A connection from the pool (a new one when it is empty).

        Raises:
            StoreError: the database is closed.
            sqlite3.Error: a new connection cannot be opened.
        """
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            if self._pool:
                return self._pool.pop()
        conn = self._connect()
        with self._lock:
            self._all.append(conn)
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        """Give ``conn`` back to the pool (closing it when the database was closed meanwhile)."""
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._pool.append(conn)

    def discard(self, conn: sqlite3.Connection) -> None:
        """Close ``conn`` for good (one whose transaction could not even be rolled back)."""
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
            raise _store_error(exc) from exc

    def read(self) -> _Reading:
        """A pooled connection for reads (``with db.read() as conn``); SQLite failures leave as
        :class:`StoreError`."""
        return _Reading(self)

    def quarantined_rows(self) -> list[tuple[str, str]]:
        """``(source table, reason)`` of every quarantined row, oldest first (no values)."""
        with self.read() as conn:
            return quarantine.quarantined_rows(conn)

    def schema_version(self) -> int:
        """The database's ``user_version``."""
        with self.read() as conn:
            return schema.schema_version(conn)

    def close(self) -> None:
        """Close every connection; later uses raise :class:`StoreError`."""
        with self._lock:
            self._closed = True
            conns, self._all, self._pool = self._all, [], []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _store_error(exc: sqlite3.Error) -> StoreError:
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_NOTADB:
        return StoreError("not a database: SQLite cannot read it")
    return StoreError(f"sqlite: {type(exc).__name__}: {exc}")


class _Reading:
    """:meth:`Database.read` as a plain context manager: every fetch takes one, and two nested
    generator-based ones cost several times as much."""

    __slots__ = ("_db", "_conn")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._conn = self._db.acquire()
        except sqlite3.Error as exc:
            raise _store_error(exc) from exc
        return self._conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                self._db.release(conn)
            except sqlite3.Error as error:
                raise _store_error(error) from error
        if isinstance(exc, sqlite3.Error):
            raise _store_error(exc) from exc
