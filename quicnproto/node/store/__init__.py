"""The node's durable state on SQLite: delivery queues, the commit table and KeyPackages.

A package by concern, bottom first: :mod:`.types` (stored rows, refusals, limits, the
:class:`Store` interface), :mod:`.schema` (migrations, ``quick_check``, WAL),
:mod:`.quarantine` (rows that break invariants, moved aside at open), :mod:`.queues`,
:mod:`.key_packages` and :mod:`.retention` (the SQL, as free functions over a
:class:`sqlite3.Connection`), :mod:`.database` (the file and its connection pool),
:mod:`.group_commit` (many writes, one transaction and one fsync) and :mod:`.sqlite_store`
(the Trio-facing :class:`SQLiteStore`). The store's file format is defined by
:data:`MIGRATIONS` alone.
"""

from quicnproto.node.store.database import Database
from quicnproto.node.store.group_commit import MAX_BATCH, PendingWrite
from quicnproto.node.store.queues import enqueue_digest
from quicnproto.node.store.schema import MIGRATIONS, SCHEMA_VERSION
from quicnproto.node.store.sqlite_store import SQLiteStore, open_sqlite_store
from quicnproto.node.store.types import (
    MAX_SQL_INT,
    MAX_STORED_ID_SIZE,
    FetchedPage,
    QueueStats,
    RequestRefused,
    Store,
    StoredMessage,
    StoreLimits,
    StoreTotals,
)

__all__ = [
    "MAX_BATCH",
    "MAX_SQL_INT",
    "MAX_STORED_ID_SIZE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Database",
    "FetchedPage",
    "PendingWrite",
    "QueueStats",
    "RequestRefused",
    "SQLiteStore",
    "Store",
    "StoreLimits",
    "StoreTotals",
    "StoredMessage",
    "enqueue_digest",
    "open_sqlite_store",
]
